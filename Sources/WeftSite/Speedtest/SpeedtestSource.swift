import Logging
import NIOCore
import WeftTransport
import WeftTunnel
import WeftWire

/// The far end of a download speed test (`weft.speedtest.download`, only with
/// `speedtest.allowDownload`): sends `SpeedtestPattern` bytes to the peer that asked, as fast
/// as the tunnel takes them, for the seconds it asked (at most `maxSeconds`), then finishes.
/// The peer checks every byte. It reads nothing from the peer but throws away what comes, so a
/// peer that writes cannot hold its stream's credit.
final class SpeedtestSource: TunnelStreamDelegate, @unchecked Sendable {
    /// The built-in app a peer opens to be sent data; the stream's target is the seconds.
    static let appName = "weft.speedtest.download"
    static let maxSeconds = 60

    private let driver: TunnelDriver
    private let stream: StreamID
    private let pattern: SpeedtestPattern
    private let duration: Duration
    private let logger: Logger
    private let onEnd: @Sendable () -> Void
    private let started = NIODeadline.now()
    private var sent: UInt64 = 0
    private var paused = false
    private var ended = false

    /// The seconds a peer asked for in the target, if it is a whole number from 1 to `maxSeconds`.
    static func seconds(inTarget target: String?) -> Int? {
        guard let target, (1...2).contains(target.utf8.count), target.utf8.allSatisfy({ (48...57).contains($0) }),
            let seconds = Int(target), (1...maxSeconds).contains(seconds)
        else { return nil }
        return seconds
    }

    init(
        driver: TunnelDriver, stream: StreamID, seconds: Int, pattern: SpeedtestPattern, logger: Logger,
        onEnd: @escaping @Sendable () -> Void
    ) {
        self.driver = driver
        self.stream = stream
        self.duration = .seconds(seconds)
        self.pattern = pattern
        self.logger = logger
        self.onEnd = onEnd
    }

    /// Starts sending on the next turn of the loop (the driver is still handing the stream out).
    func start() {
        driver.eventLoop.execute { self.pump() }
    }

    private var elapsed: Duration {
        .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - started.uptimeNanoseconds))
    }

    /// A batch of chunks per turn of the loop, so the links' reads and acks get their turns.
    private func pump() {
        guard !paused, !ended else { return }
        for _ in 0..<8 {
            if elapsed >= duration {
                driver.finish(stream)
                end()
                logger.info("speed test sent", metadata: ["bytes": "\(sent)"])
                return
            }
            driver.send(pattern.slice(at: sent), on: stream)
            sent += UInt64(SpeedtestPattern.chunk)
            if paused || ended { return }
        }
        driver.eventLoop.execute { self.pump() }
    }

    private func end() {
        guard !ended else { return }
        ended = true
        onEnd()
    }

    func streamReceived(_ bytes: ByteBuffer, on stream: StreamID) {
        driver.consumed(bytes.readableBytes, on: stream)
    }

    func streamRemoteFinished(_ stream: StreamID) {}

    func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {
        if !ended { logger.info("speed test ended by the peer", metadata: ["bytes": "\(sent)", "code": "\(code)"]) }
        end()
    }

    func streamClosed(_ stream: StreamID) { end() }

    func streamPauseReading(_ stream: StreamID) { paused = true }

    func streamResumeReading(_ stream: StreamID) {
        guard paused else { return }
        paused = false
        pump()
    }
}
