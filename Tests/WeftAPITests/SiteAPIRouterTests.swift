import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import Testing
import WeftDiscovery
import WeftIdentity
import WeftTestSupport
import WeftTransport

@testable import WeftAPI
@testable import WeftSite

/// Every route through the API's own router (middlewares included), on a site that is built but
/// not connected to anything: status codes, bodies, the error object and its field, auth.
@Suite("API routes through the router", .serialized, .timeLimit(.minutes(10)))
struct SiteAPIRouterTests {
    /// A site runtime with no broker connection and no links, published to a handle.
    final class Site: Sendable {
        let handle = SiteHandle()
        let runtime: SiteRuntime
        let stateDirectory: String
        let service: APIService

        init(users: String = "", socketDirectory: String? = nil) async throws {
            stateDirectory = NSTemporaryDirectory() + "weft-router-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(
                atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let yaml = """
                siteName: router-site
                crypto:
                  key: "router-test-mesh-key"
                messageChannel:
                  mqtt:
                    brokerServer: mqtt://127.0.0.1:1
                stateDir: \(stateDirectory)
                localExposedApps:
                - appName: web
                  appSocket: tcp:127.0.0.1:8080
                restfulApi:
                  enabled: true
                  listenAddr: 127.0.0.1:18080
                \(socketDirectory.map { "  socketDirectory: \($0)\n" } ?? "")\(users)
                """
            let configuration = try ConfigLoader().parse(yaml: yaml, baseDirectory: stateDirectory).configuration
            let identity = try SiteIdentity.generate()
            let logger = Logger(label: "router-test")
            let agent = try DiscoveryAgent(
                configuration: .init(
                    siteName: configuration.siteName, mesh: MeshKeys(key: configuration.crypto.key, topic: ""),
                    mqtt: MQTTClientConfiguration(host: "127.0.0.1", port: 1, clientID: "router-test"),
                    stateDirectory: stateDirectory, softwareVersion: "test"),
                identity: identity, logger: logger)
            let manager = TunnelManager(
                configuration: .init(siteName: configuration.siteName, usedSites: [], exposesApps: true),
                site: LocalLinkSite(siteName: configuration.siteName, tls: try LinkTLS(identity: identity)),
                exposedApps: configuration.localExposedApps, announcesEndpoints: false,
                group: MultiThreadedEventLoopGroup.singleton, logger: logger)
            runtime = SiteRuntime(
                configuration: configuration, fingerprint: identity.fingerprint.description, softwareVersion: "test",
                overlay: AppOverlay(), manager: manager, agent: agent, logger: logger)
            try await runtime.start()
            handle.publish(runtime)
            service = APIService(settings: configuration.restfulApi, handle: handle, registry: nil, logger: logger)
        }

        func stop() async {
            await runtime.stop()
            try? FileManager.default.removeItem(atPath: stateDirectory)
        }

        var app: some ApplicationProtocol { get throws { Application(router: try service.makeRouter()) } }
    }

    /// The headers a local client sends (the request guard checks `Host` on a loopback API).
    static let host: HTTPFields = [HTTPField.Name("Host")!: "127.0.0.1:18080"]
    static let json: HTTPFields = [HTTPField.Name("Host")!: "127.0.0.1:18080", .contentType: "application/json"]

    static func object(_ buffer: ByteBuffer) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]
    }

    static func list(_ buffer: ByteBuffer) -> [[String: Any]] {
        ((try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [[String: Any]]) ?? []
    }

    @Test("read routes: ping, the document, the dashboard, the site, its peers, apps and tunnels; 404s")
    func reads() async throws {
        let site = try await Site()
        try await site.app.test(.router) { client in
            let ping = try await client.execute(uri: "/ping", method: .get, headers: Self.host)
            #expect(ping.status == .ok && String(buffer: ping.body) == "pong")
            #expect(ping.headers[.contentType]?.hasPrefix("text/plain") == true)
            let document = try await client.execute(uri: "/openapi.yaml", method: .get, headers: Self.host)
            #expect(document.status == .ok && String(buffer: document.body).hasPrefix("openapi: 3"))
            #expect(document.headers[.contentType] == "application/yaml")
            let page = try await client.execute(uri: "/", method: .get, headers: Self.host)
            #expect(page.status == .ok && String(buffer: page.body).contains("<html"))
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: Self.host).status == .notFound)

            let info = try await client.execute(uri: "/api/v1/site", method: .get, headers: Self.host)
            #expect(info.status == .ok && Self.object(info.body)?["siteName"] as? String == "router-site")
            let peers = try await client.execute(uri: "/api/v1/remoteSites", method: .get, headers: Self.host)
            #expect(peers.status == .ok && Self.list(peers.body).isEmpty)
            #expect(
                try await client.execute(uri: "/api/v1/remoteSites/nobody", method: .get, headers: Self.host).status
                    == .notFound)
            let exposed = try await client.execute(uri: "/api/v1/localExposedApps", method: .get, headers: Self.host)
            let apps = Self.list(exposed.body)
            #expect(apps.count == 1 && apps.first?["appName"] as? String == "web")
            #expect(apps.first?["source"] as? String == "config" && apps.first?["appSocket"] as? String != nil)
            #expect(
                try await client.execute(uri: "/api/v1/localExposedApps/web", method: .get, headers: Self.host).status
                    == .ok)
            let missing = try await client.execute(
                uri: "/api/v1/localExposedApps/ghost", method: .get, headers: Self.host)
            #expect(missing.status == .notFound && Self.object(missing.body)?["code"] as? Int == 404)
            let remote = try await client.execute(uri: "/api/v1/remoteApps", method: .get, headers: Self.host)
            #expect(remote.status == .ok && Self.list(remote.body).isEmpty)
            let tunnels = try await client.execute(uri: "/api/v1/tunnels", method: .get, headers: Self.host)
            #expect(tunnels.status == .ok && Self.list(tunnels.body).isEmpty)
            #expect(
                try await client.execute(uri: "/api/v1/tunnels/nobody", method: .get, headers: Self.host).status
                    == .notFound)
            let speed = try await client.execute(
                uri: "/api/v1/speedtest?site=nobody&seconds=1", method: .get, headers: Self.host)
            #expect(speed.status == .notFound, "\(String(buffer: speed.body))")
            let badSeconds = try await client.execute(
                uri: "/api/v1/speedtest?site=x&seconds=600", method: .get, headers: Self.host)
            #expect(badSeconds.status == .badRequest && Self.object(badSeconds.body)?["field"] as? String == "seconds")
        }
        await site.stop()
    }

    @Test("changes: 201 with the entry, 409 for a taken name or socket, 400 naming the field, 204, 404, 403")
    func changes() async throws {
        let sockets = NSTemporaryDirectory() + "weft-router-sockets-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: sockets) }
        let site = try await Site(socketDirectory: sockets)
        let port = try FreePort.find()
        try await site.app.test(.router) { client in
            let body = ByteBuffer(string: #"{"appName":"db","appSocket":"tcp:127.0.0.1:5432"}"#)
            let added = try await client.execute(
                uri: "/api/v1/localExposedApps", method: .post, headers: Self.json, body: body)
            #expect(added.status == .created && Self.object(added.body)?["source"] as? String == "api")
            let again = try await client.execute(
                uri: "/api/v1/localExposedApps", method: .post, headers: Self.json, body: body)
            #expect(again.status == .conflict && Self.object(again.body)?["field"] as? String == "appName")
            let bad = try await client.execute(
                uri: "/api/v1/localExposedApps", method: .post, headers: Self.json,
                body: ByteBuffer(string: #"{"appName":"x","appSocket":"tcp:nowhere"}"#))
            #expect(bad.status == .badRequest && Self.object(bad.body)?["field"] as? String == "appSocket")
            // proxyProtocol: taken, shown, and a wrong value refused at its field.
            let proxied = try await client.execute(
                uri: "/api/v1/localExposedApps", method: .post, headers: Self.json,
                body: ByteBuffer(string: #"{"appName":"nginx","appSocket":"tcp:127.0.0.1:81","proxyProtocol":"v2"}"#))
            #expect(proxied.status == .created && Self.object(proxied.body)?["proxyProtocol"] as? String == "v2")
            let shown = try await client.execute(
                uri: "/api/v1/localExposedApps/nginx", method: .get, headers: Self.host)
            #expect(Self.object(shown.body)?["proxyProtocol"] as? String == "v2")
            let wrong = try await client.execute(
                uri: "/api/v1/localExposedApps", method: .post, headers: Self.json,
                body: ByteBuffer(string: #"{"appName":"x","appSocket":"tcp:127.0.0.1:82","proxyProtocol":"v9"}"#))
            #expect(wrong.status == .badRequest && Self.object(wrong.body)?["field"] as? String == "proxyProtocol")
            #expect(
                try await client.execute(uri: "/api/v1/localExposedApps/db", method: .delete, headers: Self.host)
                    .status == .noContent)
            #expect(
                try await client.execute(uri: "/api/v1/localExposedApps/db", method: .delete, headers: Self.host)
                    .status == .notFound)

            let remote = ByteBuffer(
                string: #"{"siteName":"peer","appName":"web","localSocket":"tcp:127.0.0.1:\#(port)"}"#)
            let used = try await client.execute(
                uri: "/api/v1/remoteApps", method: .post, headers: Self.json, body: remote)
            #expect(
                used.status == .created && Self.object(used.body)?["localSocket"] as? String == "tcp:127.0.0.1:\(port)")
            #expect(FreePort.accepts(port), "the remote app's local socket is not listening")
            let sameSocket = try await client.execute(
                uri: "/api/v1/remoteApps", method: .post, headers: Self.json,
                body: ByteBuffer(
                    string: #"{"siteName":"peer","appName":"other","localSocket":"tcp:127.0.0.1:\#(port)"}"#))
            #expect(
                sameSocket.status == .conflict && Self.object(sameSocket.body)?["field"] as? String == "localSocket")
            for uri in ["/api/v1/remoteApps/web", "/api/v1/remoteApps/peer/web"] {
                #expect(try await client.execute(uri: uri, method: .get, headers: Self.host).status == .ok, "\(uri)")
            }
            let outside = try await client.execute(
                uri: "/api/v1/remoteApps", method: .post, headers: Self.json,
                body: ByteBuffer(
                    string: #"{"siteName":"peer","appName":"unix","localSocket":"unix:/tmp/elsewhere.sock"}"#))
            #expect(outside.status == .forbidden && Self.object(outside.body)?["field"] as? String == "localSocket")
            #expect(
                try await client.execute(uri: "/api/v1/remoteApps/peer/web", method: .delete, headers: Self.host)
                    .status == .noContent)
            #expect(!FreePort.accepts(port), "still listening after the DELETE")
            #expect(
                try await client.execute(uri: "/api/v1/remoteApps/peer/web", method: .delete, headers: Self.host)
                    .status == .notFound)
        }
        await site.stop()
    }

    @Test("edits: PUT replaces an app (renamed or on a new socket), 404 for an unknown one, 409 and 400 at the field")
    func edits() async throws {
        let sockets = NSTemporaryDirectory() + "weft-router-sockets-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: sockets) }
        let site = try await Site(socketDirectory: sockets)
        let (first, second) = (try FreePort.find(), try FreePort.find())
        try await site.app.test(.router) { client in
            func put(_ uri: String, _ body: String) async throws -> TestResponse {
                try await client.execute(uri: uri, method: .put, headers: Self.json, body: ByteBuffer(string: body))
            }
            // The file's app, edited: it comes from the API now, with the new socket.
            let edited = try await put(
                "/api/v1/localExposedApps/web", #"{"appName":"web","appSocket":"tcp:127.0.0.1:8081"}"#)
            #expect(edited.status == .ok && Self.object(edited.body)?["appSocket"] as? String == "tcp:127.0.0.1:8081")
            #expect(Self.object(edited.body)?["source"] as? String == "api")
            #expect(Self.object(edited.body)?["traffic"] as? [String: Any] != nil)
            let renamed = try await put(
                "/api/v1/localExposedApps/web", #"{"appName":"www","appSocket":"tcp:127.0.0.1:8081"}"#)
            #expect(renamed.status == .ok)
            let names = Self.list(
                try await client.execute(uri: "/api/v1/localExposedApps", method: .get, headers: Self.host).body
            ).compactMap { $0["appName"] as? String }
            #expect(names == ["www"])
            let unknown = try await put(
                "/api/v1/localExposedApps/web", #"{"appName":"web","appSocket":"tcp:127.0.0.1:1"}"#)
            #expect(unknown.status == .notFound)
            let bad = try await put("/api/v1/localExposedApps/www", #"{"appName":"www","appSocket":"tcp:nowhere"}"#)
            #expect(bad.status == .badRequest && Self.object(bad.body)?["field"] as? String == "appSocket")

            #expect(
                try await client.execute(
                    uri: "/api/v1/remoteApps", method: .post, headers: Self.json,
                    body: ByteBuffer(
                        string: #"{"siteName":"peer","appName":"web","localSocket":"tcp:127.0.0.1:\#(first)"}"#)
                ).status == .created)
            #expect(
                try await client.execute(
                    uri: "/api/v1/remoteApps", method: .post, headers: Self.json,
                    body: ByteBuffer(
                        string: #"{"siteName":"peer","appName":"db","localSocket":"tcp:127.0.0.1:\#(second)"}"#)
                ).status == .created)
            // Another app's socket: 409 at the field, and the app keeps its own.
            let taken = try await put(
                "/api/v1/remoteApps/peer/web",
                #"{"siteName":"peer","appName":"web","localSocket":"tcp:127.0.0.1:\#(second)"}"#)
            #expect(taken.status == .conflict && Self.object(taken.body)?["field"] as? String == "localSocket")
            #expect(FreePort.accepts(first), "the app lost its socket to a refused edit")
            // The same socket, another target: taken in place.
            let sameSocket = try await put(
                "/api/v1/remoteApps/peer/web",
                #"{"siteName":"peer","appName":"web","localSocket":"tcp:127.0.0.1:\#(first)","appSocket":"tcp:10.0.0.1:80"}"#
            )
            #expect(
                sameSocket.status == .ok && Self.object(sameSocket.body)?["appSocket"] as? String == "tcp:10.0.0.1:80")
            #expect(FreePort.accepts(first), "not listening after an edit on the same socket")
            // A new socket: the old one closes.
            let moved = try FreePort.find()
            let newSocket = try await put(
                "/api/v1/remoteApps/peer/web",
                #"{"siteName":"peer","appName":"web","localSocket":"tcp:127.0.0.1:\#(moved)"}"#)
            #expect(newSocket.status == .ok)
            #expect(FreePort.accepts(moved) && !FreePort.accepts(first), "the socket did not move")
            // Saved as it is: the socket stays (nothing closed, no client ended).
            let unchanged = try await put(
                "/api/v1/remoteApps/peer/web",
                #"{"siteName":"peer","appName":"web","localSocket":"tcp:127.0.0.1:\#(moved)"}"#)
            #expect(unchanged.status == .ok && FreePort.accepts(moved))
            // A socket another program holds: 400 at the field, and the app keeps its own.
            let heldPort = try FreePort.find()
            let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: heldPort).get()
            let held = try await put(
                "/api/v1/remoteApps/peer/web",
                #"{"siteName":"peer","appName":"web","localSocket":"tcp:127.0.0.1:\#(heldPort)"}"#)
            try? await holder.close().get()
            #expect(held.status == .badRequest && Self.object(held.body)?["field"] as? String == "localSocket")
            #expect(FreePort.accepts(moved), "a failed edit cost the app its socket")
            let missing = try await put(
                "/api/v1/remoteApps/peer/ghost",
                #"{"siteName":"peer","appName":"ghost","localSocket":"tcp:127.0.0.1:1"}"#)
            #expect(missing.status == .notFound)
        }
        await site.stop()
    }

    @Test("with users: every route but /ping and /login wants credentials (401 and a challenge); the right ones pass")
    func auth() async throws {
        let site = try await Site(
            users: "  auth:\n    basicAuth:\n    - user: admin\n      password: \"s3cret\"\n")
        try await site.app.test(.router) { client in
            // wovenet's health check and login need none.
            let ping = try await client.execute(uri: "/ping", method: .get, headers: Self.host)
            #expect(ping.status == .ok && String(buffer: ping.body) == "pong")
            for uri in ["/openapi.yaml", "/api/v1/site", "/api/v1/tunnels", "/", "/metrics"] {
                let refused = try await client.execute(uri: uri, method: .get, headers: Self.host)
                #expect(refused.status == .unauthorized, "\(uri)")
                #expect(refused.headers[.wwwAuthenticate]?.hasPrefix("Basic") == true, "\(uri)")
            }
            var headers = Self.host
            headers[.authorization] = "Basic " + Data("admin:s3cret".utf8).base64EncodedString()
            #expect(try await client.execute(uri: "/api/v1/site", method: .get, headers: headers).status == .ok)
            headers[.authorization] = "Basic " + Data("admin:wrong".utf8).base64EncodedString()
            #expect(
                try await client.execute(uri: "/api/v1/site", method: .get, headers: headers).status == .unauthorized)
            // Only GET /ping and POST /login are open: not other methods on those paths.
            #expect(try await client.execute(uri: "/login", method: .get, headers: Self.host).status == .unauthorized)
        }
        await site.stop()
    }

    @Test("POST /login answers as wovenet: 200 for the right credentials, 401 for wrong ones, 400 for a bad body")
    func login() async throws {
        let site = try await Site(
            users: "  auth:\n    basicAuth:\n    - user: admin\n      password: \"s3cret\"\n")
        try await site.app.test(.router) { client in
            func login(_ body: String) async throws -> (HTTPResponse.Status, [String: Any]?) {
                let response = try await client.execute(
                    uri: "/login", method: .post, headers: Self.json, body: ByteBuffer(string: body))
                return (response.status, Self.object(response.body))
            }
            let good = try await login(#"{"username":"admin","password":"s3cret"}"#)
            #expect(good.0 == .ok && good.1?["message"] as? String == "Login successful")
            for wrong in [
                #"{"username":"admin","password":"s3cre"}"#, #"{"username":"root","password":"s3cret"}"#,
                #"{"username":"admin","password":"s3cret "}"#,
            ] {
                let answer = try await login(wrong)
                #expect(answer.0 == .unauthorized && answer.1?["error"] as? String == "Invalid credentials", "\(wrong)")
            }
            for bad in [
                #"{"username":"admin"}"#, #"{"username":"","password":""}"#, "[1]", "not json",
                #"{"username":1,"password":"s3cret"}"#,
            ] {
                let answer = try await login(bad)
                #expect(answer.0 == .badRequest && answer.1?["error"] as? String == "Invalid request", "\(bad)")
            }
            // The request guard still holds: a form post (what any web page may send) is refused.
            var form = Self.host
            form[.contentType] = "application/x-www-form-urlencoded"
            let posted = try await client.execute(
                uri: "/login", method: .post, headers: form, body: ByteBuffer(string: "username=admin&password=s3cret"))
            #expect(posted.status == .unsupportedMediaType)
        }
        await site.stop()
    }

    @Test("POST /login without configured users fails, as in wovenet")
    func loginWithoutUsers() async throws {
        let site = try await Site()
        try await site.app.test(.router) { client in
            let response = try await client.execute(
                uri: "/login", method: .post, headers: Self.json,
                body: ByteBuffer(string: #"{"username":"admin","password":"s3cret"}"#))
            #expect(response.status == .unauthorized)
        }
        await site.stop()
    }
}
