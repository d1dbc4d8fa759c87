import NIOConcurrencyHelpers
import NIOCore
import WeftIdentity

/// A QUIC link's stream as a NIO channel, so the link's handshake and the tunnel's frames run
/// on it exactly as on a TCP connection.
///
/// Reads follow the pipeline's `read()`: bytes that arrived wait in the connection until asked
/// for, and only then does the peer get more flow-control credit, so a link that holds its
/// reads holds the peer. Writes go into the connection's send buffer on flush; the channel is
/// unwritable while that buffer (unacknowledged bytes included) is above `highWater`.
final class QUICStreamChannel: Channel, ChannelCore, @unchecked Sendable {
    // Everything but `flags` is used on `eventLoop` only.
    /// Strong, and dropped once the connection is gone: a cycle while the connection lives,
    /// because a weak reference would slow every retain of the connection (see its `owner`).
    private var connection: QUICConnection?
    let eventLoop: EventLoop
    let allocator: ByteBufferAllocator
    let parent: Channel?
    let localAddress: SocketAddress?
    let remoteAddress: SocketAddress?
    private let closePromise: EventLoopPromise<Void>
    private var _pipeline: ChannelPipeline!
    private let flags = NIOLockedValueBox((active: false, writable: true))
    private var autoRead = true
    private var readRequested = false
    private var deliveryScheduled = false
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var pendingBytes = 0
    private var closed = false
    /// Closed by the pipeline: nothing more may be written while the last bytes go out.
    private var closing = false
    private var closePromises: [EventLoopPromise<Void>] = []
    /// Why the connection ended, when it did not end cleanly.
    private(set) var closeError: Error?
    /// The certificate the peer presented (and the connection accepted), once the handshake did.
    private(set) var peerFingerprint: CertificateFingerprint?

    init(connection: QUICConnection) {
        self.connection = connection
        eventLoop = connection.endpoint.eventLoop
        allocator = connection.endpoint.allocator
        parent = connection.endpoint.channel
        localAddress = connection.endpoint.localAddress
        remoteAddress = connection.remote
        closePromise = eventLoop.makePromise()
        _pipeline = ChannelPipeline(channel: self)
    }

    var pipeline: ChannelPipeline { _pipeline }
    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    var _channelCore: ChannelCore { self }
    var isActive: Bool { flags.withLockedValue { $0.active } }
    var isWritable: Bool { flags.withLockedValue { $0.writable } }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        eventLoop.submit {
            if option is ChannelOptions.Types.AutoReadOption {
                self.autoRead = value as! Bool
                if self.autoRead { self.read() }
            }
            // Socket options mean nothing on a QUIC stream; the connection has its own settings.
        }
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        eventLoop.submit {
            guard option is ChannelOptions.Types.AutoReadOption else { throw ChannelError.operationUnsupported }
            return self.autoRead as! Option.Value
        }
    }

    // MARK: From the connection

    /// The stream is open and the peer authenticated: `ready` adds the link's handlers, then the
    /// channel goes active.
    func becomeActive(peer fingerprint: CertificateFingerprint?, ready: (Channel) throws -> Void) throws {
        eventLoop.preconditionInEventLoop()
        peerFingerprint = fingerprint
        try ready(self)
        pipeline.fireChannelRegistered()
        flags.withLockedValue { $0.active = true }
        pipeline.fireChannelActive()
        if autoRead { read() }
    }

    /// Hands what arrived to the pipeline if it asked for a read.
    @discardableResult
    func deliverIfRequested() -> Bool {
        guard readRequested, !closed, isActive, let data = connection?.takeReceived() else { return false }
        readRequested = false
        pipeline.fireChannelRead(data)
        // A handler may have closed the channel in its read: nothing follows channelInactive.
        guard !closed else { return true }
        pipeline.fireChannelReadComplete()
        if autoRead, !closed { read() }
        return true
    }

    /// Bytes that arrived before the peer closed: delivered whether or not a read is pending.
    func deliverRemaining(_ data: ByteBuffer) {
        guard !closed, isActive else { return }
        pipeline.fireChannelRead(data)
        pipeline.fireChannelReadComplete()
    }

    func updateWritability() {
        guard !closed, let connection else { return }
        let buffered = connection.bufferedBytes + pendingBytes
        let (was, now) = flags.withLockedValue { flags -> (Bool, Bool) in
            let was = flags.writable
            if was, buffered >= QUICConnection.highWater { flags.writable = false }
            if !was, buffered < QUICConnection.lowWater { flags.writable = true }
            return (was, flags.writable)
        }
        if was != now { pipeline.fireChannelWritabilityChanged() }
    }

    /// The connection is gone (closed by either side, timed out or failed).
    func connectionClosed(_ error: Error?) {
        guard !closed else { return }
        closed = true
        connection = nil
        closeError = error
        let failed = pendingWrites
        pendingWrites = []
        pendingBytes = 0
        for (_, promise) in failed { promise?.fail(error ?? ChannelError.ioOnClosedChannel) }
        let wasActive = flags.withLockedValue { flags -> Bool in
            defer { flags.active = false }
            return flags.active
        }
        for promise in closePromises { promise.succeed() }
        closePromises = []
        if wasActive {
            if let error, (error as? LinkError)?.code != .closed { pipeline.fireErrorCaught(error) }
            pipeline.fireChannelInactive()
        }
        eventLoop.execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed()
        }
    }

    // MARK: ChannelCore

    func localAddress0() throws -> SocketAddress {
        guard let localAddress else { throw ChannelError.operationUnsupported }
        return localAddress
    }

    func remoteAddress0() throws -> SocketAddress {
        guard let remoteAddress else { throw ChannelError.operationUnsupported }
        return remoteAddress
    }

    func register0(promise: EventLoopPromise<Void>?) { promise?.succeed() }
    func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed() }
    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !closed, !closing else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let buffer = unwrapData(data, as: ByteBuffer.self)
        pendingWrites.append((buffer, promise))
        pendingBytes += buffer.readableBytes
        updateWritability()
    }

    func flush0() {
        guard !closed, let connection else { return }
        let writes = pendingWrites
        pendingWrites = []
        pendingBytes = 0
        for (buffer, _) in writes { connection.enqueue(buffer) }
        // The bytes are the connection's now: it delivers or the link is gone.
        for (_, promise) in writes { promise?.succeed() }
        connection.writePackets()
    }

    func read0() {
        guard !closed else { return }
        readRequested = true
        guard !deliveryScheduled else { return }
        deliveryScheduled = true
        // Never re-entrantly from inside the pipeline's own read.
        eventLoop.execute {
            self.deliveryScheduled = false
            // Taking bytes gave the peer credit: tell it.
            if self.deliverIfRequested() { self.connection?.writePackets() }
        }
    }

    func close0(error: Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard !closed else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        if let promise { closePromises.append(promise) }
        if let connection {
            // What was written before the close still goes out (flushed or not, as TCP would).
            if !pendingWrites.isEmpty { flush0() }
            closing = true
            connection.finish()
        } else {
            connectionClosed(nil)
        }
    }

    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func channelRead0(_ data: NIOAny) {}
    func errorCaught0(error: Error) {}
}
extension QUICStreamChannel: PeerAuthenticatedChannel {}
