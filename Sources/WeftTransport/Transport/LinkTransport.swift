import NIOCore
import WeftIdentity

/// A way to carry a link's bytes: it listens and dials and yields a byte-stream channel, on
/// which the link's TLS, its handshake and then the tunnel's frames run, the same on every
/// transport. TLS over TCP is one implementation (`TCPLinkTransport`), WebSocket another.
///
/// A transport only moves bytes: the site certificates, the pin on the announced fingerprint and
/// weft's handshake are added by `LinkDialer` and `LinkListener` in `ready`, so no transport can
/// weaken them. The exception is a transport with TLS 1.3 of its own (QUIC, `securesLinks`):
/// it presents the site certificate and checks the peer's against the same pin (`expecting`,
/// `trusts`), and weft's handshake runs inside it.
public protocol LinkTransport: Sendable {
    /// The link type announced for (and dialed on) this transport.
    var kind: LinkEndpoint.Kind { get }

    /// The transport authenticates both sites itself with their certificates (QUIC's TLS), so
    /// no link TLS runs inside it.
    var securesLinks: Bool { get }

    /// Opens a byte stream to `endpoint` and calls `ready` on its event loop once bytes can flow
    /// (after any proxy or upgrade exchange). The future fails when the stream cannot be opened;
    /// a stream that closes before it is ready closes its channel, which the caller watches.
    /// A transport that `securesLinks` accepts only the certificate `expected`.
    func dial(
        _ endpoint: LinkEndpoint, from local: SocketAddress?, on eventLoop: EventLoop, timeout: TimeAmount,
        expecting expected: CertificateFingerprint,
        ready: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel>

    /// What the listener does with a byte stream once it is ready.
    typealias Ready = @Sendable (Channel) throws -> Void

    /// Listens on `host`:`port`. Each new connection is first offered to `accept`, which
    /// answers nil to close it before anything is read, or what to do once its byte stream is
    /// ready (within `timeout`; run on its event loop). A transport that `securesLinks` asks
    /// `trusts` about each certificate presented. Returns the listening channel.
    func listen(
        host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount,
        trusts: @escaping @Sendable (Channel, CertificateFingerprint) -> Bool,
        accept: @escaping @Sendable (Channel) -> Ready?
    ) -> EventLoopFuture<Channel>
}

extension LinkTransport {
    public var securesLinks: Bool { false }
}

extension EventLoopFuture where Value == Channel {
    /// A dialed stream, once `ready` has set it up; a stream `ready` refuses is closed and the
    /// dial fails with its error.
    func readied(_ ready: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<Channel> {
        flatMapThrowing { channel in
            do {
                try ready(channel)
            } catch {
                channel.close(promise: nil)
                throw error
            }
            return channel
        }
    }
}

/// A channel whose transport authenticated the peer (see `LinkTransport.securesLinks`).
public protocol PeerAuthenticatedChannel: Channel {
    /// The certificate the peer presented and the transport accepted.
    var peerFingerprint: CertificateFingerprint? { get }
}
