import CNGTCP2
import Logging
import NIOCore
import WeftIdentity

#if canImport(Glibc)
    import Glibc
#endif

/// One UDP socket and the QUIC connections on it, accepted and dialed alike: every datagram is
/// routed by its destination connection ID, so a listening port can also dial out (what a NAT
/// needs to see for hole punching). Runs on the socket's event loop, as a handler on it.
final class QUICEndpoint: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    /// What a listening endpoint does with a new connection.
    struct Acceptor {
        /// Whether a certificate may connect (asked during the QUIC handshake).
        var trusts: @Sendable (Channel, CertificateFingerprint) -> Bool
        /// Offered each new connection before its handshake: nil refuses it.
        var accept: @Sendable (Channel) -> LinkTransport.Ready?
        /// How long a new connection may take until its stream is open.
        var timeout: TimeAmount = .seconds(5)
    }

    let tls: QUICTLS
    let configuration: QUICConfiguration
    private let acceptor: Acceptor?
    /// An endpoint opened for one dial closes with its last connection.
    private let closesWhenIdle: Bool
    private(set) var eventLoop: EventLoop!
    private(set) var channel: Channel!
    private(set) var allocator = ByteBufferAllocator()
    private(set) var localAddress: SocketAddress = try! SocketAddress(ipAddress: "0.0.0.0", port: 0)
    private var routes: [QUICConnectionID: QUICConnection] = [:]
    private var connections: [ObjectIdentifier: QUICConnection] = [:]
    private var touched: [QUICConnection] = []
    /// Datagrams that were no QUIC packet for a connection here, nor a client's first Initial.
    private(set) var dropped = 0
    /// Connections open on this socket, and connection IDs routed to them.
    var connectionCount: Int { connections.count }
    var routeCount: Int { routes.count }

    /// Where connections build packets, one at a time (the loop runs one connection's write at
    /// a time; ngtcp2 wants the same buffer back after NGTCP2_ERR_WRITE_MORE).
    let scratch: UnsafeMutablePointer<UInt8>
    static let scratchSize = 65_536

    /// The UDP socket, written directly (NIO reads it). NIO's datagram channel closes itself
    /// on a send error other than EMSGSIZE or EHOSTUNREACH — EPERM from a local firewall,
    /// ENETUNREACH while an interface is down — which would end every link on the socket and
    /// the listener: a datagram that cannot be sent is a lost packet, and QUIC recovers it.
    /// Nil on an embedded channel (fuzzing), which is written through the pipeline.
    private let socket: CInt?
    private var socketOpen = true
    /// Datagrams the kernel refused to send (each is a lost packet to QUIC).
    private(set) var sendErrors = 0

    init(
        tls: QUICTLS, configuration: QUICConfiguration, acceptor: Acceptor?, closesWhenIdle: Bool,
        socket: CInt? = nil
    ) {
        self.tls = tls
        self.configuration = configuration
        self.acceptor = acceptor
        self.closesWhenIdle = closesWhenIdle
        self.socket = socket
        scratch = .allocate(capacity: Self.scratchSize)
    }

    deinit {
        scratch.deallocate()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        eventLoop = context.eventLoop
        channel = context.channel
        allocator = context.channel.allocator
    }

    func channelActive(context: ChannelHandlerContext) {
        if let address = context.channel.localAddress { localAddress = address }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        envelope.data.withUnsafeReadableBytes { datagram in
            dispatch(datagram, from: envelope.remoteAddress)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        let batch = touched
        touched.removeAll(keepingCapacity: true)
        for connection in batch { connection.settle() }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A failed send or an ICMP error on one path must not close the socket of all others.
    }

    func channelInactive(context: ChannelHandlerContext) {
        // NIO closes the descriptor: never write to its number again.
        socketOpen = false
        for connection in Array(connections.values) {
            connection.close(LinkError(.transport, "the QUIC socket closed"))
        }
        context.fireChannelInactive()
    }

    /// Routes one datagram; only a client's first Initial may start a connection, and only on a
    /// listening endpoint. Anything else that matches no connection is dropped without a reply.
    func dispatch(_ datagram: UnsafeRawBufferPointer, from address: SocketAddress) {
        guard let base = datagram.baseAddress?.assumingMemoryBound(to: UInt8.self), datagram.count > 0 else {
            dropped += 1
            return
        }
        var header = ngtcp2_version_cid()
        guard ngtcp2_pkt_decode_version_cid(&header, base, datagram.count, QUICConnection.idLength) == 0,
            let id = QUICConnectionID(header.dcid, count: header.dcidlen)
        else {
            dropped += 1
            return
        }
        if let connection = routes[id] {
            connection.receive(datagram, from: address)
            touch(connection)
            return
        }
        guard let acceptor, connections.count < configuration.maxConnections else {
            dropped += 1
            return
        }
        var initial = ngtcp2_pkt_hd()
        guard ngtcp2_accept(&initial, base, datagram.count) == 0 else {
            dropped += 1
            return
        }
        let connection: QUICConnection
        do {
            connection = try QUICConnection.accept(initial, from: address, endpoint: self) { connection, fingerprint in
                acceptor.trusts(connection.channel, fingerprint)
            }
        } catch {
            dropped += 1
            return
        }
        connections[ObjectIdentifier(connection)] = connection
        guard let ready = acceptor.accept(connection.channel) else {
            connection.close()
            return
        }
        connection.onStreamReady = { connection in
            do {
                try connection.channel.becomeActive(peer: connection.peerFingerprint, ready: ready)
            } catch {
                connection.close(error)
            }
        }
        // A peer that completes QUIC's handshake but never opens the link's stream does not
        // keep its admission slot (keep-alives would keep the idle timer from firing).
        let deadline = eventLoop.scheduleTask(in: acceptor.timeout) { [weak connection] in
            guard let connection, !connection.channel.isActive else { return }
            connection.close(LinkError(.handshakeTimeout, "the QUIC link's stream did not open in time"))
        }
        connection.channel.closeFuture.whenComplete { _ in deadline.cancel() }
        connection.receive(datagram, from: address)
        touch(connection)
    }

    /// Opens a connection to `remote`; the future succeeds once its stream is ready and `ready`
    /// has set the channel up, and fails if the connection ends first or `timeout` passes.
    func dial(
        _ remote: SocketAddress, expecting expected: CertificateFingerprint, timeout: TimeAmount,
        ready: @escaping (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        let promise = eventLoop.makePromise(of: Channel.self)
        guard connections.count < configuration.maxConnections else {
            promise.fail(LinkError(.transport, "this QUIC socket carries its most connections already"))
            return promise.futureResult
        }
        let connection: QUICConnection
        do {
            connection = try QUICConnection.dial(remote, endpoint: self, expecting: expected)
        } catch {
            promise.fail(error)
            closeIfIdle()
            return promise.futureResult
        }
        connections[ObjectIdentifier(connection)] = connection
        connection.onStreamReady = { connection in
            do {
                try connection.channel.becomeActive(peer: connection.peerFingerprint, ready: ready)
                promise.succeed(connection.channel)
            } catch {
                promise.fail(error)
                connection.close(error)
            }
        }
        let deadline = eventLoop.scheduleTask(in: timeout) { [weak connection] in
            connection?.close(LinkError(.handshakeTimeout, "the QUIC connection did not open in time"))
        }
        connection.channel.closeFuture.whenComplete { [channel = connection.channel!] _ in
            deadline.cancel()
            promise.fail(channel.closeError ?? LinkError(.closed, "the QUIC connection closed"))
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        connection.writePackets()
        return promise.futureResult
    }

    // MARK: For connections

    func route(_ id: QUICConnectionID, to connection: QUICConnection) {
        routes[id] = connection
    }

    func unroute(_ id: QUICConnectionID) {
        routes[id] = nil
    }

    func forget(_ connection: QUICConnection) {
        for id in connection.ids where routes[id] === connection { routes[id] = nil }
        connections[ObjectIdentifier(connection)] = nil
        closeIfIdle()
    }

    /// Sends `count` bytes at `bytes` to `remote` (the caller flushes once after a batch).
    func send(_ bytes: UnsafePointer<UInt8>, count: Int, to remote: SocketAddress) {
        guard let socket else {
            var packet = allocator.buffer(capacity: count)
            packet.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count))
            channel.write(AddressedEnvelope(remoteAddress: remote, data: packet), promise: nil)
            return
        }
        guard socketOpen else { return }
        let sent = remote.withSockAddr { address, length in
            sendto(socket, bytes, count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), address, socklen_t(length))
        }
        if sent < 0 { sendErrors += 1 }
    }

    func flush() {
        if socket == nil { channel.flush() }
    }

    private func touch(_ connection: QUICConnection) {
        if !connection.touched {
            connection.touched = true
            touched.append(connection)
        }
    }

    private func closeIfIdle() {
        if closesWhenIdle, connections.isEmpty, channel.isActive { channel.close(promise: nil) }
    }
}

@available(*, unavailable)
extension QUICEndpoint: Sendable {}
