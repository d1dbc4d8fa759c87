import Foundation
import Hummingbird
import NIOCore

/// An API error as JSON, `{"code": 400, "message": "...", "field": "appSocket"}`: the status,
/// what went wrong, and for a bad request body the field at fault. wovenet's `HTTPError` has
/// `code` and `message` too.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String
    let field: String?

    init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil) {
        self.status = status
        self.message = message
        self.field = field
    }

    struct Body: Codable {
        var code: Int
        var message: String
        var field: String?
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(Body(code: status.code, message: message, field: field))
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
