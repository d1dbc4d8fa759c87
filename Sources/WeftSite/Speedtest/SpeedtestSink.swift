import Foundation
import Logging
import NIOCore
import WeftTransport
import WeftTunnel
import WeftWire

/// The far end of a speed test (`weft.speedtest`): takes every byte at once, checks it against
/// `SpeedtestPattern`, and when the sender finishes answers one JSON line with what arrived.
/// It only ever sends that line, so a peer cannot use it to make this site send data.
final class SpeedtestSink: TunnelStreamDelegate, @unchecked Sendable {
    /// The answer, as the sender reads it.
    struct Result: Codable {
        var bytes: UInt64
        var verifiedBytes: UInt64
        /// The first offset whose byte was wrong, if any.
        var mismatchAt: UInt64?
    }

    private let driver: TunnelDriver
    private let stream: StreamID
    private let pattern: SpeedtestPattern
    private let logger: Logger
    private var received: UInt64 = 0
    private var mismatchAt: UInt64?

    init(driver: TunnelDriver, stream: StreamID, pattern: SpeedtestPattern, logger: Logger) {
        self.driver = driver
        self.stream = stream
        self.pattern = pattern
        self.logger = logger
    }

    func streamReceived(_ bytes: ByteBuffer, on stream: StreamID) {
        let count = bytes.readableBytes
        if mismatchAt == nil && !pattern.matches(bytes, at: received) { mismatchAt = received }
        received += UInt64(count)
        driver.consumed(count, on: stream)
    }

    func streamRemoteFinished(_ stream: StreamID) {
        let result = Result(
            bytes: received, verifiedBytes: mismatchAt ?? received, mismatchAt: mismatchAt)
        var line = (try? JSONEncoder().encode(result)).map { ByteBuffer(bytes: $0) } ?? ByteBuffer()
        line.writeString("\n")
        driver.send(line, on: stream)
        driver.finish(stream)
        logger.info(
            "speed test received", metadata: ["bytes": "\(received)", "verified": "\(mismatchAt == nil)"])
    }

    func streamReset(_ stream: StreamID, code: StreamReset.Code, message: String) {}
    func streamClosed(_ stream: StreamID) {}
    func streamPauseReading(_ stream: StreamID) {}
    func streamResumeReading(_ stream: StreamID) {}
}
