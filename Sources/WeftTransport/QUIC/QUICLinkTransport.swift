import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftIdentity

#if canImport(Glibc)
    import Glibc
#endif

/// Links over QUIC (UDP): one connection per link, one bidirectional stream carrying it. QUIC's
/// own TLS 1.3 presents the site certificate and pins the peer's (`securesLinks`), and weft's
/// handshake then runs on the stream as on any link.
///
/// A listening socket bound to a wildcard address also carries the links this site dials to
/// the same address family, so peers (and NATs) see one port for both; a dial from a listening
/// socket's own address (a punched path) uses that socket. Other dials get a socket of their
/// own, bound to the link's local address when it has one, closed with the link.
public final class QUICLinkTransport: LinkTransport {
    public let configuration: QUICConfiguration
    private let tls: QUICTLS
    private let listening = NIOLockedValueBox<[ObjectIdentifier: Listening]>([:])

    private struct Listening: Sendable {
        var address: SocketAddress
        var endpoint: NIOLoopBound<QUICEndpoint>
        var sideband: QUICSideband
    }

    public init(identity: SiteIdentity, configuration: QUICConfiguration = QUICConfiguration()) throws {
        self.configuration = configuration
        self.tls = try QUICTLS(identity: identity)
    }

    public var kind: LinkEndpoint.Kind { .quic }
    public var securesLinks: Bool { true }

    public func dial(
        _ endpoint: LinkEndpoint, from local: SocketAddress?, on eventLoop: EventLoop, timeout: TimeAmount,
        expecting expected: CertificateFingerprint,
        ready: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        guard let remote = try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port) else {
            return eventLoop.makeFailedFuture(LinkError(.transport, "a QUIC endpoint needs an IP address: \(endpoint)"))
        }
        // From a listening socket's own address: that socket (a punched path exists for it alone).
        let listener = local.flatMap { local in
            listening.withLockedValue { $0.values.first { $0.address == local }?.endpoint }
        }
        if let shared = listener ?? (local == nil ? sharedSocket(for: remote) : nil) {
            return shared.eventLoop.flatSubmit {
                shared.value.dial(remote, expecting: expected, timeout: timeout, ready: ready)
            }.hop(to: eventLoop)
        }
        let bindTo: SocketAddress
        do {
            bindTo = try local ?? SocketAddress(ipAddress: remote.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        return open(on: eventLoop, at: bindTo, acceptor: nil, closesWhenIdle: true)
            .flatMap { endpoint in
                endpoint.value.dial(remote, expecting: expected, timeout: timeout, ready: ready)
            }
    }

    public func listen(
        host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount,
        trusts: @escaping @Sendable (Channel, CertificateFingerprint) -> Bool,
        accept: @escaping @Sendable (Channel) -> Ready?
    ) -> EventLoopFuture<Channel> {
        let acceptor = QUICEndpoint.Acceptor(trusts: trusts, accept: accept, timeout: timeout)
        let loop = group.next()
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: host, port: port)
        } catch {
            return loop.makeFailedFuture(error)
        }
        return open(on: loop, at: address, acceptor: acceptor, closesWhenIdle: false)
            .map { endpoint in
                let channel = endpoint.value.channel!
                let key = ObjectIdentifier(channel)
                if let address = channel.localAddress {
                    let sideband = QUICSideband(endpoint: endpoint, localAddress: address)
                    endpoint.value.sideband = sideband
                    self.listening.withLockedValue {
                        $0[key] = Listening(address: address, endpoint: endpoint, sideband: sideband)
                    }
                }
                channel.closeFuture.whenComplete { _ in
                    _ = self.listening.withLockedValue { $0.removeValue(forKey: key) }
                }
                return channel
            }
    }

    /// The non-QUIC side of a listening socket (`listen`'s channel): STUN and hole-punching
    /// probes leave from the port the links use. Nil for a socket that is not listening.
    public func sideband(for listener: Channel) -> QUICSideband? {
        listening.withLockedValue { $0[ObjectIdentifier(listener)]?.sideband }
    }

    /// A non-blocking UDP socket bound to `address` (NIO owns and closes it from here on).
    private static func boundSocket(_ address: SocketAddress) throws -> CInt {
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let socket = Glibc.socket(
            family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        // Don't fragment, bounded by the interface's MTU only: a datagram larger than the path
        // carries is lost instead of cut in pieces, so ngtcp2's path-MTU probes learn the
        // truth. Not IP_PMTUDISC_DO: that also obeys the path MTU the kernel learns from ICMP,
        // which anyone who knows the addresses can forge low, and ngtcp2 0.12 never shrinks
        // its packets, so every full packet would fail while acks keep the link "alive".
        var discover = IP_PMTUDISC_PROBE
        var discover6 = IPV6_PMTUDISC_PROBE
        let size = socklen_t(MemoryLayout<CInt>.size)
        if family == AF_INET6 {
            _ = setsockopt(socket, Int32(IPPROTO_IPV6), IPV6_MTU_DISCOVER, &discover6, size)
        }
        _ = setsockopt(socket, Int32(IPPROTO_IP), IP_MTU_DISCOVER, &discover, size)
        let bound = address.withSockAddr { pointer, length in bind(socket, pointer, socklen_t(length)) }
        guard bound == 0 else {
            let code = errno
            close(socket)
            throw IOError(errnoCode: code, reason: "bind \(address)")
        }
        return socket
    }

    /// A listening socket bound to the wildcard address of `remote`'s family.
    private func sharedSocket(for remote: SocketAddress) -> NIOLoopBound<QUICEndpoint>? {
        listening.withLockedValue { sockets in
            sockets.values.first { socket in
                socket.address.protocol == remote.protocol
                    && (socket.address.ipAddress == "0.0.0.0" || socket.address.ipAddress == "::")
            }?.endpoint
        }
    }

    /// A UDP socket bound to `address` (made here, so the endpoint can send on it directly),
    /// read by a NIO datagram channel with the endpoint as its handler.
    private func open(
        on loop: EventLoop, at address: SocketAddress, acceptor: QUICEndpoint.Acceptor?, closesWhenIdle: Bool
    ) -> EventLoopFuture<NIOLoopBound<QUICEndpoint>> {
        let tls = self.tls
        let configuration = self.configuration
        let socket: CInt
        do {
            socket = try Self.boundSocket(address)
        } catch {
            return loop.makeFailedFuture(error)
        }
        // With UDP_GRO one read returns a run of datagrams from one sender (up to 64 KiB);
        // without it, one datagram per message.
        let receiveOffload = System.supportsUDPReceiveOffload
        let messages = receiveOffload ? 16 : 32
        let messageSize = receiveOffload ? 65_536 : 2_048
        var bootstrap = DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelOption(.datagramVectorReadMessageCount, value: messages)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: messages * messageSize))
        if receiveOffload {
            bootstrap = bootstrap.channelOption(.datagramReceiveOffload, value: true)
                .channelOption(.datagramReceiveSegmentSize, value: true)
        }
        bootstrap =
            bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        QUICEndpoint(
                            tls: tls, configuration: configuration, acceptor: acceptor, closesWhenIdle: closesWhenIdle,
                            socket: socket))
                }
            }
        return bootstrap.withBoundSocket(socket).flatMapThrowing { channel in
            let endpoint = try channel.pipeline.syncOperations.handler(type: QUICEndpoint.self)
            return NIOLoopBound(endpoint, eventLoop: channel.eventLoop)
        }
    }
}
