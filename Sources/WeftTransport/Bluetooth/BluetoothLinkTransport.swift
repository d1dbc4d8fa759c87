import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftIdentity

#if canImport(Glibc)
    import Glibc
#endif

/// Links over Bluetooth: an RFCOMM connection is the byte stream, and the link's TLS and
/// handshake run inside it as on TCP, so a Bluetooth peer that does not complete them is
/// dropped like any stranger.
///
/// The endpoint's host is the peer adapter's address and its port the RFCOMM channel. Dials
/// leave from `adapter` (nil: the kernel picks one). A listener's host names its adapter by
/// address or as `hciN`.
public struct BluetoothLinkTransport: LinkTransport {
    private let source: @Sendable () -> BluetoothAddress?

    /// The adapter dials leave from now.
    public var adapter: BluetoothAddress? { source() }

    /// The RFCOMM server channels a listener may take.
    public static let channels = RFCOMMSocket.channels

    public init(adapter: BluetoothAddress? = nil) {
        self.source = { adapter }
    }

    /// Dials leave from the adapter `current` names at the time of each dial: a site whose
    /// adapter came up after it started dials from it from then on.
    public init(current: @escaping @Sendable () -> BluetoothAddress?) {
        self.source = current
    }

    public var kind: LinkEndpoint.Kind { .bluetooth }

    public func dial(
        _ endpoint: LinkEndpoint, from local: SocketAddress?, on eventLoop: EventLoop, timeout: TimeAmount,
        expecting expected: CertificateFingerprint,
        ready: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        guard endpoint.transport == .bluetooth, let peer = BluetoothAddress(endpoint.host),
            RFCOMMSocket.channels.contains(endpoint.port)
        else {
            return eventLoop.makeFailedFuture(LinkError(.transport, "not a Bluetooth endpoint: \(endpoint)"))
        }
        let adapter = self.adapter
        let channel = endpoint.port
        // The connect is bounded by its own poll, but a kernel whose RFCOMM thread is stuck
        // (Debian's 6.1 oopses in krfcommd when an adapter goes down under a session, and
        // every later connect waits on its lock) never returns it: the dial fails anyway, and
        // a socket that comes back too late is closed.
        let connected = eventLoop.makePromise(of: CInt.self)
        let settled = NIOLockedValueBox(false)
        let settle: @Sendable () -> Bool = {
            settled.withLockedValue { done in
                defer { done = true }
                return !done
            }
        }
        let late = eventLoop.scheduleTask(in: timeout + .seconds(2)) {
            if settle() {
                connected.fail(
                    LinkError(
                        .handshakeTimeout,
                        "RFCOMM connect to \(peer) channel \(channel) did not return (is the kernel's RFCOMM stuck? see dmesg)"
                    ))
            }
        }
        RFCOMMSocket.connectPool.runIfActive(eventLoop: eventLoop) {
            try RFCOMMSocket.connect(from: adapter, to: peer, channel: channel, timeout: timeout)
        }.whenComplete { result in
            late.cancel()
            guard settle() else {
                if case .success(let fd) = result { close(fd) }
                return
            }
            connected.completeWith(result)
        }
        return connected.futureResult.flatMap { fd in
            // NIO owns the socket from here, and closes it on any failure.
            ClientBootstrap(group: eventLoop).withConnectedSocket(fd)
        }.readied(ready)
    }

    public func listen(
        host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount,
        trusts: @escaping @Sendable (Channel, CertificateFingerprint) -> Bool,
        accept: @escaping @Sendable (Channel) -> Ready?
    ) -> EventLoopFuture<Channel> {
        let fd: CInt
        do {
            guard let named = BluetoothAdapter(host) else {
                throw LinkError(.transport, "not a Bluetooth adapter: \(host)")
            }
            fd = try RFCOMMSocket.bound(adapter: try RFCOMMSocket.address(of: named), channel: port)
        } catch {
            return group.next().makeFailedFuture(error)
        }
        return ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                guard let ready = accept(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture { try ready(channel) }
            }
            .withBoundSocket(fd)
    }
}
