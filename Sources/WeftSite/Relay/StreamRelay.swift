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
/// (`consumed`) only once the app's socket has taken them, so a slow app holds the peer's
/// sender back through stream credit; and when the engine holds enough of the app's bytes it
/// asks to pause, which stops reading the app's socket. Half-close is carried both ways (an
/// app's EOF finishes the stream; the peer's finish shuts the socket's write side after the
/// last byte), and a reset closes the socket with an RST so the client sees an abnormal end.
///
/// Its state lives on the tunnel driver's event loop; the app's socket may live on another
/// loop, and its events hop here in order. `@unchecked Sendable` because every access to its
/// state happens on `driver.eventLoop`.
final class StreamRelay: TunnelStreamDelegate, @unchecked Sendable {
    let driver: TunnelDriver
    private(set) var stream: StreamID?
    private var logger: Logger
    private var channel: Channel?
    /// Tunnel bytes that arrived before the app's socket was connected.
    private var pending: [ByteBuffer] = []
    private var lastWrite: EventLoopFuture<Void>?
    private var paused = false
    private var remoteFinished = false
    private var appFinished = false
    private var ended = false

    init(driver: TunnelDriver, logger: Logger) {
        self.driver = driver
        self.logger = logger
    }

    /// Client side: opens the stream to `appName` at the peer (on the driver's loop).
    func open(appName: String, target: String?) {
        driver.eventLoop.preconditionInEventLoop()
        guard !ended else { return }  // the client left while the tunnel was awaited
        stream = driver.openStream(appName: appName, target: target, delegate: self)
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
        guard !ended else {
            Self.abort(channel)
            return
        }
        self.channel = channel
        for bytes in pending { write(bytes) }
        pending.removeAll()
        if remoteFinished { shutOutput() }
        if !paused { channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } }
    }

    /// The app's socket could not be opened.
    func connectFailed(_ reason: String, code: StreamReset.Code) {
        driver.eventLoop.preconditionInEventLoop()
        guard !ended, let stream else { return }
        ended = true
        logger.warning("app unreachable; stream refused", metadata: ["reason": "\(reason)"])
        driver.reset(stream, code: code, message: reason)
    }

    // MARK: from the app (hopped to the driver's loop)

    func appRead(_ bytes: ByteBuffer) {
        onDriverLoop {
            guard !$0.ended, !$0.appFinished, let stream = $0.stream else { return }
            $0.driver.send(bytes, on: stream)
        }
    }

    /// The app shut its write side (EOF): finish the stream's direction toward the peer.
    func appInputClosed() {
        onDriverLoop {
            guard !$0.ended, !$0.appFinished, let stream = $0.stream else { return }
            $0.appFinished = true
            $0.driver.finish(stream)
        }
    }

    /// The app's socket is gone. A clean close after the peer finished ends the app's direction
    /// too (NIO closes a socket whose output is shut when EOF arrives, without an input-closed
    /// event); any other close before both directions finished cancels the stream.
    func appClosed(_ reason: String, clean: Bool) {
        onDriverLoop {
            $0.channel = nil
            guard !$0.ended, !($0.appFinished && $0.remoteFinished), let stream = $0.stream else {
                $0.ended = true
                return
            }
            if clean && $0.remoteFinished {
                $0.appFinished = true
                $0.driver.finish(stream)
                return
            }
            $0.ended = true
            $0.logger.debug("app socket closed; stream cancelled", metadata: ["reason": "\(reason)"])
            $0.driver.reset(stream, code: .cancelled, message: reason)
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
        if channel == nil {
            pending.append(bytes)
        } else {
            write(bytes)
        }
    }

    func streamRemoteFinished(_ stream: StreamID) {
        remoteFinished = true
        if channel != nil { shutOutput() }
    }

    func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {
        ended = true
        let refusal = [StreamReset.Code.notExposed, .targetOutOfRange, .appDown, .limitReached].contains(code)
        if refusal {
            logger.warning("stream refused by the peer", metadata: ["code": "\(code)", "reason": "\(message)"])
        } else {
            logger.notice("stream reset", metadata: ["code": "\(code)", "reason": "\(message)"])
        }
        if let channel { Self.abort(channel) }
        channel = nil
    }

    func streamClosed(_ stream: StreamID) {
        ended = true
        guard let channel else { return }
        self.channel = nil
        if let lastWrite {
            lastWrite.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    func streamPauseReading(_ stream: StreamID) {
        paused = true
        channel?.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
    }

    func streamResumeReading(_ stream: StreamID) {
        paused = false
        channel?.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
    }

    // MARK: to the app

    private func write(_ bytes: ByteBuffer) {
        guard let channel, let stream else { return }
        let count = bytes.readableBytes
        let written = channel.writeAndFlush(bytes)
        lastWrite = written
        let driver = self.driver
        written.hop(to: driver.eventLoop).whenSuccess { [weak self] in
            guard let self, !self.ended else { return }
            driver.consumed(count, on: stream)
        }
    }

    /// The peer finished: the app's socket gets EOF once every earlier byte is written.
    private func shutOutput() {
        guard let channel else { return }
        let shut: @Sendable (Result<Void, Error>) -> Void = { _ in channel.close(mode: .output, promise: nil) }
        if let lastWrite {
            lastWrite.whenComplete(shut)
        } else {
            channel.eventLoop.execute { channel.close(mode: .output, promise: nil) }
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
