import Foundation

/// The API's contract, served at `/openapi.yaml`: `Resources/openapi.yaml`, a resource of
/// this module (installed beside the binary as `weft_WeftAPI.resources`).
enum OpenAPIDocument {
    static let yaml: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "# the API's OpenAPI document is missing from this installation\n" }
        return text
    }()
}
