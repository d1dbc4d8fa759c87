import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import WeftAPI

/// What a web page in the operator's browser can send to the loopback API, tried through the
/// router as a browser would send it.
@Suite("the API refuses what a web page or DNS rebinding can send", .timeLimit(.minutes(10)))
struct RequestGuardTests {
    func app(listenHost: String = "127.0.0.1") -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: RequestGuardMiddleware(listenHost: listenHost, logger: Logger(label: "test")))
        router.post("/api/v1/remoteApps") { _, _ in HTTPResponse.Status.created }
        router.delete("/api/v1/remoteApps/a/b") { _, _ in HTTPResponse.Status.noContent }
        router.get("/api/v1/site") { _, _ in "{}" }
        return Application(router: router)
    }

    func headers(_ pairs: [(String, String)]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in pairs { fields[HTTPField.Name(name)!] = value }
        return fields
    }

    static let body = ByteBuffer(string: #"{"siteName":"a","appName":"b","localSocket":"tcp:127.0.0.1:9"}"#)

    @Test("a POST as text/plain or a form is refused (415); as JSON it passes")
    func contentType() async throws {
        try await app().test(.router) { client in
            for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", nil] {
                var pairs = [("Host", "127.0.0.1:8080")]
                if let type { pairs.append(("Content-Type", type)) }
                let response = try await client.execute(
                    uri: "/api/v1/remoteApps", method: .post, headers: headers(pairs), body: Self.body)
                #expect(response.status == .unsupportedMediaType, "\(type ?? "no type")")
            }
            let json = try await client.execute(
                uri: "/api/v1/remoteApps", method: .post,
                headers: headers([("Host", "127.0.0.1:8080"), ("Content-Type", "application/json; charset=utf-8")]),
                body: Self.body)
            #expect(json.status == .created)
            let delete = try await client.execute(
                uri: "/api/v1/remoteApps/a/b", method: .delete, headers: headers([("Host", "localhost:8080")]))
            #expect(delete.status == .noContent)
        }
    }

    /// A GET whose Host (its authority, as HTTP/1 delivers it) is `host`.
    func request(host: String) -> Request {
        Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: host, path: "/api/v1/site"),
            body: RequestBody(buffer: ByteBuffer()))
    }

    @Test("a rebound host name is refused on a loopback API (421); loopback names pass")
    func host() {
        let loopback = RequestGuardMiddleware<BasicRequestContext>(listenHost: "127.0.0.1", logger: Logger(label: "t"))
        for host in ["attacker.example", "attacker.example:8080", "192.168.1.5:8080", "127.0.0.1.nip.io"] {
            #expect(loopback.refusal(for: request(host: host))?.status == .misdirectedRequest, "\(host)")
        }
        for host in ["127.0.0.1:8080", "localhost", "[::1]:8080", "127.0.0.2"] {
            #expect(loopback.refusal(for: request(host: host)) == nil, "\(host)")
        }
        // An API on all addresses answers to any name (operators reach it by the machine's name).
        let everywhere = RequestGuardMiddleware<BasicRequestContext>(listenHost: "", logger: Logger(label: "t"))
        #expect(everywhere.refusal(for: request(host: "weft-gw.lan:8080")) == nil)
    }

    @Test("cross-site and foreign-origin requests are refused (403); same-origin ones pass")
    func origin() async throws {
        try await app().test(.router) { client in
            let crossSite = try await client.execute(
                uri: "/api/v1/site", method: .get,
                headers: headers([("Host", "127.0.0.1:8080"), ("Sec-Fetch-Site", "cross-site")]))
            #expect(crossSite.status == .forbidden)
            let foreign = try await client.execute(
                uri: "/api/v1/remoteApps", method: .post,
                headers: headers([
                    ("Host", "127.0.0.1:8080"), ("Origin", "https://attacker.example"),
                    ("Content-Type", "application/json"),
                ]), body: Self.body)
            #expect(foreign.status == .forbidden)
            let same = try await client.execute(
                uri: "/api/v1/remoteApps", method: .post,
                headers: headers([
                    ("Host", "127.0.0.1:8080"), ("Origin", "http://127.0.0.1:8080"), ("Sec-Fetch-Site", "same-origin"),
                    ("Content-Type", "application/json"),
                ]), body: Self.body)
            #expect(same.status == .created)
        }
    }
}
