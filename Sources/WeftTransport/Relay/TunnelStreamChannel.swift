import NIOConcurrencyHelpers
import NIOCore
import WeftTunnel
import WeftWire

/// One stream of a tunnel as a NIO channel, so a link's TLS and handshake can run inside
/// another tunnel (a relayed link, carried by a third site) exactly as on a TCP connection.
///
/// It lives on its tunnel driver's event loop. Backpressure is the stream's own both ways:
/// bytes that arrived are taken from the tunnel (`consumed`, which gives the peer credit) only
/// once the pipeline has read them, and the channel is unwritable while the tunnel asks its
/// stream to pause. Ends map like TCP's: the peer's finish is an EOF (the channel closes once
/// everything before it was read), `close()` finishes the stream after the bytes written
/// before it, and a reset (by the peer, or the tunnel lost) closes with an error.
public final class TunnelStreamChannel: Channel, ChannelCore, TunnelStreamDelegate, @unchecked Sendable {
    // Everything but `flags` is used on `eventLoop` only.
    private let driver: TunnelDriver
    /// The site at the other end of the tunnel carrying the stream (a relayed link's relay).
    public var carrier: String { driver.peerSite }
    /// The stream, once opened or accepted.
    public private(set) var stream: StreamID?
    public let eventLoop: EventLoop
    public let allocator = ByteBufferAllocator()
    public let parent: Channel? = nil
    /// A stream has no socket address of its own.
    public let localAddress: SocketAddress? = nil
    public let remoteAddress: SocketAddress? = nil
    private let closePromise: EventLoopPromise<Void>
    private var _pipeline: ChannelPipeline!
    private let flags = NIOLockedValueBox((active: false, writable: true))
    private var autoRead = true
    private var readRequested = false
    private var deliveryScheduled = false
    /// Arrived and not yet read by the pipeline (not yet consumed: the peer's credit shrinks).
    private var arrived = CircularBuffer<ByteBuffer>()
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var remoteFinished = false
    /// `close()` finished our direction: what arrives now is dropped.
    private var finishedLocally = false
    private var ended = false
    private var closePromises: [EventLoopPromise<Void>] = []
    /// Why the stream ended, when it did not end cleanly (a reset).
    public private(set) var closeError: Error?
    /// The reset that ended the stream (the peer's, or this side's `refuse`), if one did.
    public private(set) var reset: (code: StreamReset.Code, message: String)?

    /// A peer that neither finishes nor resets after we closed is reset after this long.
    static let lingerLimit: TimeAmount = .seconds(3)

    private init(driver: TunnelDriver) {
        self.driver = driver
        eventLoop = driver.eventLoop
        closePromise = eventLoop.makePromise()
        _pipeline = ChannelPipeline(channel: self)
    }

    /// Opens a stream to `appName` (and `target`) at the tunnel's peer and makes it a channel:
    /// `ready` adds its handlers, then it goes active. On the driver's event loop.
    public static func open(
        on driver: TunnelDriver, appName: String, target: String?, ready: (Channel) throws -> Void
    ) throws -> TunnelStreamChannel {
        driver.eventLoop.preconditionInEventLoop()
        let channel = TunnelStreamChannel(driver: driver)
        channel.stream = driver.openStream(appName: appName, target: target, delegate: channel)
        do {
            try channel.activate(ready)
        } catch {
            channel.close(promise: nil)
            throw error
        }
        return channel
    }

    /// The channel for a stream the peer opened: return it from `TunnelDriver.onIncomingStream`
    /// (bytes that arrive meanwhile wait), then call `activate` (on the driver's loop) once the
    /// caller has decided what runs on it.
    public static func accepted(_ stream: StreamID, on driver: TunnelDriver) -> TunnelStreamChannel {
        driver.eventLoop.preconditionInEventLoop()
        let channel = TunnelStreamChannel(driver: driver)
        channel.stream = stream
        return channel
    }

    /// Refuses the stream with `code` (the peer sees a reset) and closes the channel.
    public func refuse(_ code: StreamReset.Code, _ message: String) {
        eventLoop.preconditionInEventLoop()
        guard !ended, let stream else { return }
        reset = (code, message)
        driver.reset(stream, code: code, message: message)
        end(LinkError(.closed, "refused: \(code): \(message)"))
    }

    /// `ready` adds the handlers; then the channel goes active and reads.
    public func activate(_ ready: (Channel) throws -> Void) throws {
        eventLoop.preconditionInEventLoop()
        guard !ended, !finishedLocally else { throw ChannelError.ioOnClosedChannel }
        try ready(self)
        pipeline.fireChannelRegistered()
        flags.withLockedValue { $0.active = true }
        pipeline.fireChannelActive()
        if autoRead { read() }
        // The peer may have finished (or written) before the channel went active.
        deliver()
    }

    public var pipeline: ChannelPipeline { _pipeline }
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    public var _channelCore: ChannelCore { self }
    public var isActive: Bool { flags.withLockedValue { $0.active } }
    public var isWritable: Bool { flags.withLockedValue { $0.writable } }

    public func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        eventLoop.submit {
            if option is ChannelOptions.Types.AutoReadOption {
                self.autoRead = value as! Bool
                if self.autoRead { self.read() }
            }
            // Socket options mean nothing on a stream.
        }
    }

    public func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        eventLoop.submit {
            guard option is ChannelOptions.Types.AutoReadOption else { throw ChannelError.operationUnsupported }
            return self.autoRead as! Option.Value
        }
    }

    // MARK: TunnelStreamDelegate (on the driver's loop)

    public func streamReceived(_ bytes: ByteBuffer, on stream: StreamID) {
        guard !ended, !finishedLocally else {
            driver.consumed(bytes.readableBytes, on: stream)
            return
        }
        arrived.append(bytes)
        deliver()
    }

    public func streamRemoteFinished(_ stream: StreamID) {
        remoteFinished = true
        deliver()
    }

    public func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {
        if !ended { reset = (code, message) }
        end(LinkError(.closed, "the stream was reset (\(code)\(message.isEmpty ? "" : ": \(message)"))"))
    }

    public func streamClosed(_ stream: StreamID) {
        end(nil)
    }

    public func streamPauseReading(_ stream: StreamID) {
        setWritable(false)
    }

    public func streamResumeReading(_ stream: StreamID) {
        setWritable(true)
    }

    // MARK: Delivery

    /// Hands what arrived to the pipeline if it asked for a read, and closes after the peer's
    /// finish once everything before it was read.
    private func deliver() {
        guard !ended, isActive else { return }
        if readRequested, !arrived.isEmpty {
            readRequested = false
            var count = 0
            while let bytes = arrived.popFirst() {
                count += bytes.readableBytes
                pipeline.fireChannelRead(bytes)
                // A handler may have closed the channel in its read.
                guard !ended else { break }
            }
            if let stream, count > 0 { driver.consumed(count, on: stream) }
            guard !ended else { return }
            pipeline.fireChannelReadComplete()
            if autoRead, !ended { read() }
        }
        if remoteFinished, arrived.isEmpty, !ended {
            // EOF: like a TCP channel that does not allow half-closure, close.
            close0(error: ChannelError.eof, mode: .all, promise: nil)
        }
    }

    private func setWritable(_ writable: Bool) {
        guard !ended else { return }
        let changed = flags.withLockedValue { flags -> Bool in
            defer { flags.writable = writable }
            return flags.writable != writable
        }
        if changed { pipeline.fireChannelWritabilityChanged() }
    }

    /// The stream is gone: fail what waits, and tell the pipeline.
    private func end(_ error: Error?) {
        guard !ended else { return }
        ended = true
        closeError = error
        let failed = pendingWrites
        pendingWrites = []
        for (_, promise) in failed { promise?.fail(error ?? ChannelError.ioOnClosedChannel) }
        // Bytes nobody will read give their credit back (the engine forgets the stream anyway).
        arrived.removeAll()
        let wasActive = flags.withLockedValue { flags -> Bool in
            defer { flags.active = false }
            return flags.active
        }
        for promise in closePromises { promise.succeed() }
        closePromises = []
        if wasActive {
            if let error { pipeline.fireErrorCaught(error) }
            pipeline.fireChannelInactive()
        }
        eventLoop.execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed()
        }
    }

    // MARK: ChannelCore

    public func localAddress0() throws -> SocketAddress { throw ChannelError.operationUnsupported }
    public func remoteAddress0() throws -> SocketAddress { throw ChannelError.operationUnsupported }
    public func register0(promise: EventLoopPromise<Void>?) { promise?.succeed() }
    public func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed() }
    public func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    public func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !ended, !finishedLocally else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        pendingWrites.append((unwrapData(data, as: ByteBuffer.self), promise))
    }

    public func flush0() {
        guard !ended, !finishedLocally, let stream else { return }
        let writes = pendingWrites
        pendingWrites = []
        for (buffer, _) in writes where buffer.readableBytes > 0 { driver.send(buffer, on: stream) }
        // The bytes are the tunnel's now: it delivers them or the stream is reset.
        for (_, promise) in writes { promise?.succeed() }
    }

    public func read0() {
        guard !ended else { return }
        readRequested = true
        guard !deliveryScheduled else { return }
        deliveryScheduled = true
        // Never re-entrantly from inside the pipeline's own read.
        eventLoop.execute {
            self.deliveryScheduled = false
            self.deliver()
        }
    }

    public func close0(error: Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard !ended else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        guard let stream else {
            promise?.succeed()
            end(nil)
            return
        }
        // Half-closure is not offered: a link's byte stream ends both ways at once.
        guard mode == .all else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        guard !finishedLocally else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        // What was written before the close still goes out (flushed or not, as TCP would).
        if !pendingWrites.isEmpty { flush0() }
        finishedLocally = true
        // Nobody reads them now: the peer gets their credit back.
        let unread = arrived.reduce(0) { $0 + $1.readableBytes }
        arrived.removeAll()
        if unread > 0 { driver.consumed(unread, on: stream) }
        driver.finish(stream)
        // The channel is closed for its pipeline now; the stream ends when the peer finishes
        // too (`streamClosed`), or is reset if it does not within `lingerLimit`.
        if let promise { closePromises.append(promise) }
        let wasActive = flags.withLockedValue { flags -> Bool in
            defer { flags.active = false }
            return flags.active
        }
        for promise in closePromises { promise.succeed() }
        closePromises = []
        if wasActive { pipeline.fireChannelInactive() }
        let driver = self.driver
        eventLoop.scheduleTask(in: Self.lingerLimit) { [self] in
            guard !ended else { return }
            driver.reset(stream, code: .cancelled, message: "the peer did not finish its side of a closed stream")
            end(nil)
        }
        if remoteFinished { end(nil) }
    }

    public func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func channelRead0(_ data: NIOAny) {}
    public func errorCaught0(error: Error) {}
}
