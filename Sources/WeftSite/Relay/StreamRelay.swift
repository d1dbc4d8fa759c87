import Logging
import NIOCore
import NIOPosix
import WeftTransport
import WeftTunnel
import WeftWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Carries one stream between the tunnel and one app socket, both ways.
///
/// Backpressure runs end to end: bytes from the tunnel are acknowledged to the engine
/// (`consumed`) only once the app's socket has taken them (see `write`), so a slow app holds
/// the peer's sender back through stream credit; and when the engine holds enough of the app's
/// bytes it asks to pause, which stops reading the app's socket. Half-close is carried both
/// ways (an app's EOF finishes the stream; the peer's finish shuts the socket's write side
/// after the last byte), and a reset closes the socket with an RST so the client sees an
/// abnormal end.
///
/// Its state lives on the tunnel driver's event loop; the app's socket may live on another
/// loop, and its events hop here in order. `@unchecked Sendable` because every access to its
/// state happens on `driver.eventLoop`.
final class StreamRelay: TunnelStreamDelegate, @unchecked Sendable {
    let driver: TunnelDriver
    private(set) var stream: StreamID?
    private var logger: Logger
    private var machine = RelayStateMachine()
    private var channel: Channel?
    /// The last write to a socket on another loop (writes on the driver's loop carry none).
    private var lastWrite: EventLoopFuture<Void>?
    /// Bytes written to a socket on the driver's loop while it was over its high-water mark:
    /// their credit goes back when it becomes writable.
    private var owed = 0
    /// The app's counters (API, dashboard): this stream counts as open until the relay goes.
    private let meter: AppTrafficMeter?

    init(driver: TunnelDriver, meter: AppTrafficMeter? = nil, logger: Logger) {
        self.driver = driver
        self.meter = meter
        self.logger = logger
        meter?.streamStarted()
    }

    deinit { meter?.streamEnded() }

    /// Client side: opens the stream to `appName` at the peer (on the driver's loop), with the
    /// client's address for a far app that wants it.
    func open(appName: String, target: String?, origin: StreamOrigin?) {
        driver.eventLoop.preconditionInEventLoop()
        guard !machine.ended else { return }  // the client left while the tunnel was awaited
        stream = driver.openStream(appName: appName, target: target, origin: origin, delegate: self)
        logger[metadataKey: "stream"] = "\(stream!)"
    }

    /// App side: the peer opened `stream`.
    func accepted(_ stream: StreamID) {
        self.stream = stream
        logger[metadataKey: "stream"] = "\(stream)"
    }

    /// The app's socket is ready: start carrying bytes (on the driver's loop).
    func attach(_ channel: Channel) {
        driver.eventLoop.preconditionInEventLoop()
        self.channel = channel
        perform(machine.socketAttached())
    }

    /// The app's socket could not be opened.
    func connectFailed(_ reason: String) {
        driver.eventLoop.preconditionInEventLoop()
        logger.warning("app unreachable; stream refused", metadata: ["reason": "\(reason)"])
        perform(machine.socketFailed(reason))
    }

    // MARK: from the app (hopped to the driver's loop)

    func appRead(_ bytes: ByteBuffer) {
        // Directly when the socket shares the driver's loop (the usual case): no closure per read.
        if driver.eventLoop.inEventLoop {
            perform(machine.appRead(bytes))
        } else {
            driver.eventLoop.execute { self.perform(self.machine.appRead(bytes)) }
        }
    }

    /// The app's socket went below its low-water mark again (on the socket's loop).
    func appWritable() {
        onDriverLoop { $0.creditOwed() }
    }

    /// The app shut its write side (EOF).
    func appInputClosed() {
        onDriverLoop { $0.perform($0.machine.appInputClosed()) }
    }

    /// The app's socket is gone.
    func appClosed(_ reason: String, clean: Bool) {
        onDriverLoop { relay in
            let actions = relay.machine.appClosed(reason, clean: clean)
            relay.channel = nil
            if actions.contains(where: { if case .resetStream = $0 { true } else { false } }) {
                relay.logger.debug("app socket closed; stream cancelled", metadata: ["reason": "\(reason)"])
            }
            relay.perform(actions)
        }
    }

    private func onDriverLoop(_ body: @escaping @Sendable (StreamRelay) -> Void) {
        if driver.eventLoop.inEventLoop {
            body(self)
        } else {
            driver.eventLoop.execute { body(self) }
        }
    }

    // MARK: TunnelStreamDelegate (on the driver's loop)

    func streamReceived(_ bytes: ByteBuffer, on stream: StreamID) {
        perform(machine.tunnelBytes(bytes))
    }

    func streamRemoteFinished(_ stream: StreamID) {
        perform(machine.remoteFinish())
    }

    func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {
        let refusal = [StreamReset.Code.notExposed, .notAllowed, .targetOutOfRange, .appDown, .limitReached].contains(
            code)
        if refusal {
            logger.warning("stream refused by the peer", metadata: ["code": "\(code)", "reason": "\(message)"])
        } else if code == .cancelled {
            // A client or app that closed before the other side finished: ordinary app behaviour.
            logger.info("stream reset", metadata: ["code": "\(code)", "reason": "\(message)"])
        } else {
            logger.notice("stream reset", metadata: ["code": "\(code)", "reason": "\(message)"])
        }
        perform(machine.streamReset())
    }

    func streamClosed(_ stream: StreamID) {
        perform(machine.streamClosed())
    }

    func streamPauseReading(_ stream: StreamID) {
        perform(machine.pauseReading())
    }

    func streamResumeReading(_ stream: StreamID) {
        perform(machine.resumeReading())
    }

    // MARK: carrying out

    private func perform(_ actions: [RelayStateMachine.Action]) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: RelayStateMachine.Action?) {
        guard let action else { return }
        switch action {
        case .writeToApp(let bytes):
            meter?.received(bytes.readableBytes)
            write(bytes)
        case .shutAppOutput:
            guard let channel else { return }
            afterWrites(on: channel) { channel.close(mode: .output, promise: nil) }
        case .setReading(let on):
            channel?.setOption(ChannelOptions.autoRead, value: on).whenFailure { _ in }
        case .sendToTunnel(let bytes):
            guard let stream else { return }
            meter?.sent(bytes.readableBytes)
            driver.send(bytes, on: stream)
        case .finishStream:
            if let stream { driver.finish(stream) }
        case .consume(let count):
            if let stream { driver.consumed(count, on: stream) }
        case .resetStream(let code, let reason):
            if let stream { driver.reset(stream, code: code, message: reason) }
        case .abortSocket:
            if let channel { Self.abort(channel) }
            channel = nil
        case .closeSocket:
            guard let channel else { return }
            self.channel = nil
            afterWrites(on: channel) { channel.close(promise: nil) }
        }
    }

    /// Writes to the app; the bytes' credit goes back once the socket has taken them.
    ///
    /// On the driver's loop (the usual case) the write is carried out at once and needs no
    /// promise: while the channel is under its high-water mark the bytes count as taken, past
    /// it they are owed until it is writable again. So a client that never reads holds at most
    /// the water mark plus one stream window here, as with a promise per write, without the
    /// promise, its hop and its callback (five allocations per write). A socket on another loop gets its
    /// writes later, so there each write's completion is awaited.
    private func write(_ bytes: ByteBuffer) {
        guard let channel else { return }
        let count = bytes.readableBytes
        guard channel.eventLoop === driver.eventLoop else {
            let written = channel.writeAndFlush(bytes)
            lastWrite = written
            written.hop(to: driver.eventLoop).whenSuccess { [weak self] in
                guard let self else { return }
                self.perform(self.machine.writeCompleted(count))
            }
            return
        }
        channel.writeAndFlush(bytes, promise: nil)
        owed += count
        if channel.isWritable { creditOwed() }
    }

    /// Gives the credit of every byte written and not yet credited back.
    private func creditOwed() {
        guard owed > 0 else { return }
        let taken = owed
        owed = 0
        perform(machine.writeCompleted(taken))
    }

    /// Runs `body` once every write issued so far is done.
    private func afterWrites(on channel: Channel, _ body: @escaping @Sendable () -> Void) {
        if let lastWrite {
            lastWrite.whenComplete { _ in body() }
        } else {
            // Writes complete in order: an empty one's promise completes after every earlier
            // write (or fails with them when the socket is gone).
            let done = channel.eventLoop.makePromise(of: Void.self)
            channel.writeAndFlush(ByteBuffer(), promise: done)
            done.futureResult.whenComplete { _ in body() }
        }
    }

    /// Closes with an RST (SO_LINGER 0 on TCP), so the client sees the stream fail, not end.
    static func abort(_ channel: Channel) {
        channel.eventLoop.execute {
            guard channel.localAddress?.protocol != .unix, let provider = channel as? SocketOptionProvider else {
                channel.close(promise: nil)
                return
            }
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
