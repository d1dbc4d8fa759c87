import CNGTCP2
import NIOCore
import WeftIdentity

#if canImport(Glibc)
    import Glibc
#endif

/// One QUIC connection: one link, carried by one bidirectional stream (the dialer's first).
///
/// It lives on its endpoint's event loop, driven by the endpoint's datagrams and its own timer;
/// ngtcp2 does the protocol (loss recovery, congestion control, flow control, keep-alive), this
/// class moves bytes between ngtcp2 and the link's `QUICStreamChannel`. ngtcp2 is not
/// re-entrant: its callbacks only record what happened, and the stream channel hears of it
/// once ngtcp2 has returned.
final class QUICConnection {
    /// Length of the connection IDs this side issues: every packet to us starts with one.
    static let idLength = 16

    enum Role { case dialer, acceptor }

    let role: Role
    unowned let endpoint: QUICEndpoint
    private(set) var remote: SocketAddress
    /// `remote` as ngtcp2's path holds it, to see cheaply whether a packet goes elsewhere, and
    /// a count of its changes (a batch of packets shares one address).
    private var remoteBytes = sockaddr_storage()
    private var remoteLength = 0
    private var remoteGeneration = 0
    private(set) var channel: QUICStreamChannel!
    private(set) var peerFingerprint: CertificateFingerprint?
    private var peerAccepted = false

    private var connection: OpaquePointer?
    private var session: gnutls_session_t?
    private let reference: UnsafeMutablePointer<ngtcp2_crypto_conn_ref>
    private let pathStorage: UnsafeMutablePointer<ngtcp2_path_storage>
    private let vectors: UnsafeMutablePointer<ngtcp2_vec>
    /// Where ngtcp2 builds packets (the endpoint's, shared: one connection writes at a time).
    private var scratch: UnsafeMutablePointer<UInt8> { endpoint.scratch }
    private static let vectorCapacity = 16
    private let accepts: (QUICConnection, CertificateFingerprint) -> Bool
    private var streamID: Int64 = -1
    /// IDs the endpoint routes to this connection.
    private(set) var ids: Set<QUICConnectionID> = []
    private var timer: Scheduled<Void>?
    private var timerExpiry: UInt64 = .max
    private var insideNGTCP2 = false
    private var streamOpened = false
    private var peerFinished = false
    /// Closing once everything written is acknowledged (`finish()`).
    private var finishing = false
    private(set) var closed = false
    /// In the endpoint's list of connections to settle after this batch of datagrams.
    var touched = false
    private var send = QUICSendBuffer()
    private var received: ByteBuffer
    /// Called once the stream can carry bytes (or never, if the connection fails first).
    var onStreamReady: ((QUICConnection) -> Void)?

    /// The link's outbound buffer (queued and unacknowledged) above which the channel turns
    /// unwritable, and below which it turns writable again.
    static let highWater = 4 * 1024 * 1024
    static let lowWater = 2 * 1024 * 1024

    private init(
        role: Role, endpoint: QUICEndpoint, remote: SocketAddress,
        accepts: @escaping (QUICConnection, CertificateFingerprint) -> Bool
    ) {
        self.role = role
        self.endpoint = endpoint
        self.remote = remote
        self.accepts = accepts
        self.received = endpoint.allocator.buffer(capacity: 0)
        reference = .allocate(capacity: 1)
        pathStorage = .allocate(capacity: 1)
        ngtcp2_path_storage_zero(pathStorage)
        vectors = .allocate(capacity: Self.vectorCapacity)
        reference.initialize(
            to: ngtcp2_crypto_conn_ref(
                get_conn: { reference in
                    guard let owner = reference?.pointee.user_data else { return nil }
                    return Unmanaged<QUICConnection>.fromOpaque(owner).takeUnretainedValue().connection
                }, user_data: nil))
        reference.pointee.user_data = Unmanaged.passUnretained(self).toOpaque()
        channel = QUICStreamChannel(connection: self)
    }

    deinit {
        reference.deallocate()
        pathStorage.deallocate()
        vectors.deallocate()
    }

    /// Starts a connection to `remote`, whose certificate must be `expected`.
    static func dial(
        _ remote: SocketAddress, endpoint: QUICEndpoint, expecting expected: CertificateFingerprint
    ) throws -> QUICConnection {
        let made = QUICConnection(role: .dialer, endpoint: endpoint, remote: remote) { $1 == expected }
        var dcid = QUICConnectionID.random()
        var scid = QUICConnectionID.random()
        try made.starting { connection, path, callbacks, settings, params, user in
            weft_ngtcp2_conn_client_new(connection, &dcid, &scid, path, callbacks, settings, params, user)
        }
        made.register(scid)
        return made
    }

    /// Answers a client's first Initial packet (`header`, which `ngtcp2_accept` read), before
    /// anything else; `accepts` says which certificates may connect.
    static func accept(
        _ header: ngtcp2_pkt_hd, from remote: SocketAddress, endpoint: QUICEndpoint,
        accepts: @escaping (QUICConnection, CertificateFingerprint) -> Bool
    ) throws -> QUICConnection {
        let made = QUICConnection(role: .acceptor, endpoint: endpoint, remote: remote, accepts: accepts)
        var header = header
        var scid = QUICConnectionID.random()
        try made.starting(originalDestination: header.dcid) { connection, path, callbacks, settings, params, user in
            weft_ngtcp2_conn_server_new(
                connection, &header.scid, &scid, path, header.version, callbacks, settings, params, user)
        }
        made.register(scid)
        // The client keeps using the ID it made up until it hears ours.
        made.register(header.dcid)
        return made
    }

    /// `start`, and if it fails, the channel lets go of the connection (they hold each other).
    private func starting(
        originalDestination: ngtcp2_cid? = nil,
        create: (
            UnsafeMutablePointer<OpaquePointer?>, UnsafePointer<ngtcp2_path>, UnsafePointer<ngtcp2_callbacks>,
            UnsafePointer<ngtcp2_settings>, UnsafePointer<ngtcp2_transport_params>, UnsafeMutableRawPointer
        ) -> Int32
    ) throws {
        do {
            try start(originalDestination: originalDestination, create: create)
        } catch {
            closed = true
            channel.connectionClosed(error)
            throw error
        }
    }

    private func start(
        originalDestination: ngtcp2_cid? = nil,
        create: (
            UnsafeMutablePointer<OpaquePointer?>, UnsafePointer<ngtcp2_path>, UnsafePointer<ngtcp2_callbacks>,
            UnsafePointer<ngtcp2_settings>, UnsafePointer<ngtcp2_transport_params>, UnsafeMutableRawPointer
        ) -> Int32
    ) throws {
        let configuration = endpoint.configuration
        var settings = ngtcp2_settings()
        weft_ngtcp2_settings_default(&settings)
        settings.initial_ts = now()
        settings.cc_algo = configuration.congestionControl.algorithm
        settings.handshake_timeout = UInt64(configuration.handshakeTimeout.nanoseconds)
        settings.max_window = UInt64(configuration.connectionWindow)
        settings.max_stream_window = UInt64(configuration.streamWindow)
        if configuration.hostLocalDatagramSize > 0, let payload = QUICHostLocalPath.datagramPayload(to: remote) {
            // The kernel knows this path whole: no discovery, packets as large as it allows.
            settings.max_tx_udp_payload_size = min(payload, configuration.hostLocalDatagramSize)
            settings.no_tx_udp_payload_size_shaping = 1
            settings.no_pmtud = 1
        }
        var params = ngtcp2_transport_params()
        weft_ngtcp2_transport_params_default(&params)
        // One stream, opened by the dialer; nothing else may be opened.
        params.initial_max_streams_bidi = role == .acceptor ? 1 : 0
        params.initial_max_streams_uni = 0
        params.initial_max_stream_data_bidi_local = UInt64(configuration.initialStreamWindow)
        params.initial_max_stream_data_bidi_remote = UInt64(configuration.initialStreamWindow)
        params.initial_max_data = UInt64(configuration.initialStreamWindow)
        params.max_idle_timeout = UInt64(configuration.idleTimeout.nanoseconds)
        if let originalDestination {
            params.original_dcid = originalDestination
            params.stateless_reset_token_present = 1
            withUnsafeMutableBytes(of: &params.stateless_reset_token) { raw in
                _ = gnutls_rnd(GNUTLS_RND_RANDOM, raw.baseAddress, raw.count)
            }
        }
        let user = Unmanaged.passUnretained(self).toOpaque()
        var made: OpaquePointer?
        let code = endpoint.withPath(from: remote) { path in
            withUnsafePointer(to: Self.callbacks) { callbacks in
                create(&made, path, callbacks, &settings, &params, user)
            }
        }
        guard code == 0, let made else {
            throw LinkError(.transport, "ngtcp2 could not start a connection: \(Self.describe(code))")
        }
        connection = made
        do {
            session = try endpoint.tls.makeSession(
                server: role == .acceptor, reference: UnsafeMutableRawPointer(reference))
        } catch {
            ngtcp2_conn_del(made)
            connection = nil
            throw error
        }
        ngtcp2_conn_set_tls_native_handle(made, UnsafeMutableRawPointer(session))
        ngtcp2_conn_set_keep_alive_timeout(made, UInt64(configuration.keepAlive.nanoseconds))
    }

    // MARK: Datagrams in

    /// One datagram for this connection. The stream channel hears of its effects in
    /// `settle()`, which the endpoint calls once per batch of datagrams.
    func receive(_ datagram: UnsafeRawBufferPointer, path: UnsafePointer<ngtcp2_path>) {
        guard !closed, let connection else { return }
        insideNGTCP2 = true
        let code = weft_ngtcp2_conn_read_pkt(
            connection, path, datagram.baseAddress?.assumingMemoryBound(to: UInt8.self), datagram.count, now())
        insideNGTCP2 = false
        // ngtcp2 answers 0 for packets it threw away too: the peer's address is never taken
        // from a datagram, only from the path ngtcp2 says to send on (`sendAddress`).
        switch code {
        case 0:
            break
        case NGTCP2_ERR_DISCARD_PKT:
            break
        case NGTCP2_ERR_DRAINING:
            tearDown(LinkError(.closed, "the peer closed the QUIC connection"))
        case NGTCP2_ERR_DROP_CONN:
            tearDown(LinkError(.closed, "the QUIC connection was dropped"))
        case NGTCP2_ERR_CRYPTO:
            let alert = ngtcp2_conn_get_tls_alert(connection)
            var reason = ngtcp2_connection_close_error()
            ngtcp2_connection_close_error_set_transport_error_tls_alert(&reason, alert, nil, 0)
            sendClose(reason)
            let why =
                peerFingerprint.map { accepts(self, $0) } == false
                ? "the peer's certificate is not the one expected" : "TLS alert \(alert)"
            tearDown(LinkError(.handshakeFailed, "the QUIC handshake failed: \(why)"))
        default:
            var reason = ngtcp2_connection_close_error()
            ngtcp2_connection_close_error_set_transport_error_liberr(&reason, code, nil, 0)
            sendClose(reason)
            tearDown(LinkError(.transport, "QUIC: \(Self.describe(code))"))
        }
    }

    /// After a batch of datagrams (or a timer): hand the stream what arrived and send what is due.
    func settle() {
        touched = false
        guard !closed else { return }
        if streamOpened {
            streamOpened = false
            onStreamReady?(self)
            onStreamReady = nil
            guard !closed else { return }
        }
        channel.deliverIfRequested()
        if finishing, send.bufferedBytes == 0 {
            close()
            return
        }
        if peerFinished, received.readableBytes == 0, !closed {
            close(LinkError(.closed, "the peer ended the QUIC stream"))
            return
        }
        writePackets()
    }

    // MARK: The stream channel's side

    /// Bytes the link wrote; they stay in the send buffer until acknowledged.
    func enqueue(_ buffer: ByteBuffer) {
        send.append(buffer)
    }

    var bufferedBytes: Int { send.bufferedBytes }

    /// Takes what arrived on the stream (the channel asked for a read), and lets the peer send
    /// as much again: QUIC's flow control is the link's backpressure.
    func takeReceived() -> ByteBuffer? {
        guard received.readableBytes > 0, let connection, !closed else { return nil }
        let taken = received
        received = endpoint.allocator.buffer(capacity: 0)
        let count = UInt64(taken.readableBytes)
        ngtcp2_conn_extend_max_stream_offset(connection, streamID, count)
        ngtcp2_conn_extend_max_offset(connection, count)
        return taken
    }

    /// Closes once the peer has every byte the link wrote (as TCP delivers what was written
    /// before a FIN): a refusal written just before closing still arrives. A peer that does
    /// not acknowledge within `lingerLimit` is closed on anyway.
    func finish() {
        guard !closed, !finishing else { return }
        guard send.bufferedBytes > 0 else {
            close()
            return
        }
        finishing = true
        endpoint.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerLimit) { [self] in
            close(LinkError(.transport, "the peer did not acknowledge the link's last bytes"))
        }
        writePackets()
    }

    static let lingerLimit: TimeAmount = .seconds(3)

    /// Closes the connection (a CONNECTION_CLOSE to the peer, unless it is the one closing).
    func close(_ error: Error? = nil) {
        guard !closed, let connection else { return }
        guard !insideNGTCP2 else {
            // Called from code ngtcp2 called (a verify callback's closure): once it returned.
            endpoint.eventLoop.assumeIsolated().execute { [self] in close(error) }
            return
        }
        if ngtcp2_conn_is_in_closing_period(connection) == 0, ngtcp2_conn_is_in_draining_period(connection) == 0 {
            var reason = ngtcp2_connection_close_error()
            ngtcp2_connection_close_error_set_application_error(&reason, 0, nil, 0)
            sendClose(reason)
        }
        tearDown(error)
    }

    /// Sends what ngtcp2 has to send: stream bytes as far as congestion and flow control
    /// allow, acknowledgements, retransmissions. Then arms the timer for ngtcp2's next deadline.
    ///
    /// Packets are built one after the other in the endpoint's buffer, and a run of packets of
    /// one size to one address leaves in one segmented send (UDP GSO).
    func writePackets() {
        guard !closed, !insideNGTCP2, let connection else { return }
        let now = now()
        let size = payloadSize
        let segmentsPerSend = endpoint.segmentsPerSend
        var batch = Batch()
        var blocked = false
        var packets = 0
        while true {
            var count = 0
            var stream: Int64 = -1
            if streamID >= 0, !blocked, send.unsentBytes > 0 {
                count = send.unsent(into: vectors, capacity: Self.vectorCapacity)
                stream = streamID
            }
            let flags = count > 0 ? UInt32(NGTCP2_WRITE_STREAM_FLAG_MORE) : UInt32(NGTCP2_WRITE_STREAM_FLAG_NONE)
            var accepted: ngtcp2_ssize = -1
            // After NGTCP2_ERR_WRITE_MORE ngtcp2 goes on filling the same packet: the same
            // buffer, length, path and time, until it returns the packet.
            insideNGTCP2 = true
            let result = weft_ngtcp2_conn_writev_stream(
                connection, &pathStorage.pointee.path, scratch + batch.bytes, size, &accepted, flags, stream,
                count > 0 ? vectors : nil, count, now)
            insideNGTCP2 = false
            if accepted > 0 { send.sent(Int(accepted)) }
            if result == NGTCP2_ERR_WRITE_MORE { continue }
            if result == NGTCP2_ERR_STREAM_DATA_BLOCKED || result == NGTCP2_ERR_STREAM_SHUT_WR {
                blocked = true
                continue
            }
            if result < 0 {
                flush(&batch)
                var reason = ngtcp2_connection_close_error()
                ngtcp2_connection_close_error_set_transport_error_liberr(&reason, Int32(result), nil, 0)
                sendClose(reason)
                tearDown(LinkError(.transport, "QUIC: \(Self.describe(Int32(result)))"))
                return
            }
            if result == 0 { break }
            let length = Int(result)
            updateRemote()
            if batch.segments > 0, length > batch.segmentSize || remoteGeneration != batch.generation {
                // Segments of one send share a size (the last may be shorter) and an address:
                // send the ones before, and start again with this packet.
                let start = batch.bytes
                flush(&batch)
                memmove(scratch, scratch + start, length)
            }
            batch.add(length, to: remote, generation: remoteGeneration)
            packets += 1
            if length < batch.segmentSize || batch.segments >= segmentsPerSend
                || batch.bytes + size > QUICSocketWriter.maxBatchBytes
            {
                flush(&batch)
            }
            if packets >= Self.packetsPerTurn {
                // Let the loop breathe; the rest goes out on the next turn.
                endpoint.eventLoop.assumeIsolated().execute { [self] in writePackets() }
                break
            }
        }
        flush(&batch)
        ngtcp2_conn_update_pkt_tx_time(connection, now)
        if packets > 0 { endpoint.flush() }
        channel.updateWritability()
        armTimer()
    }

    /// Packets waiting at the start of the endpoint's buffer for one segmented send.
    private struct Batch {
        var bytes = 0
        var segments = 0
        var segmentSize = 0
        var address: SocketAddress?
        var generation = 0

        mutating func add(_ length: Int, to destination: SocketAddress, generation: Int) {
            if segments == 0 {
                segmentSize = length
                address = destination
                self.generation = generation
            }
            bytes += length
            segments += 1
        }
    }

    private func flush(_ batch: inout Batch) {
        guard batch.segments > 0, let address = batch.address else { return }
        endpoint.send(scratch, count: batch.bytes, segmentSize: batch.segmentSize, to: address)
        batch = Batch()
    }

    /// The largest packet to build: what the path allows (PMTU discovery, or the whole path's
    /// MTU for a peer on this host), within the buffer.
    private var payloadSize: Int {
        guard let connection else { return Int(NGTCP2_MAX_UDP_PAYLOAD_SIZE) }
        return min(QUICSocketWriter.maxBatchBytes, Int(ngtcp2_conn_get_max_tx_udp_payload_size(connection)))
    }

    /// Bytes reserved at a time for stream data arriving.
    static let receiveReserve = 256 * 1024

    /// Most packets one `writePackets` sends before it yields the event loop.
    static let packetsPerTurn = 128

    /// Where ngtcp2 says the last packet goes (the validated path; a new one while ngtcp2
    /// validates a migration).
    private func sendAddress() -> SocketAddress {
        updateRemote()
        return remote
    }

    /// Sets `remote` to the last packet's destination, converted only when it differs from the
    /// one before (then `remoteGeneration` moves on).
    private func updateRemote() {
        let path = pathStorage.pointee.path.remote
        guard let address = path.addr, path.addrlen > 0 else { return }
        let length = Int(path.addrlen)
        guard length <= MemoryLayout<sockaddr_storage>.size else { return }
        let same = withUnsafeBytes(of: &remoteBytes) { current in
            length == remoteLength && memcmp(current.baseAddress!, address, length) == 0
        }
        guard !same else { return }
        switch Int32(address.pointee.sa_family) {
        case AF_INET where length >= MemoryLayout<sockaddr_in>.size:
            remote = SocketAddress(UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self), host: "")
        case AF_INET6 where length >= MemoryLayout<sockaddr_in6>.size:
            remote = SocketAddress(UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in6.self), host: "")
        default:
            return
        }
        withUnsafeMutableBytes(of: &remoteBytes) { copy in
            copy.copyMemory(from: UnsafeRawBufferPointer(start: address, count: length))
        }
        remoteLength = length
        remoteGeneration &+= 1
    }

    // MARK: Timer

    private func armTimer() {
        guard let connection, !closed else { return }
        let expiry = ngtcp2_conn_get_expiry(connection)
        guard expiry != timerExpiry else { return }
        timer?.cancel()
        timerExpiry = expiry
        guard expiry != .max else {
            timer = nil
            return
        }
        let deadline = NIODeadline.uptimeNanoseconds(expiry)
        // Strong: no weak reference to a connection anywhere (see `owner`); tearDown cancels it.
        timer = endpoint.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            expired()
        }
    }

    private func expired() {
        guard !closed, let connection else { return }
        timerExpiry = .max
        timer = nil
        insideNGTCP2 = true
        let code = ngtcp2_conn_handle_expiry(connection, now())
        insideNGTCP2 = false
        guard code == 0 else {
            switch code {
            case NGTCP2_ERR_IDLE_CLOSE: tearDown(LinkError(.transport, "the QUIC connection went silent"))
            case NGTCP2_ERR_HANDSHAKE_TIMEOUT: tearDown(LinkError(.handshakeTimeout, "the QUIC handshake timed out"))
            default: close(LinkError(.transport, "QUIC: \(Self.describe(code))"))
            }
            return
        }
        settle()
    }

    // MARK: Ending

    private func sendClose(_ reason: ngtcp2_connection_close_error) {
        guard let connection else { return }
        var reason = reason
        let result = weft_ngtcp2_conn_write_connection_close(
            connection, &pathStorage.pointee.path, scratch, payloadSize, &reason, now())
        if result > 0 {
            endpoint.send(scratch, count: Int(result), segmentSize: Int(result), to: sendAddress())
            endpoint.flush()
        }
    }

    /// Frees everything, and tells the stream channel and the endpoint.
    private func tearDown(_ error: Error?) {
        guard !closed else { return }
        closed = true
        timer?.cancel()
        timer = nil
        send.release()
        endpoint.forget(self)
        if let connection { ngtcp2_conn_del(connection) }
        connection = nil
        if let session { gnutls_deinit(session) }
        session = nil
        onStreamReady = nil
        // What the peer sent before it closed is the link's: hand it over before the end.
        if received.readableBytes > 0 {
            let rest = received
            received = endpoint.allocator.buffer(capacity: 0)
            channel.deliverRemaining(rest)
        }
        channel.connectionClosed(error)
    }

    // MARK: ngtcp2's callbacks (inside ngtcp2: record only)

    fileprivate func register(_ id: ngtcp2_cid) {
        guard let key = QUICConnectionID(id) else { return }
        ids.insert(key)
        endpoint.route(key, to: self)
    }

    fileprivate func unregister(_ id: ngtcp2_cid) {
        guard let key = QUICConnectionID(id) else { return }
        ids.remove(key)
        endpoint.unroute(key)
    }

    /// From GnuTLS's verify callback.
    func verifyPeer(_ fingerprint: CertificateFingerprint) -> Bool {
        peerFingerprint = fingerprint
        peerAccepted = accepts(self, fingerprint)
        return peerAccepted
    }

    fileprivate func streamDataArrived(_ stream: Int64, _ data: UnsafePointer<UInt8>?, _ count: Int, fin: Bool) {
        guard stream == streamID else { return }
        if count > 0, let data {
            // Room for many packets at once: growing packet by packet copies everything again
            // at each doubling.
            if received.writableBytes < count {
                received.reserveCapacity(minimumWritableBytes: max(count, Self.receiveReserve))
            }
            received.writeBytes(UnsafeRawBufferPointer(start: data, count: count))
        }
        if fin { peerFinished = true }
    }

    fileprivate func streamOpenedByPeer(_ stream: Int64) {
        // The acceptor takes the dialer's first bidirectional stream (its limits allow no other).
        guard role == .acceptor, streamID < 0, stream & 0x3 == 0 else { return }
        streamID = stream
        streamOpened = true
    }

    fileprivate func mayOpenStream() {
        guard role == .dialer, streamID < 0, let connection else { return }
        var id: Int64 = -1
        guard ngtcp2_conn_open_bidi_stream(connection, &id, nil) == 0 else { return }
        streamID = id
        streamOpened = true
    }

    fileprivate func acknowledged(_ stream: Int64, upTo offset: UInt64) {
        guard stream == streamID else { return }
        send.acknowledge(upTo: offset)
    }

    fileprivate func streamClosed(_ stream: Int64) {
        if stream == streamID { peerFinished = true }
    }

    // MARK: Helpers

    /// ngtcp2's clock is the event loop's (an embedded loop's in tests and fuzzing), so its
    /// timers and ours agree.
    private func now() -> UInt64 { endpoint.eventLoop.now.uptimeNanoseconds }

    static func describe(_ code: Int32) -> String { String(cString: ngtcp2_strerror(code)) }

    /// Runs `body` on the connection ngtcp2 calls back for, without retaining it: the
    /// connection is alive while ngtcp2 runs inside it. (Nothing holds a connection weakly
    /// either: a weak reference sends every retain and release of the object down the
    /// runtime's slow path, several times per packet.)
    private static func owner(_ user: UnsafeMutableRawPointer?, _ body: (QUICConnection) -> Void) {
        Unmanaged<QUICConnection>.fromOpaque(user!)._withUnsafeGuaranteedRef(body)
    }

    /// ngtcp2's callbacks: its crypto helper for TLS, these for the rest.
    private static let callbacks: ngtcp2_callbacks = {
        var callbacks = ngtcp2_callbacks()
        callbacks.client_initial = ngtcp2_crypto_client_initial_cb
        callbacks.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb
        callbacks.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb
        callbacks.encrypt = ngtcp2_crypto_encrypt_cb
        callbacks.decrypt = ngtcp2_crypto_decrypt_cb
        callbacks.hp_mask = ngtcp2_crypto_hp_mask_cb
        callbacks.recv_retry = ngtcp2_crypto_recv_retry_cb
        callbacks.update_key = ngtcp2_crypto_update_key_cb
        callbacks.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb
        callbacks.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb
        callbacks.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb
        callbacks.version_negotiation = ngtcp2_crypto_version_negotiation_cb
        callbacks.rand = { destination, length, _ in
            _ = gnutls_rnd(GNUTLS_RND_RANDOM, destination, length)
        }
        callbacks.get_new_connection_id = { _, cid, token, length, user in
            guard let cid, let token, length == QUICConnection.idLength else { return NGTCP2_ERR_CALLBACK_FAILURE }
            cid.pointee = QUICConnectionID.random()
            guard gnutls_rnd(GNUTLS_RND_RANDOM, token, Int(NGTCP2_STATELESS_RESET_TOKENLEN)) == 0 else {
                return NGTCP2_ERR_CALLBACK_FAILURE
            }
            owner(user) { $0.register(cid.pointee) }
            return 0
        }
        callbacks.remove_connection_id = { _, cid, user in
            if let cid { owner(user) { $0.unregister(cid.pointee) } }
            return 0
        }
        callbacks.recv_stream_data = { _, flags, stream, _, data, length, user, _ in
            owner(user) {
                $0.streamDataArrived(stream, data, length, fin: flags & UInt32(NGTCP2_STREAM_DATA_FLAG_FIN) != 0)
            }
            return 0
        }
        callbacks.acked_stream_data_offset = { _, stream, offset, length, user, _ in
            owner(user) { $0.acknowledged(stream, upTo: offset + length) }
            return 0
        }
        callbacks.stream_open = { _, stream, user in
            owner(user) { $0.streamOpenedByPeer(stream) }
            return 0
        }
        callbacks.stream_close = { _, _, stream, _, user, _ in
            owner(user) { $0.streamClosed(stream) }
            return 0
        }
        callbacks.stream_reset = { _, stream, _, _, user, _ in
            owner(user) { $0.streamClosed(stream) }
            return 0
        }
        callbacks.stream_stop_sending = { _, stream, _, user, _ in
            owner(user) { $0.streamClosed(stream) }
            return 0
        }
        callbacks.extend_max_local_streams_bidi = { _, _, user in
            owner(user) { $0.mayOpenStream() }
            return 0
        }
        return callbacks
    }()
}
