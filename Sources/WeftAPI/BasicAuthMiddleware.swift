import HTTPTypes
import Hummingbird
import Logging
import WeftSite
import WeftTransport

/// Lets a request through only with credentials from `restfulApi.auth.basicAuth` (when any are
/// configured); otherwise 401 with a `WWW-Authenticate` challenge, so a browser asks for them.
///
/// Two routes stay open, as in wovenet, whose users script them: `GET /ping` (a health check
/// that tells nothing about the site) and `POST /login` (which checks credentials itself).
struct BasicAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let verifier: BasicAuthVerifier
    let logger: Logger
    private let refusals = LogLimiter()

    /// Method and path of the routes that need no credentials.
    static var openRoutes: [(HTTPRequest.Method, String)] { [(.get, "/ping"), (.post, "/login")] }

    init(verifier: BasicAuthVerifier, logger: Logger) {
        self.verifier = verifier
        self.logger = logger
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard verifier.isEnabled else { return try await next(request, context) }
        if Self.openRoutes.contains(where: { $0.0 == request.method && $0.1 == request.uri.path }) {
            return try await next(request, context)
        }
        if verifier.authenticate(authorizationHeader: request.headers[.authorization]) != nil {
            return try await next(request, context)
        }
        let (allowed, suppressed) = refusals.admit("401")
        if allowed {
            logger.notice(
                "API request without valid credentials refused",
                metadata: [
                    "path": "\(request.uri.path)",
                    "credentials": "\(request.headers[.authorization] == nil ? "none" : "wrong")",
                    "alsoRefusedSinceLastLine": "\(suppressed)",
                ])
        }
        var response = try APIError(.unauthorized, "credentials required").response(from: request, context: context)
        response.headers[.wwwAuthenticate] = "Basic realm=\"weft\", charset=\"UTF-8\""
        return response
    }
}
