import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import WeftTransport
import WeftTunnel
import WeftWire

/// Sends `SpeedtestPattern` bytes to a peer's `weft.speedtest` for a given time, as fast as
/// the tunnel takes them (it pauses when the engine asks), then finishes and waits for the far
/// end's count. The rate reported is what the far end received over the time until its answer
/// arrived, so bytes still buffered when the time is up do not flatter it.
public final class SpeedtestClient: TunnelStreamDelegate, @unchecked Sendable {
    public struct Progress: Sendable {
        public var elapsed: Duration
        /// Bytes handed to the tunnel so far.
        public var sentBytes: UInt64
    }

    public struct Result: Sendable {
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

    private init(
        driver: TunnelDriver, duration: Duration, onProgress: @escaping @Sendable (Progress) -> Void
    ) {
        self.driver = driver
        self.duration = duration
        self.onProgress = onProgress
        self.done = driver.eventLoop.makePromise()
    }

    /// Runs one test through `driver` for `duration`; `onProgress` is called about 4 times a second.
    public static func run(
        through driver: TunnelDriver, for duration: Duration, onProgress: @escaping @Sendable (Progress) -> Void
    ) async throws -> Result {
        let client = SpeedtestClient(driver: driver, duration: duration, onProgress: onProgress)
        driver.eventLoop.execute { client.start() }
        return try await client.done.futureResult.get()
    }

    private var elapsed: Duration {
        .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - started.uptimeNanoseconds))
    }

    private func start() {
        started = .now()
        stream = driver.openStream(appName: SpeedtestPattern.appName, delegate: self)
        ticker = driver.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) {
            [self] _ in
            onProgress(Progress(elapsed: elapsed, sentBytes: sent))
            if !finished && elapsed >= duration { finishSending() }
        }
        pump()
    }

    /// Sends chunks until paused or out of time, a batch per turn of the loop so the links'
    /// reads and acks get their turns too.
    private func pump() {
        guard let stream, !paused, !finished, !ended else { return }
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
        if answer.readableBytes + count <= 4096 {
            var copy = bytes
            answer.writeBuffer(&copy)
        }
        driver.consumed(count, on: stream)
    }

    public func streamRemoteFinished(_ stream: StreamID) {
        let elapsed = self.elapsed
        guard let data = answer.getData(at: answer.readerIndex, length: answer.readableBytes),
            let far = try? JSONDecoder().decode(SpeedtestSink.Result.self, from: data)
        else {
            end(.failure(Failure(description: "the far end's answer did not parse")))
            return
        }
        let seconds = elapsed.inSeconds
        end(
            .success(
                Result(
                    elapsed: elapsed, sentBytes: sent, receivedBytes: far.bytes, verifiedBytes: far.verifiedBytes,
                    verified: far.mismatchAt == nil && far.bytes == sent,
                    bitsPerSecond: seconds > 0 ? Double(far.bytes) * 8 / seconds : 0)))
    }

    public func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {
        let hint = code == .notExposed ? " (is the far end a weft older than the speed test?)" : ""
        end(.failure(Failure(description: "the far end ended the test: \(code) \(message)\(hint)")))
    }

    public func streamClosed(_ stream: StreamID) {}

    public func streamPauseReading(_ stream: StreamID) { paused = true }

    public func streamResumeReading(_ stream: StreamID) {
        paused = false
        pump()
    }
}
