import Hummingbird
import Logging
import WeftWire

/// One line per request: method, path, status, time taken, and the user when authenticated.
/// Written to `restfulApi.logger.file` when set, else to the main log at debug level.
struct AccessLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let level: Logger.Level

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        let user = BasicAuthVerifier.userName(authorizationHeader: request.headers[.authorization])
        do {
            let response = try await next(request, context)
            log(request, status: Int(response.status.code), since: start, user: user)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            log(request, status: Int(status), since: start, user: user)
            throw error
        }
    }

    private func log(_ request: Request, status: Int, since start: ContinuousClock.Instant, user: String?) {
        let elapsed = ContinuousClock.now - start
        let milliseconds = elapsed.inSeconds * 1000
        var metadata: Logger.Metadata = [
            "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(status)",
            "ms": "\((milliseconds * 100).rounded() / 100)",
        ]
        if let user { metadata["user"] = "\(user)" }
        logger.log(level: level, "api request", metadata: metadata)
    }
}
