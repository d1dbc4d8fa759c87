import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import WeftSite
import WeftTransport
import WeftWire

/// `GET /api/v1/speedtest?site=NAME&seconds=N&direction=upload|download|both`: a speed test
/// through the tunnel to a peer, streamed as NDJSON: progress lines about 4 times a second per
/// direction, then one result (or error) line per direction. `both` runs the two directions at
/// the same time, as aggligator's agg-speed does, so each is measured under the other's load.
struct SpeedtestRoute: Sendable {
    typealias Line = APIModels.SpeedtestLine
    typealias Direction = SpeedtestClient.Direction

    static let maxSeconds = 60

    static func respond(to request: Request, runtime site: SiteRuntime) async throws -> Response {
        let query = request.uri.queryParameters
        guard let peer = query.get("site"), !peer.isEmpty else {
            throw APIError(.badRequest, "name the peer: ?site=NAME", field: "site")
        }
        let secondsText = query.get("seconds") ?? "5"
        guard let seconds = Int(secondsText), (1...maxSeconds).contains(seconds) else {
            throw APIError(.badRequest, "seconds must be a whole number from 1 to \(maxSeconds)", field: "seconds")
        }
        let directions: [Direction]
        switch query.get("direction") ?? "upload" {
        case "upload": directions = [.upload]
        case "download": directions = [.download]
        case "both": directions = [.upload, .download]
        default: throw APIError(.badRequest, "direction must be upload, download or both", field: "direction")
        }
        guard site.knows(peer: peer) else {
            throw APIError(.notFound, "remote site \(peer) not found")
        }
        guard let driver = await site.tunnel(to: peer, within: .seconds(5)) else {
            throw APIError(.serviceUnavailable, "no tunnel to \(peer) has a link")
        }
        let (lines, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                for direction in directions {
                    group.addTask {
                        await run(direction, through: driver, peer: peer, seconds: seconds, into: continuation)
                    }
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: lines))
    }

    /// One direction's test: its progress lines, then its result or error line.
    private static func run(
        _ direction: Direction, through driver: TunnelDriver, peer: String, seconds: Int,
        into continuation: AsyncStream<ByteBuffer>.Continuation
    ) async {
        let last = NIOLockedValueBox<(Duration, UInt64)>((.zero, 0))
        do {
            let result = try await SpeedtestClient.run(through: driver, for: .seconds(seconds), direction: direction) {
                progress in
                let (previousTime, previousBytes) = last.withLockedValue { value in
                    defer { value = (progress.elapsed, progress.bytes) }
                    return value
                }
                let interval = (progress.elapsed - previousTime).inSeconds
                continuation.yield(
                    Line(
                        type: "progress", direction: direction.rawValue, seconds: progress.elapsed.inSeconds,
                        bytes: progress.bytes,
                        bitsPerSecond: interval > 0 ? Double(progress.bytes - previousBytes) * 8 / interval : 0
                    ).buffer)
            }
            continuation.yield(
                Line(
                    type: "result", direction: direction.rawValue, site: peer, seconds: result.elapsed.inSeconds,
                    bytes: result.receivedBytes, bitsPerSecond: result.bitsPerSecond, verified: result.verified,
                    verifiedBytes: result.verifiedBytes
                ).buffer)
        } catch {
            continuation.yield(Line(type: "error", direction: direction.rawValue, message: "\(error)").buffer)
        }
    }
}
