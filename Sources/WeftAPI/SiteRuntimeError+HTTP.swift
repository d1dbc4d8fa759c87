import Hummingbird
import WeftSite

/// A change the site refused answers for itself, so routes let it through: 404, 409, 400 (a
/// socket that cannot be opened), 403 (a Unix socket outside `restfulApi.socketDirectory`),
/// 503, else 500; the body is the API's error object with the field at fault.
extension SiteRuntimeError: HTTPResponseError {
    public var status: HTTPResponse.Status {
        switch code {
        case .notFound: .notFound
        case .conflict: .conflict
        case .cannotListen: .badRequest
        case .forbidden: .forbidden
        case .notRunning: .serviceUnavailable
        default: .internalServerError
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try APIError(status, message, field: code == .notFound ? nil : field).response(from: request, context: context)
    }
}
