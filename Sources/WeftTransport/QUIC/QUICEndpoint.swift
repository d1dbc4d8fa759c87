import CNGTCP2
import Logging
import Metrics
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
    private var lastRoute: (id: QUICConnectionID, connection: QUICConnection)?
    private var connections: [ObjectIdentifier: QUICConnection] = [:]
    private var touched: [QUICConnection] = []
    /// Datagrams that were no QUIC packet for a connection here, nor a client's first Initial
    /// (`weft_quic_datagrams_dropped_total`), and datagrams the kernel would not send
    /// (`weft_quic_datagrams_unsent_total`): each a lost packet, which QUIC recovers.
    private(set) var dropped = 0
    private let droppedCounter = Counter(label: "weft_quic_datagrams_dropped_total")
    private let unsentCounter = Counter(label: "weft_quic_datagrams_unsent_total")
    /// Connections open on this socket, and connection IDs routed to them.
    var connectionCount: Int { connections.count }
    var routeCount: Int { routes.count }

    /// Where connections build packets, one at a time (the loop runs one connection's write at
    /// a time; ngtcp2 wants the same buffer back after NGTCP2_ERR_WRITE_MORE).
    let scratch: UnsafeMutablePointer<UInt8>
    static let scratchSize = 65_536

    /// Writes the UDP socket directly (NIO only reads it); nil on an embedded channel
    /// (fuzzing), which is written through the pipeline.
    private var writer: QUICSocketWriter?
    private var socketOpen = true
    /// Takes the datagrams that are not QUIC (STUN, hole-punching probes), if anybody does.
    var sideband: QUICSideband?
    /// Datagrams the sideband took (`weft_quic_sideband_datagrams_total`).
    private(set) var sidebandDatagrams = 0
    private let sidebandCounter = Counter(label: "weft_quic_sideband_datagrams_total")

    init(
        tls: QUICTLS, configuration: QUICConfiguration, acceptor: Acceptor?, closesWhenIdle: Bool,
        socket: CInt? = nil
    ) {
        self.tls = tls
        self.configuration = configuration
        self.acceptor = acceptor
        self.closesWhenIdle = closesWhenIdle
        self.writer = socket.map { QUICSocketWriter(socket: $0) }
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
        // With UDP_GRO the kernel hands over a run of same-size datagrams from one sender as
        // one buffer, and says where each one ends.
        let segment = envelope.metadata?.segmentSize ?? 0
        // One path for the whole run: converting the addresses for every datagram costs more
        // than routing it.
        withPath(from: envelope.remoteAddress) { path in
            envelope.data.withUnsafeReadableBytes { bytes in
                for piece in QUICSocketWriter.segments(of: bytes.count, size: segment) {
                    dispatch(UnsafeRawBufferPointer(rebasing: bytes[piece]), from: envelope.remoteAddress, path: path)
                }
            }
        }
    }

    /// ngtcp2's view of a path: this endpoint's address and `remote`.
    func withPath<T>(from remote: SocketAddress, _ body: (UnsafePointer<ngtcp2_path>) -> T) -> T {
        localAddress.withSockAddr { local, localLength in
            remote.withSockAddr { peer, peerLength in
                var path = ngtcp2_path(
                    local: ngtcp2_addr(
                        addr: UnsafeMutablePointer(mutating: local), addrlen: ngtcp2_socklen(localLength)),
                    remote: ngtcp2_addr(
                        addr: UnsafeMutablePointer(mutating: peer), addrlen: ngtcp2_socklen(peerLength)),
                    user_data: nil)
                return body(&path)
            }
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
        sideband = nil  // it holds this endpoint
        for connection in Array(connections.values) {
            connection.close(LinkError(.transport, "the QUIC socket closed"))
        }
        context.fireChannelInactive()
    }

    /// Routes one datagram; only a client's first Initial may start a connection, and only on a
    /// listening endpoint. Anything else that matches no connection is dropped without a reply.
    func dispatch(_ datagram: UnsafeRawBufferPointer, from address: SocketAddress) {
        withPath(from: address) { dispatch(datagram, from: address, path: $0) }
    }

    /// `dispatch` with `address` already converted for ngtcp2.
    func dispatch(_ datagram: UnsafeRawBufferPointer, from address: SocketAddress, path: UnsafePointer<ngtcp2_path>) {
        guard let base = datagram.baseAddress?.assumingMemoryBound(to: UInt8.self), datagram.count > 0 else {
            drop()
            return
        }
        if QUICSideband.claims(datagram) {
            // Not QUIC: STUN or a probe, for the sideband if there is one.
            if let sideband, sideband.received(datagram, from: address, allocator: allocator) {
                sidebandDatagrams += 1
                sidebandCounter.increment()
            } else {
                drop()
            }
            return
        }
        var header = ngtcp2_version_cid()
        guard ngtcp2_pkt_decode_version_cid(&header, base, datagram.count, QUICConnection.idLength) == 0,
            let id = QUICConnectionID(header.dcid, count: header.dcidlen)
        else {
            drop()
            return
        }
        if let connection = route(id) {
            connection.receive(datagram, path: path)
            touch(connection)
            return
        }
        guard let acceptor, connections.count < configuration.maxConnections else {
            drop()
            return
        }
        var initial = ngtcp2_pkt_hd()
        guard ngtcp2_accept(&initial, base, datagram.count) == 0 else {
            drop()
            return
        }
        let connection: QUICConnection
        do {
            connection = try QUICConnection.accept(initial, from: address, endpoint: self) { connection, fingerprint in
                acceptor.trusts(connection.channel, fingerprint)
            }
        } catch {
            drop()
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
        let deadline = eventLoop.scheduleTask(in: acceptor.timeout) {
            guard !connection.channel.isActive else { return }
            connection.close(LinkError(.handshakeTimeout, "the QUIC link's stream did not open in time"))
        }
        connection.channel.closeFuture.whenComplete { _ in deadline.cancel() }
        connection.receive(datagram, path: path)
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
        let deadline = eventLoop.scheduleTask(in: timeout) {
            connection.close(LinkError(.handshakeTimeout, "the QUIC connection did not open in time"))
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
        if lastRoute?.id == id { lastRoute = nil }
    }

    /// The connection `id` belongs to; a run of datagrams mostly shares one.
    private func route(_ id: QUICConnectionID) -> QUICConnection? {
        if let lastRoute, lastRoute.id == id { return lastRoute.connection }
        guard let connection = routes[id] else { return nil }
        lastRoute = (id, connection)
        return connection
    }

    func forget(_ connection: QUICConnection) {
        if lastRoute?.connection === connection { lastRoute = nil }
        for id in connection.ids where routes[id] === connection { routes[id] = nil }
        connections[ObjectIdentifier(connection)] = nil
        closeIfIdle()
    }

    /// Most packets of one size one `send` may carry (1 where the socket cannot segment).
    /// (An embedded channel takes batches too: they are cut into one envelope per datagram.)
    var segmentsPerSend: Int {
        if let writer, !writer.segmentationOffload { return 1 }
        return QUICSocketWriter.maxSegments
    }

    /// Sends `count` bytes at `bytes` to `remote`: datagrams of `segmentSize` bytes, the last
    /// one possibly shorter (the caller flushes once after a batch).
    func send(_ bytes: UnsafePointer<UInt8>, count: Int, segmentSize: Int, to remote: SocketAddress) {
        precondition(segmentSize > 0 && count > 0, "a send of \(count) bytes in segments of \(segmentSize)")
        guard writer != nil else {
            for piece in QUICSocketWriter.segments(of: count, size: segmentSize) {
                var packet = allocator.buffer(capacity: piece.count)
                packet.writeBytes(UnsafeRawBufferPointer(start: bytes + piece.lowerBound, count: piece.count))
                channel.write(AddressedEnvelope(remoteAddress: remote, data: packet), promise: nil)
            }
            return
        }
        guard socketOpen else { return }
        let unsent = writer!.send(bytes, count: count, segmentSize: segmentSize, to: remote)
        if unsent > 0 { unsentCounter.increment(by: unsent) }
    }

    /// One datagram that is not QUIC, sent at once.
    func sendSideband(_ datagram: ByteBuffer, to remote: SocketAddress) {
        guard datagram.readableBytes > 0 else { return }
        guard writer != nil else {
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: datagram), promise: nil)
            return
        }
        guard socketOpen else { return }
        datagram.withUnsafeReadableBytes { bytes in
            let unsent = writer!.send(
                bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: bytes.count,
                segmentSize: bytes.count, to: remote)
            if unsent > 0 { unsentCounter.increment(by: unsent) }
        }
    }

    func flush() {
        if writer == nil { channel.flush() }
    }

    private func drop() {
        dropped += 1
        droppedCounter.increment()
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
