import Logging
import NIOCore
import WeftTransport
import WeftTunnel
import WeftWire

/// The far end of a download speed test (`weft.speedtest.download`, only with
/// `speedtest.allowDownload`): sends `SpeedtestPattern` bytes to the peer that asked, as fast
/// as the tunnel takes them, for the seconds it asked (at most `maxSeconds`), then finishes.
/// The peer checks every byte. It reads nothing from the peer but throws away what comes, so a
/// peer that writes cannot hold its stream's credit. Its time is kept by timers, not by its
/// sending: a peer that grants no credit (so the source stays paused) is finished on time, and
/// reset 30 s later if it still has not taken the data, so it cannot hold a test slot.
final class SpeedtestSource: TunnelStreamDelegate, @unchecked Sendable {
    /// The built-in app a peer opens to be sent data; the stream's target is the seconds.
    static let appName = "weft.speedtest.download"
    static let maxSeconds = 60
    /// How long after its time a test may take to deliver what it sent.
    static let grace = TimeAmount.seconds(30)

    private let driver: TunnelDriver
    private let stream: StreamID
    private let pattern: SpeedtestPattern
    private let seconds: Int
    private let duration: Duration
    private let logger: Logger
    private let onEnd: @Sendable () -> Void
    private let started = NIODeadline.now()
    private var sent: UInt64 = 0
    private var paused = false
    private var finished = false
    private var ended = false
    private var timers: [Scheduled<Void>] = []

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
        self.seconds = seconds
        self.duration = .seconds(seconds)
        self.pattern = pattern
        self.logger = logger
        self.onEnd = onEnd
    }

    /// Starts sending on the next turn of the loop (the driver is still handing the stream out).
    func start() {
        driver.eventLoop.execute { [self] in
            guard !ended else { return }
            let time = TimeAmount.seconds(Int64(seconds))
            timers = [
                driver.eventLoop.scheduleTask(in: time) { self.finishSending() },
                driver.eventLoop.scheduleTask(in: time + Self.grace) { self.giveUp() },
            ]
            pump()
        }
    }

    private var elapsed: Duration {
        .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - started.uptimeNanoseconds))
    }

    /// A batch of chunks per turn of the loop, so the links' reads and acks get their turns.
    private func pump() {
        guard !paused, !finished, !ended else { return }
        for _ in 0..<8 {
            if elapsed >= duration {
                finishSending()
                return
            }
            driver.send(pattern.slice(at: sent), on: stream)
            sent += UInt64(SpeedtestPattern.chunk)
            if paused || ended { return }
        }
        driver.eventLoop.execute { self.pump() }
    }

    /// The time is up: the stream finishes (its slot is freed once the peer has it all).
    private func finishSending() {
        guard !finished, !ended else { return }
        finished = true
        driver.finish(stream)
        logger.info("speed test sent", metadata: ["bytes": "\(sent)"])
    }

    /// The peer has not taken the data within the grace: the stream ends here.
    private func giveUp() {
        guard !ended else { return }
        logger.notice("speed test reset: the peer did not take its data in time", metadata: ["bytes": "\(sent)"])
        driver.reset(stream, code: .cancelled, message: "the speed test's data was not taken in time")
        end()
    }

    private func end() {
        guard !ended else { return }
        ended = true
        for timer in timers { timer.cancel() }
        timers = []
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
