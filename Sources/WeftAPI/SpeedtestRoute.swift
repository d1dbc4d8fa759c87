import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import WeftSite
import WeftWire

/// `GET /api/v1/speedtest?site=NAME&seconds=N`: a speed test through the tunnel to a peer,
/// streamed as NDJSON: progress lines about 4 times a second, then one result (or error) line.
struct SpeedtestRoute: Sendable {
    typealias Line = APIModels.SpeedtestLine

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
        guard site.knows(peer: peer) else {
            throw APIError(.notFound, "remote site \(peer) not found")
        }
        guard let driver = await site.tunnel(to: peer, within: .seconds(5)) else {
            throw APIError(.serviceUnavailable, "no tunnel to \(peer) has a link")
        }
        let (lines, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let last = NIOLockedValueBox<(Duration, UInt64)>((.zero, 0))
        let task = Task {
            do {
                let result = try await SpeedtestClient.run(through: driver, for: .seconds(seconds)) { progress in
                    let (previousTime, previousBytes) = last.withLockedValue { value in
                        defer { value = (progress.elapsed, progress.sentBytes) }
                        return value
                    }
                    let interval = (progress.elapsed - previousTime).inSeconds
                    continuation.yield(
                        Line(
                            type: "progress", seconds: progress.elapsed.inSeconds, bytes: progress.sentBytes,
                            bitsPerSecond: interval > 0 ? Double(progress.sentBytes - previousBytes) * 8 / interval : 0
                        ).buffer)
                }
                continuation.yield(
                    Line(
                        type: "result", site: peer, seconds: result.elapsed.inSeconds, bytes: result.receivedBytes,
                        bitsPerSecond: result.bitsPerSecond, verified: result.verified,
                        verifiedBytes: result.verifiedBytes
                    ).buffer)
            } catch {
                continuation.yield(Line(type: "error", message: "\(error)").buffer)
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: lines))
    }

}
