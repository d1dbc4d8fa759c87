import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import WeftTransport
import WeftTunnel
import WeftWire

/// One speed test through a tunnel.
///
/// Upload: sends `SpeedtestPattern` bytes to the peer's `weft.speedtest` for a given time, as
/// fast as the tunnel takes them (it pauses when the engine asks), then finishes and waits for
/// the far end's count. The rate reported is what the far end received over the time until its
/// answer arrived, so bytes still buffered when the time is up do not flatter it.
///
/// Download: asks the peer's `weft.speedtest.download` (served only with its
/// `speedtest.allowDownload`) to send for that time, checks every byte that arrives against the
/// pattern, and reports what arrived over the time until the peer's finish.
public final class SpeedtestClient: TunnelStreamDelegate, @unchecked Sendable {
    public enum Direction: String, Sendable, CaseIterable {
        /// This site sends, the peer counts.
        case upload
        /// The peer sends, this site counts.
        case download
    }

    public struct Progress: Sendable {
        public var direction: Direction
        public var elapsed: Duration
        /// Bytes handed to the tunnel (upload) or received (download) so far.
        public var bytes: UInt64
    }

    public struct Result: Sendable {
        public var direction: Direction
        public var elapsed: Duration
        public var sentBytes: UInt64
        /// What the far end counted, and how much of it matched the pattern.
        public var receivedBytes: UInt64
        public var verifiedBytes: UInt64
        public var verified: Bool
        public var bitsPerSecond: Double
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private let driver: TunnelDriver
    private let pattern = SpeedtestPattern()
    private let direction: Direction
    private let duration: Duration
    private let onProgress: @Sendable (Progress) -> Void
    private let done: EventLoopPromise<Result>
    private var stream: StreamID?
    private var started = NIODeadline.now()
    private var sent: UInt64 = 0
    private var paused = false
    private var finished = false
    private var ended = false
    private var answer = ByteBuffer()
    private var ticker: RepeatedTask?
    /// Download: bytes received, and the first offset that did not match the pattern.
    private var received: UInt64 = 0
    private var mismatchAt: UInt64?

    private init(
        driver: TunnelDriver, direction: Direction, duration: Duration,
        onProgress: @escaping @Sendable (Progress) -> Void
    ) {
        self.driver = driver
        self.direction = direction
        self.duration = duration
        self.onProgress = onProgress
        self.done = driver.eventLoop.makePromise()
    }

    /// Runs one test through `driver` for `duration` (whole seconds, 1–60 for a download);
    /// `onProgress` is called about 4 times a second.
    public static func run(
        through driver: TunnelDriver, for duration: Duration, direction: Direction = .upload,
        onProgress: @escaping @Sendable (Progress) -> Void
    ) async throws -> Result {
        let client = SpeedtestClient(driver: driver, direction: direction, duration: duration, onProgress: onProgress)
        driver.eventLoop.execute { client.start() }
        return try await client.done.futureResult.get()
    }

    private var elapsed: Duration {
        .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - started.uptimeNanoseconds))
    }

    private func start() {
        started = .now()
        if direction == .download {
            // The peer sends; this side sends nothing and says so at once.
            let stream = driver.openStream(
                appName: SpeedtestSource.appName, target: "\(duration.components.seconds)", delegate: self)
            self.stream = stream
            finished = true
            if !ended { driver.finish(stream) }
        } else {
            stream = driver.openStream(appName: SpeedtestPattern.appName, delegate: self)
        }
        // The far end has its time and a grace for the last bytes (a slow link may hold a
        // megabyte or more in buffers) and its answer.
        let deadline = duration + .seconds(60)
        ticker = driver.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) {
            [self] _ in
            onProgress(Progress(direction: direction, elapsed: elapsed, bytes: direction == .upload ? sent : received))
            if !finished && elapsed >= duration { finishSending() }
            if elapsed >= deadline {
                if let stream { driver.reset(stream, code: .cancelled, message: "the speed test timed out") }
                end(.failure(Failure(description: "the far end did not finish within \(deadline.inSeconds) s")))
            }
        }
        pump()
    }

    /// Sends chunks until paused or out of time, a batch per turn of the loop so the links'
    /// reads and acks get their turns too.
    private func pump() {
        guard direction == .upload, let stream, !paused, !finished, !ended else { return }
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

    private func finishSending() {
        guard let stream, !finished, !ended else { return }
        finished = true
        driver.finish(stream)
    }

    private func end(_ result: Swift.Result<Result, Failure>) {
        guard !ended else { return }
        ended = true
        ticker?.cancel()
        switch result {
        case .success(let value): done.succeed(value)
        case .failure(let error): done.fail(error)
        }
    }

    public func streamReceived(_ bytes: ByteBuffer, on stream: StreamID) {
        let count = bytes.readableBytes
        if direction == .download {
            if mismatchAt == nil && !pattern.matches(bytes, at: received) { mismatchAt = received }
            received += UInt64(count)
            driver.consumed(count, on: stream)
            return
        }
        if answer.readableBytes + count <= 4096 {
            var copy = bytes
            answer.writeBuffer(&copy)
        }
        driver.consumed(count, on: stream)
    }

    public func streamRemoteFinished(_ stream: StreamID) {
        let elapsed = self.elapsed
        let seconds = elapsed.inSeconds
        if direction == .download {
            end(
                .success(
                    Result(
                        direction: .download, elapsed: elapsed, sentBytes: 0, receivedBytes: received,
                        verifiedBytes: mismatchAt ?? received, verified: mismatchAt == nil && received > 0,
                        bitsPerSecond: seconds > 0 ? Double(received) * 8 / seconds : 0)))
            return
        }
        guard let data = answer.getData(at: answer.readerIndex, length: answer.readableBytes),
            let far = try? JSONDecoder().decode(SpeedtestSink.Result.self, from: data)
        else {
            end(.failure(Failure(description: "the far end's answer did not parse")))
            return
        }
        end(
            .success(
                Result(
                    direction: .upload, elapsed: elapsed, sentBytes: sent, receivedBytes: far.bytes,
                    verifiedBytes: far.verifiedBytes,
                    verified: far.mismatchAt == nil && far.bytes == sent,
                    bitsPerSecond: seconds > 0 ? Double(far.bytes) * 8 / seconds : 0)))
    }

    public func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {
        let hint = code == .notExposed ? " (is the far end a weft older than this speed test?)" : ""
        end(.failure(Failure(description: "the far end ended the test: \(code) \(message)\(hint)")))
    }

    public func streamClosed(_ stream: StreamID) {}

    public func streamPauseReading(_ stream: StreamID) { paused = true }

    public func streamResumeReading(_ stream: StreamID) {
        paused = false
        pump()
    }
}
