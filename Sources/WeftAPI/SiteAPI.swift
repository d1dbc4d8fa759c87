import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus
import WeftDiscovery
import WeftSite
import WeftTransport
import WeftWire

/// The API's routes: wovenet's read endpoints, weft's runtime app changes, tunnels, metrics,
/// the OpenAPI document and the dashboard. Handlers only translate between HTTP and
/// `SiteRuntime`, which owns every decision.
struct SiteAPI: Sendable {
    let handle: SiteHandle
    let registry: PrometheusCollectorRegistry?
    let verifier: BasicAuthVerifier
    let logger: Logger
    private let loginRefusals = LogLimiter()
    /// Request bodies larger than this are refused (413) before they are read whole.
    static let maxBodyBytes = 64 << 10

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in Self.text(DashboardPage.html, type: "text/html; charset=utf-8") }
        // wovenet's health check: plain text, no credentials.
        router.get("/ping") { _, _ in Self.text("pong", type: "text/plain; charset=utf-8") }
        router.post("/login") { request, _ in try await login(request) }
        router.get("/openapi.yaml") { _, _ in Self.text(OpenAPIDocument.yaml, type: "application/yaml") }
        router.get("/metrics") { _, _ in
            guard let registry else { throw APIError(.notFound, "metrics are not collected in this process") }
            return Self.text(registry.emitToString(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        let v1 = router.group("/api/v1")
        v1.get("/site") { _, _ in
            let site = try runtime()
            return APIModels.Site(
                siteName: site.siteName, fingerprint: site.fingerprint, version: site.softwareVersion,
                uptimeSeconds: (ContinuousClock.now - site.startedAt).inSeconds)
        }
        v1.get("/remoteSites") { _, _ in try await remoteSites() }
        v1.get("/remoteSites/{siteName}") { _, context in
            let name = try context.parameters.require("siteName")
            return try Self.found(try await remoteSites().first { $0.siteName == name }, "remote site \(name)")
        }
        v1.get("/localExposedApps") { _, _ in
            let site = try runtime()
            return await site.exposedApps.map { Self.exposed($0.app, $0.source, site) }
        }
        v1.get("/localExposedApps/{appName}") { _, context in
            let name = try context.parameters.require("appName")
            let site = try runtime()
            let entry = try Self.found(
                await site.exposedApps.first { $0.app.appName == name }, "local exposed app \(name)")
            return Self.exposed(entry.app, entry.source, site)
        }
        v1.post("/localExposedApps") { request, context in
            let site = try runtime()
            let app = try await exposedApp(in: request)
            try await site.addExposedApp(app)
            return EditedResponse(status: .created, response: APIModels.ExposedApp(app, source: .api))
        }
        v1.put("/localExposedApps/{appName}") { request, context in
            let name = try context.parameters.require("appName")
            let site = try runtime()
            let app = try await exposedApp(in: request)
            try await site.replaceExposedApp(named: name, with: app)
            return Self.exposed(app, .api, site)
        }
        v1.delete("/localExposedApps/{appName}") { _, context in
            let name = try context.parameters.require("appName")
            try await runtime().removeExposedApp(named: name)
            return Response(status: .noContent)
        }
        v1.get("/remoteApps") { _, _ in
            let site = try runtime()
            return await site.remoteApps.map { Self.remote($0.app, $0.source, site) }
        }
        // wovenet's form: by app name alone (the first match when several sites offer one).
        // (The router wants one parameter name per position: this one holds the app's name.)
        v1.get("/remoteApps/{siteName}") { _, context in
            let name = try context.parameters.require("siteName")
            let apps = try await runtime().remoteApps
            let entry = try Self.found(apps.first { $0.app.appName == name }, "remote app \(name)")
            return Self.remote(entry.app, entry.source, try runtime())
        }
        v1.get("/remoteApps/{siteName}/{appName}") { _, context in
            let site = try context.parameters.require("siteName")
            let name = try context.parameters.require("appName")
            let apps = try await runtime().remoteApps
            let entry = try Self.found(
                apps.first { $0.app.siteName == site && $0.app.appName == name }, "remote app \(site)/\(name)")
            return Self.remote(entry.app, entry.source, try runtime())
        }
        v1.post("/remoteApps") { request, context in
            let site = try runtime()
            let app = try await remoteApp(in: request, ownSite: site.siteName)
            try await site.addRemoteApp(app)
            return EditedResponse(status: .created, response: APIModels.RemoteApp(app, source: .api))
        }
        v1.put("/remoteApps/{siteName}/{appName}") { request, context in
            let siteName = try context.parameters.require("siteName")
            let name = try context.parameters.require("appName")
            let site = try runtime()
            let app = try await remoteApp(in: request, ownSite: site.siteName)
            try await site.replaceRemoteApp(site: siteName, app: name, with: app)
            return Self.remote(app, .api, site)
        }
        v1.delete("/remoteApps/{siteName}/{appName}") { _, context in
            let site = try context.parameters.require("siteName")
            let name = try context.parameters.require("appName")
            try await runtime().removeRemoteApp(site: site, app: name)
            return Response(status: .noContent)
        }
        v1.get("/speedtest") { request, _ in try await SpeedtestRoute.respond(to: request, runtime: try runtime()) }
        v1.get("/tunnels") { _, _ in
            try await runtime().tunnels().map(APIModels.Tunnel.init)
        }
        v1.get("/tunnels/{peer}") { _, context in
            let peer = try context.parameters.require("peer")
            guard let tunnel = try await runtime().tunnels().first(where: { $0.peer == peer }) else {
                throw APIError(.notFound, "no tunnel to \(peer)")
            }
            return APIModels.Tunnel(tunnel)
        }
        for (verb, blocked) in [("block", true), ("unblock", false)] {
            v1.post("/tunnels/{peer}/links/{id}/\(verb)") { _, context in
                let peer = try context.parameters.require("peer")
                let text = try context.parameters.require("id")
                guard let id = UInt32(text) else { throw APIError(.badRequest, "a link id is a number") }
                guard try await runtime().setLinkBlocked(peer: peer, link: id, blocked) else {
                    throw APIError(.notFound, "no link \(id) in a tunnel to \(peer)")
                }
                guard let tunnel = try await runtime().tunnels().first(where: { $0.peer == peer }) else {
                    throw APIError(.notFound, "no tunnel to \(peer)")
                }
                return APIModels.Tunnel(tunnel)
            }
        }
    }

    static func exposed(_ app: ExposedAppConfig, _ source: AppSource, _ site: SiteRuntime) -> APIModels.ExposedApp {
        APIModels.ExposedApp(app, source: source, traffic: site.traffic(.exposed(app.appName)))
    }

    static func remote(_ app: RemoteAppConfig, _ source: AppSource, _ site: SiteRuntime) -> APIModels.RemoteApp {
        APIModels.RemoteApp(
            app, source: source, traffic: site.traffic(.remote(site: app.siteName, app: app.appName)))
    }

    private func runtime() throws -> SiteRuntime {
        guard let runtime = handle.runtime else { throw APIError(.serviceUnavailable, "the site is not running") }
        return runtime
    }

    /// A request body as an exposed app, or a 400 naming the field at fault.
    private func exposedApp(in request: Request) async throws -> ExposedAppConfig {
        do {
            return try ConfigLoader().parseExposedApp(json: try await body(request))
        } catch {
            throw Self.badRequest(error)
        }
    }

    /// A request body as a remote app, or a 400 naming the field at fault.
    private func remoteApp(in request: Request, ownSite: String) async throws -> RemoteAppConfig {
        do {
            return try ConfigLoader().parseRemoteApp(json: try await body(request), ownSite: ownSite)
        } catch {
            throw Self.badRequest(error)
        }
    }

    private func body(_ request: Request) async throws -> String {
        let buffer = try await request.body.collect(upTo: Self.maxBodyBytes)
        guard let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes), !text.isEmpty else {
            throw APIError(.badRequest, "the body must be a JSON object")
        }
        return text
    }

    /// wovenet's `POST /login`: `{"username", "password"}` checked against
    /// `restfulApi.auth.basicAuth`, with wovenet's answers (`{"message"}` or `{"error"}`), so its
    /// scripts and front end work unchanged. With no users configured every login fails, as in
    /// wovenet (the API is open then anyway).
    private func login(_ request: Request) async throws -> Response {
        let buffer = try await request.body.collect(upTo: Self.maxBodyBytes)
        let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]
        guard let user = object?["username"] as? String, let password = object?["password"] as? String,
            !user.isEmpty, !password.isEmpty
        else {
            return Self.json(["error": "Invalid request"], status: .badRequest)
        }
        if verifier.verify(user: user, password: password) {
            logger.info("API login", metadata: ["user": "\(WireText.escaped(user))"])
            return Self.json(["message": "Login successful"], status: .ok)
        }
        let (allowed, suppressed) = loginRefusals.admit("login")
        if allowed {
            logger.notice(
                "API login refused: wrong credentials",
                metadata: ["user": "\(WireText.escaped(user))", "alsoRefusedSinceLastLine": "\(suppressed)"])
        }
        return Self.json(["error": "Invalid credentials"], status: .unauthorized)
    }

    static func json(_ object: [String: String], status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Known peers (up in the directory) and peers with a tunnel.
    private func remoteSites() async throws -> [APIModels.RemoteSite] {
        let site = try runtime()
        let peers = site.peers
        let tunnels = await site.tunnels()
        let noPath = site.peersWithoutPath
        let names = Set(peers.keys).union(tunnels.map(\.peer)).sorted()
        return names.map { name in
            let info = peers[name]
            return APIModels.RemoteSite(
                siteName: name,
                online: info != nil,
                fingerprint: info?.fingerprint.description,
                endpoints: info?.announcement.endpoints.map { String(host: $0.address, port: $0.port) } ?? [],
                apps: info?.announcement.apps ?? [],
                softwareVersion: info?.announcement.softwareVersion,
                tunnel: tunnels.contains { $0.peer == name && !$0.links.isEmpty },
                noPath: noPath[name]
            )
        }
    }

    static func text(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The item asked for, or a 404 that names it.
    static func found<Item>(_ item: Item?, _ what: @autoclosure () -> String) throws -> Item {
        guard let item else { throw APIError(.notFound, "\(what()) not found") }
        return item
    }

    /// A request body that does not parse or validate: 400, naming the first field at fault.
    static func badRequest(_ error: any Error) -> any Error {
        if let error = error as? APIError { return error }
        if error is NIOTooManyBytesError {
            return APIError(.contentTooLarge, "the body is larger than \(maxBodyBytes / 1024) KiB")
        }
        if let error = error as? HTTPError { return error }
        guard let error = error as? ConfigurationError else { return APIError(.badRequest, "\(error)") }
        let first = error.errors.first ?? error.diagnostics.first
        let message = error.diagnostics.map { $0.path.isEmpty ? $0.message : "\($0.path): \($0.message)" }
            .joined(separator: "; ")
        return APIError(.badRequest, message, field: first.flatMap { $0.path.isEmpty ? nil : $0.path })
    }
}
