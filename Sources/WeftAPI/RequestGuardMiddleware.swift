import HTTPTypes
import Hummingbird
import Logging
import WeftSite
import WeftTransport

/// Keeps web pages in the operator's browser from driving the API.
///
/// A page on any site can make the browser send requests to `127.0.0.1` (with Basic
/// credentials the browser has cached), and DNS rebinding can make a page's own name point at
/// it. So:
/// - a request that changes something (POST, PUT, PATCH, DELETE) must say `Content-Type:
///   application/json` when it has a body, and POST, PUT and PATCH always: the types a page may
///   send without asking first (text/plain, forms) are refused with 415;
/// - a browser that says the request is cross-site (`Sec-Fetch-Site`) is refused with 403;
/// - an `Origin` header, when present, must name the host the request was sent to;
/// - when the API listens on loopback, `Host` must be a loopback name (`localhost`, 127.0.0.0/8,
///   `::1`): a rebound name is refused with 421.
struct RequestGuardMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Whether the API listens on loopback only (then `Host` is checked).
    let loopbackOnly: Bool
    let logger: Logger
    private let refusals = LogLimiter()

    init(listenHost: String, logger: Logger) {
        self.loopbackOnly = Self.isLoopback(host: listenHost)
        self.logger = logger
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let refusal = refusal(for: request) {
            let (allowed, suppressed) = refusals.admit("\(refusal.status.code)")
            if allowed {
                logger.notice(
                    "API request refused",
                    metadata: [
                        "reason": "\(refusal.message)", "path": "\(request.uri.path)",
                        "alsoRefusedSinceLastLine": "\(suppressed)",
                    ])
            }
            return try refusal.response(from: request, context: context)
        }
        return try await next(request, context)
    }

    func refusal(for request: Request) -> APIError? {
        let headers = request.headers
        if let site = headers[HTTPField.Name("Sec-Fetch-Site")!], !["same-origin", "none"].contains(site.lowercased()) {
            return APIError(.forbidden, "cross-site requests are refused (Sec-Fetch-Site: \(site))")
        }
        // HTTP/1's Host header arrives as the request's authority (a Host field, where not).
        let host = (request.head.authority ?? headers[HTTPField.Name("Host")!]).map(Self.hostName)
        if loopbackOnly, let host, !Self.isLoopback(host: host) {
            return APIError(.misdirectedRequest, "this API answers to loopback names only, not \(host)")
        }
        if let origin = headers[.origin] {
            let originHost = Self.originHost(origin)
            guard let originHost, originHost == host || (loopbackOnly && Self.isLoopback(host: originHost)) else {
                return APIError(.forbidden, "requests from another origin (\(origin)) are refused")
            }
        }
        switch request.method {
        case .post, .put, .patch, .delete:
            let hasBody =
                (headers[.contentLength].flatMap { Int($0) } ?? 0) > 0 || headers[.transferEncoding] != nil
            guard hasBody || request.method != .delete else { return nil }
            let type = headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces)
            guard type?.lowercased() == "application/json" else {
                return APIError(
                    .unsupportedMediaType, "request bodies must be sent as Content-Type: application/json")
            }
        default:
            break
        }
        return nil
    }

    /// The host part of a `Host` header: `[::1]:8080` → `::1`, `localhost:80` → `localhost`.
    static func hostName(_ header: String) -> String {
        var text = Substring(header.lowercased())
        if text.hasPrefix("[") {
            return String(text.dropFirst().prefix { $0 != "]" })
        }
        if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            text = text[..<colon]
        }
        return String(text)
    }

    /// The host of an `Origin` (`http://127.0.0.1:8080` → `127.0.0.1`); nil for `null` or junk.
    static func originHost(_ origin: String) -> String? {
        guard let schemeEnd = origin.range(of: "://") else { return nil }
        let rest = origin[schemeEnd.upperBound...].prefix { $0 != "/" }
        return rest.isEmpty ? nil : hostName(String(rest))
    }

    static func isLoopback(host: String) -> Bool {
        let host = host.lowercased()
        if host == "localhost" || host.hasSuffix(".localhost") { return true }
        return IPAddress(host)?.isLoopback ?? false
    }
}
