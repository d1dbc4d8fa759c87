import Foundation
import Testing
import WeftTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// What an operator does with two running sites: the REST API (every endpoint, app changes at
/// runtime that carry traffic, persist and stop), basic auth, `/metrics`, `weft status`, a
/// reload on SIGHUP under load, and the dashboard in headless Chromium.
@Suite(
    "operations end to end", .serialized, .enabled(if: SiteLab.isAvailable, "\(SiteLab.missing)"),
    .timeLimit(.minutes(10)))
struct OperationsEndToEndTests {
    struct HTTPResult {
        var status: Int
        var body: String
        var headers: String
    }

    /// One request with curl: status, body and headers.
    static func http(
        _ lab: SiteLab, _ method: String, _ url: String, body: String? = nil, user: String? = nil
    ) async throws -> HTTPResult {
        let id = UUID().uuidString.prefix(8)
        let bodyFile = lab.path + "/http-\(id).body"
        let headerFile = lab.path + "/http-\(id).headers"
        var arguments = [
            "-sS", "-X", method, "-o", bodyFile, "-D", headerFile, "-w", "%{http_code}", "--max-time", "10",
        ]
        if let user { arguments += ["-u", user] }
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        let out = try await lab.run(SiteLab.curl, arguments + [url])
        return HTTPResult(
            status: Int(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1,
            body: (try? String(contentsOfFile: bodyFile, encoding: .utf8)) ?? "",
            headers: (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? "")
    }

    /// The repository's root (for its scripts).
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    static func json(_ text: String) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    /// The value of a Prometheus series (summed over lines that contain every part).
    static func metric(_ text: String, _ parts: String...) -> Double? {
        let values = text.split(separator: "\n").filter { line in
            !line.hasPrefix("#") && parts.allSatisfy { line.contains($0) }
        }.compactMap { Double($0.split(separator: " ").last ?? "") }
        return values.isEmpty ? nil : values.reduce(0, +)
    }

    static func api(_ port: Int, auth: Bool, accessLog: String? = nil, socketDirectory: String? = nil) -> String {
        """
        restfulApi:
          enabled: true
          listenAddr: 127.0.0.1:\(port)
        \(socketDirectory.map { "  socketDirectory: \($0)\n" } ?? "")\
        \(accessLog.map { "  logger:\n    file: \($0)\n" } ?? "")\
        \(auth ? "  auth:\n    basicAuth:\n    - user: admin\n      password: \"s3cret pass\"\n" : "")
        """
    }

    @Test(
        "REST API: every endpoint; apps added at runtime carry traffic, persist, stop when deleted; 401; metrics; status"
    )
    func restAPI() async throws {
        let lab = try SiteLab()
        let httpPort = try FreePort.find()
        let webPort = try FreePort.find()
        let alphaAPI = try FreePort.find()
        let betaAPI = try FreePort.find()
        try await lab.website(port: httpPort, files: ["hello.txt": "hello through weft\n"])
        try lab.site(
            "alpha", exposed: [SiteLab.exposed("spare", "tcp:127.0.0.1:\(httpPort)")],
            extra: Self.api(
                alphaAPI, auth: true, accessLog: lab.path + "/alpha-api.log", socketDirectory: lab.path + "/sockets")
                + "speedtest:\n  allowDownload: true\n")
        try lab.site(
            "beta", remote: [SiteLab.remote("alpha", "spare", "tcp:127.0.0.1:\(try FreePort.find())")],
            extra: Self.api(betaAPI, auth: false))
        try lab.start("alpha")
        try lab.start("beta")
        #expect(await lab.waitForLink("beta", to: "alpha"), "\(lab.log("beta"))")
        let alpha = "http://127.0.0.1:\(alphaAPI)"
        let beta = "http://127.0.0.1:\(betaAPI)"
        let admin = "admin:s3cret pass"

        // Without credentials (or with wrong ones): 401 and a challenge; with them: 200.
        let open = try await Self.http(lab, "GET", alpha + "/api/v1/site")
        #expect(open.status == 401 && open.headers.lowercased().contains("www-authenticate: basic"), "\(open)")
        #expect(try await Self.http(lab, "GET", alpha + "/api/v1/site", user: "admin:wrong").status == 401)
        #expect(lab.lines("alpha", "API request without valid credentials refused").count >= 1)
        let accessLog = lab.read("alpha-api.log")
        #expect(accessLog.contains("status=401") && accessLog.contains("path=/api/v1/site"), "\(accessLog)")

        // Every read endpoint.
        // wovenet's health check needs no credentials.
        let ping = try await Self.http(lab, "GET", alpha + "/ping")
        #expect(ping.status == 200 && ping.body == "pong", "\(ping)")
        // wovenet's login, as its scripts call it with curl.
        let login = try await Self.http(
            lab, "POST", alpha + "/login", body: #"{"username":"admin","password":"s3cret pass"}"#)
        #expect(login.status == 200 && login.body.contains("Login successful"), "\(login)")
        let wrongLogin = try await Self.http(
            lab, "POST", alpha + "/login", body: #"{"username":"admin","password":"guess"}"#)
        #expect(wrongLogin.status == 401 && wrongLogin.body.contains("Invalid credentials"), "\(wrongLogin)")
        #expect(lab.lines("alpha", "API login refused: wrong credentials").count >= 1)
        let site = try await Self.http(lab, "GET", alpha + "/api/v1/site", user: admin)
        #expect(site.status == 200 && site.body.contains("\"siteName\":\"alpha\""), "\(site)")
        let sites = try await Self.http(lab, "GET", alpha + "/api/v1/remoteSites", user: admin)
        #expect(sites.status == 200 && sites.body.contains("\"siteName\":\"beta\""), "\(sites)")
        #expect(try await Self.http(lab, "GET", alpha + "/api/v1/remoteSites/beta", user: admin).status == 200)
        #expect(try await Self.http(lab, "GET", alpha + "/api/v1/remoteSites/nobody", user: admin).status == 404)
        let exposed = try await Self.http(lab, "GET", alpha + "/api/v1/localExposedApps", user: admin)
        #expect(exposed.status == 200 && exposed.body.contains("\"appName\":\"spare\""), "\(exposed)")
        #expect(try await Self.http(lab, "GET", alpha + "/api/v1/localExposedApps/spare", user: admin).status == 200)
        #expect(try await Self.http(lab, "GET", alpha + "/api/v1/localExposedApps/ghost", user: admin).status == 404)
        let remote = try await Self.http(lab, "GET", beta + "/api/v1/remoteApps")
        #expect(remote.status == 200 && remote.body.contains("\"appName\":\"spare\""), "\(remote)")
        #expect(try await Self.http(lab, "GET", beta + "/api/v1/remoteApps/spare").status == 200)
        #expect(try await Self.http(lab, "GET", beta + "/api/v1/remoteApps/alpha/spare").status == 200)
        #expect(try await Self.http(lab, "GET", beta + "/api/v1/remoteApps/ghost").status == 404)
        let tunnels = try await Self.http(lab, "GET", beta + "/api/v1/tunnels")
        let tunnelList = Self.json(tunnels.body) as? [[String: Any]]
        #expect(tunnelList?.first?["peer"] as? String == "alpha", "\(tunnels)")
        let links = tunnelList?.first?["links"] as? [[String: Any]] ?? []
        #expect(!links.isEmpty && links.allSatisfy { $0["remoteAddress"] != nil && $0["state"] != nil }, "\(tunnels)")
        #expect(try await Self.http(lab, "GET", beta + "/api/v1/tunnels/alpha").status == 200)
        let spec = try await Self.http(lab, "GET", beta + "/openapi.yaml")
        #expect(spec.status == 200 && spec.body.hasPrefix("openapi: 3"), "\(spec.status)")

        // Bad requests: 400 naming the field; a name taken: 409.
        let bad = try await Self.http(
            lab, "POST", alpha + "/api/v1/localExposedApps", body: #"{"appName":"x","appSocket":"tcp:nowhere"}"#,
            user: admin)
        #expect(
            bad.status == 400 && (Self.json(bad.body) as? [String: Any])?["field"] as? String == "appSocket", "\(bad)")
        let unknownKey = try await Self.http(
            lab, "POST", alpha + "/api/v1/localExposedApps",
            body: #"{"appName":"x","appSocket":"tcp:127.0.0.1:1","colour":"red"}"#, user: admin)
        #expect(unknownKey.status == 400, "\(unknownKey)")
        let notJSON = try await Self.http(lab, "POST", alpha + "/api/v1/localExposedApps", body: "[1,2", user: admin)
        #expect(notJSON.status == 400, "\(notJSON)")
        let taken = try await Self.http(
            lab, "POST", alpha + "/api/v1/localExposedApps",
            body: #"{"appName":"spare","appSocket":"tcp:127.0.0.1:\#(httpPort)"}"#, user: admin)
        #expect(taken.status == 409, "\(taken)")

        let huge = try await Self.http(
            lab, "POST", alpha + "/api/v1/localExposedApps",
            body: #"{"appName":"\#(String(repeating: "x", count: 70_000))"}"#, user: admin)
        #expect(huge.status == 413, "\(huge.status) \(huge.body.prefix(200))")
        // What a GET lists can be posted back (here to beta, under another name).
        var listed = try #require(Self.json(exposed.body) as? [[String: Any]]).first ?? [:]
        listed["appName"] = "copy"
        let copyBody = String(decoding: try JSONSerialization.data(withJSONObject: listed), as: UTF8.self)
        let copied = try await Self.http(lab, "POST", beta + "/api/v1/localExposedApps", body: copyBody)
        #expect(copied.status == 201, "\(copyBody) → \(copied)")
        #expect(try await Self.http(lab, "DELETE", beta + "/api/v1/localExposedApps/copy").status == 204)
        // The document describes the API (validated when python3 has openapi-spec-validator).
        let check = try await lab.run(
            "/usr/bin/env", ["python3", Self.repository + "/scripts/openapi-check.py", beta + "/openapi.yaml"])
        if check.status == 77 && !TestEnvironment.isCI {
            print("operations: openapi check skipped: \(check.stdout)\(check.stderr)")
        } else {
            #expect(check.status == 0, "\(check)")
        }

        // An app exposed at alpha and a remote app added at beta carry traffic within seconds.
        let added = try await Self.http(
            lab, "POST", alpha + "/api/v1/localExposedApps",
            body:
                #"{"appName":"web","mode":"single","appSocket":"tcp:127.0.0.1:\#(httpPort)","portRange":[],"addressRange":[]}"#,
            user: admin)
        #expect(added.status == 201 && added.body.contains("\"source\":\"api\""), "\(added)")
        let addedRemote = try await Self.http(
            lab, "POST", beta + "/api/v1/remoteApps",
            body: #"{"siteName":"alpha","appName":"web","localSocket":"tcp:127.0.0.1:\#(webPort)"}"#)
        #expect(addedRemote.status == 201, "\(addedRemote)")
        let sameSocket = try await Self.http(
            lab, "POST", beta + "/api/v1/remoteApps",
            body: #"{"siteName":"alpha","appName":"other","localSocket":"tcp:127.0.0.1:\#(webPort)"}"#)
        #expect(sameSocket.status == 409, "\(sameSocket)")
        // Unix sockets over the API: only inside restfulApi.socketDirectory, never over a socket
        // another program serves, and 0660 unless asked otherwise.
        let noDirectory = try await Self.http(
            lab, "POST", beta + "/api/v1/remoteApps",
            body: #"{"siteName":"alpha","appName":"unix","localSocket":"unix:\#(lab.path)/beta.sock"}"#)
        #expect(noDirectory.status == 403 && noDirectory.body.contains("socketDirectory"), "\(noDirectory)")
        #expect(!lab.lines("beta", "remote app refused", "via=api").isEmpty)
        let escape = try await Self.http(
            lab, "POST", alpha + "/api/v1/remoteApps",
            body: #"{"siteName":"beta","appName":"unix","localSocket":"unix:\#(lab.path)/sockets/../alpha.sock"}"#,
            user: admin)
        #expect(escape.status == 403, "\(escape)")
        #expect(!FileManager.default.fileExists(atPath: lab.path + "/alpha.sock"))
        let busyPath = lab.path + "/sockets/busy.sock"
        let busy = try UnixListener(path: busyPath)
        let occupied = try await Self.http(
            lab, "POST", alpha + "/api/v1/remoteApps",
            body: #"{"siteName":"beta","appName":"unix","localSocket":"unix:\#(busyPath)"}"#, user: admin)
        #expect(occupied.status == 400 && occupied.body.contains("another program listens"), "\(occupied)")
        #expect(UnixListener.accepts(busyPath), "the other program's socket was replaced")
        busy.close()
        let inside = try await Self.http(
            lab, "POST", alpha + "/api/v1/remoteApps",
            body: #"{"siteName":"beta","appName":"unix","localSocket":"unix:\#(lab.path)/sockets/beta.sock"}"#,
            user: admin)
        #expect(inside.status == 201 && inside.body.contains(#""localSocketMode":"0660""#), "\(inside)")
        let mode = try FileManager.default.attributesOfItem(atPath: lab.path + "/sockets/beta.sock")[.posixPermissions]
        #expect((mode as? Int) == 0o660, "\(String(describing: mode))")
        // A stale socket (its program gone) is replaced.
        let stale = try await Self.http(
            lab, "POST", alpha + "/api/v1/remoteApps",
            body: #"{"siteName":"beta","appName":"stale","localSocket":"unix:\#(busyPath)","localSocketMode":"0600"}"#,
            user: admin)
        #expect(stale.status == 201, "\(stale)")
        let staleMode = try FileManager.default.attributesOfItem(atPath: busyPath)[.posixPermissions]
        #expect((staleMode as? Int) == 0o600, "\(String(describing: staleMode))")
        let fetchURL = "http://127.0.0.1:\(webPort)/hello.txt"
        var fetched = false
        let addedAt = ContinuousClock.now
        while ContinuousClock.now - addedAt < .seconds(60) {
            let page = try await Self.http(lab, "GET", fetchURL)
            if page.status == 200 && page.body == "hello through weft\n" {
                fetched = true
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(fetched, "the app added over the API carried no traffic: \(lab.log("beta").suffix(3000))")
        print("operations: app added over the API carried traffic after \(ContinuousClock.now - addedAt)")

        // Metrics: per-peer byte counters that grow with traffic.
        let before = try await Self.http(lab, "GET", beta + "/metrics")
        #expect(before.status == 200, "\(before.status)")
        let receivedBefore = Self.metric(before.body, "weft_peer_received_bytes_total", "peer=\"alpha\"") ?? 0
        for _ in 0..<5 { _ = try await Self.http(lab, "GET", fetchURL) }
        var after = ""
        var receivedAfter = 0.0
        let grew = await WeftProcess.waitFor(.seconds(60)) {
            after = (try? await Self.http(lab, "GET", beta + "/metrics"))?.body ?? ""
            receivedAfter = Self.metric(after, "weft_peer_received_bytes_total", "peer=\"alpha\"") ?? 0
            return receivedAfter > receivedBefore
        }
        #expect(grew, "\(receivedBefore) → \(receivedAfter)")
        for family in [
            "weft_peer_sent_bytes_total", "weft_link_sent_bytes_total", "weft_link_received_bytes_total",
            "weft_link_state_changes_total", "weft_discovery_messages_accepted_total", "weft_streams_opened_total",
        ] {
            #expect(after.contains(family), "\(family) missing from /metrics")
        }
        // Gauges are published about once a second.
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                let gauges = (try? await Self.http(lab, "GET", beta + "/metrics"))?.body ?? ""
                return Self.metric(gauges, "weft_link_rtt_seconds", "peer=\"alpha\"") != nil
            }, "no RTT gauge")
        // Byte counters move about once a second too.
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                let body = (try? await Self.http(lab, "GET", alpha + "/metrics", user: admin))?.body ?? ""
                return Self.metric(body, "weft_peer_sent_bytes_total", "peer=\"beta\"") ?? 0 > 0
            }, "alpha's bytes sent to beta never counted")

        #expect(lab.read("alpha-api.log").contains("user=admin"), "the access log names no user")

        // weft status, from the config's restfulApi.
        let status = try await lab.run(WeftProcess.executable, ["status", "--config", lab.configs["beta"]!])
        #expect(status.status == 0, "\(status)")
        for text in ["site beta", "PEERS", "alpha", "TUNNELS", "REMOTE APPS", "web", "api", "STREAMS", "RECEIVED"] {
            #expect(status.stdout.contains(text), "status lacks \(text):\n\(status.stdout)")
        }
        print("operations: weft status:\n\(status.stdout)")
        let statusAlpha = try await lab.run(WeftProcess.executable, ["status", "--config", lab.configs["alpha"]!])
        #expect(statusAlpha.status == 0 && statusAlpha.stdout.contains("EXPOSED APPS"), "\(statusAlpha)")
        // weft speedtest: generated data through the tunnel, checked at the far end.
        let speed = try await lab.run(
            WeftProcess.executable,
            ["speedtest", "--config", lab.configs["beta"]!, "--site", "alpha", "--seconds", "2"])
        #expect(speed.status == 0 && speed.stdout.contains("far end checked every byte: all correct"), "\(speed)")
        #expect(speed.stdout.contains(" sent "), "no progress lines: \(speed.stdout)")
        print("operations: weft speedtest:\n\(speed.stdout)")
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                lab.lines("alpha", "speed test received", "verified=true").count == 1
            })
        let unknownPeer = try await lab.run(WeftProcess.executable, ["speedtest", "--api", beta, "--site", "nobody"])
        #expect(unknownPeer.status == 1 && unknownPeer.stderr.contains("not found"), "\(unknownPeer)")
        let stream = try await Self.http(lab, "GET", beta + "/api/v1/speedtest?site=alpha&seconds=1")
        let streamed = stream.body.split(separator: "\n").compactMap { Self.json(String($0)) as? [String: Any] }
        #expect(stream.status == 200 && streamed.last?["type"] as? String == "result", "\(stream.body)")
        #expect(streamed.last?["verified"] as? Bool == true && (streamed.last?["bytes"] as? Int ?? 0) > 0)
        #expect(try await Self.http(lab, "GET", beta + "/api/v1/speedtest?site=alpha&seconds=0").status == 400)
        #expect(try await Self.http(lab, "GET", beta + "/api/v1/speedtest?site=alpha&direction=up").status == 400)
        // Downloads: alpha allows them, so beta has it send, and checks every byte itself;
        // both directions at once report each.
        let down = try await lab.run(
            WeftProcess.executable,
            ["speedtest", "--config", lab.configs["beta"]!, "--site", "alpha", "--seconds", "1", "--download"])
        #expect(down.status == 0 && down.stdout.contains("every byte checked here: all correct"), "\(down)")
        #expect(down.stdout.contains(" received "), "no progress lines: \(down.stdout)")
        let both = try await lab.run(
            WeftProcess.executable,
            [
                "speedtest", "--config", lab.configs["beta"]!, "--site", "alpha", "--seconds", "1", "--download",
                "--upload",
            ])
        #expect(both.status == 0, "\(both)")
        #expect(both.stdout.contains("result (upload):") && both.stdout.contains("result (download):"), "\(both)")
        print("operations: weft speedtest --download --upload:\n\(both.stdout)")
        #expect(!lab.lines("alpha", "speed test to the peer", "peer=beta").isEmpty)
        // beta does not allow them: alpha's request is refused with the reason, logged at beta.
        let notAllowed = try await lab.run(
            WeftProcess.executable,
            ["speedtest", "--config", lab.configs["alpha"]!, "--site", "beta", "--seconds", "1", "--download"])
        #expect(notAllowed.status == 1 && notAllowed.stderr.contains("speedtest.allowDownload is off"), "\(notAllowed)")
        #expect(!lab.lines("beta", "refused a download speed test", "peer=alpha").isEmpty)

        let noAuth = try await lab.run(WeftProcess.executable, ["status", "--api", alpha])
        #expect(noAuth.status != 0 && noAuth.stderr.contains("credentials"), "\(noAuth)")

        // Changes survive a restart (stateDir/apps.json). While alpha is away, beta's series
        // labelled with it are gone (they come back with the next tunnel).
        await lab.stop("alpha")
        var withoutAlpha = ""
        let seriesGone = await WeftProcess.waitFor(.seconds(60)) {
            withoutAlpha = (try? await Self.http(lab, "GET", beta + "/metrics"))?.body ?? withoutAlpha
            return ["weft_peer_sent_bytes_total", "weft_peer_links", "weft_link_state_changes_total"].allSatisfy {
                Self.metric(withoutAlpha, $0, "peer=\"alpha\"") == nil
            }
        }
        #expect(seriesGone, "\(withoutAlpha.split(separator: "\n").filter { $0.contains("alpha") })")
        try lab.start("alpha")
        var persisted = HTTPResult(status: 0, body: "", headers: "")
        _ = await WeftProcess.waitFor(.seconds(60)) {
            persisted =
                (try? await Self.http(lab, "GET", alpha + "/api/v1/localExposedApps/web", user: admin)) ?? persisted
            return persisted.status == 200
        }
        #expect(persisted.status == 200 && persisted.body.contains("\"source\":\"api\""), "\(persisted)")

        // Deleted at alpha: the app carries no more traffic (beta's client is refused, and the
        // refusal is logged at alpha). Then at beta: the remote app's socket closes.
        var relinked = false
        _ = await WeftProcess.waitFor(.seconds(60)) {
            relinked = (try? await Self.http(lab, "GET", fetchURL))?.status == 200
            return relinked
        }
        #expect(relinked, "no traffic after alpha's restart")
        #expect(try await Self.http(lab, "DELETE", alpha + "/api/v1/localExposedApps/web", user: admin).status == 204)
        #expect(try await Self.http(lab, "GET", alpha + "/api/v1/localExposedApps/web", user: admin).status == 404)
        let refused = try await Self.http(lab, "GET", fetchURL)
        #expect(refused.status != 200, "the deleted app still answered: \(refused)")
        #expect(
            await WeftProcess.waitFor(.seconds(60)) { !lab.lines("alpha", "refused a stream", "app=web").isEmpty },
            "no refusal logged at alpha")
        #expect(try await Self.http(lab, "DELETE", beta + "/api/v1/remoteApps/alpha/web").status == 204)
        #expect(!FreePort.accepts(webPort), "the removed remote app's socket still accepts")
        #expect(try await Self.http(lab, "DELETE", beta + "/api/v1/remoteApps/alpha/web").status == 404)
        // A file app removed over the API stays removed after a restart.
        #expect(try await Self.http(lab, "DELETE", alpha + "/api/v1/localExposedApps/spare", user: admin).status == 204)
        await lab.stop("alpha")
        try lab.start("alpha")
        var gone = HTTPResult(status: 0, body: "", headers: "")
        _ = await WeftProcess.waitFor(.seconds(60)) {
            gone = (try? await Self.http(lab, "GET", alpha + "/api/v1/localExposedApps", user: admin)) ?? gone
            return gone.status == 200
        }
        #expect(gone.status == 200 && gone.body == "[]", "\(gone)")
        await lab.stop("alpha", "beta")
    }

    @Test(
        "ten identical POSTs at once: one 201, nine 409 (TCP and Unix); after one DELETE nothing listens; a SIGHUP racing changes loses none"
    )
    func concurrentChanges() async throws {
        let lab = try SiteLab()
        let apiPort = try FreePort.find()
        let tcpPort = try FreePort.find()
        let sockets = lab.path + "/sockets"
        try lab.site("alpha", extra: Self.api(apiPort, auth: false, socketDirectory: sockets))
        try lab.start("alpha")
        let api = "http://127.0.0.1:\(apiPort)"
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                // 503 until the site has started: then its apps can change.
                (try? await Self.http(lab, "GET", api + "/api/v1/site"))?.status == 200
            }, "\(lab.log("alpha"))")

        for (app, socket) in [("tcp", "tcp:127.0.0.1:\(tcpPort)"), ("unix", "unix:\(sockets)/app.sock")] {
            let body = #"{"siteName":"beta","appName":"\#(app)","localSocket":"\#(socket)"}"#
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<10 {
                    group.addTask { try await Self.http(lab, "POST", api + "/api/v1/remoteApps", body: body).status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.sorted() == [201] + Array(repeating: 409, count: 9), "\(app): \(statuses)")
            let listening = { app == "tcp" ? FreePort.accepts(tcpPort) : UnixListener.accepts(sockets + "/app.sock") }
            #expect(listening(), "\(app): the app added is not listening")
            let list = try await Self.http(lab, "GET", api + "/api/v1/remoteApps")
            let entries = (Self.json(list.body) as? [[String: Any]] ?? []).filter { $0["appName"] as? String == app }
            #expect(entries.count == 1, "\(list.body)")
            #expect(try await Self.http(lab, "DELETE", api + "/api/v1/remoteApps/beta/\(app)").status == 204)
            #expect(!listening(), "\(app): still listening after the DELETE")
        }

        // Changes and reloads at once: every change is applied once, none is lost to a reload.
        let ports = try (0..<5).map { _ in try FreePort.find() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, port) in ports.enumerated() {
                let body = #"{"siteName":"beta","appName":"app\#(index)","localSocket":"tcp:127.0.0.1:\#(port)"}"#
                group.addTask {
                    let added = try await Self.http(lab, "POST", api + "/api/v1/remoteApps", body: body)
                    #expect(added.status == 201, "\(added)")
                }
                if index % 2 == 0 { lab.processes["alpha"]!.signal(SIGHUP) }
            }
            try await group.waitForAll()
        }
        #expect(
            await WeftProcess.waitFor(.seconds(60)) { lab.lines("alpha", "configuration reloaded").count >= 1 },
            "\(lab.log("alpha").suffix(2000))")
        let list = try await Self.http(lab, "GET", api + "/api/v1/remoteApps")
        let names = (Self.json(list.body) as? [[String: Any]] ?? []).compactMap { $0["appName"] as? String }
        #expect(names.sorted() == (0..<5).map { "app\($0)" }, "\(list.body)")
        #expect(ports.allSatisfy { FreePort.accepts($0) }, "\(lab.log("alpha").suffix(2000))")
        await lab.stop("alpha")
    }

    @Test("SIGHUP: app list changes take effect at once; a running transfer, its tunnel and its stream carry on")
    func reloadUnderLoad() async throws {
        let lab = try SiteLab()
        let httpPort = try FreePort.find()
        let webPort = try FreePort.find()
        let sparePort = try FreePort.find()
        let movedPort = try FreePort.find()
        let betaAPI = try FreePort.find()
        let digest = try await lab.website(port: httpPort, randomMegabytes: ["big.bin": 40])["big.bin"]
        let alphaApps = [
            SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)"), SiteLab.exposed("spare", "tcp:127.0.0.1:\(httpPort)"),
        ]
        try lab.site("alpha", exposed: alphaApps)
        try lab.site(
            "beta",
            remote: [
                SiteLab.remote("alpha", "web", "tcp:127.0.0.1:\(webPort)"),
                SiteLab.remote("alpha", "spare", "tcp:127.0.0.1:\(sparePort)"),
            ], extra: Self.api(betaAPI, auth: false))
        try lab.start("alpha")
        try lab.start("beta")
        #expect(await lab.waitForLink("beta", to: "alpha"), "\(lab.log("beta"))")

        // A transfer of about 8 s through `web`.
        let fetched = lab.path + "/fetched.bin"
        // The reload comes once the transfer's bytes flow.
        let transfer = try await lab.download(
            "http://127.0.0.1:\(webPort)/big.bin", to: fetched, rate: "5M", flowing: 4 << 20)

        // beta: `spare` moves to another local socket; alpha: a new app `extra`.
        let betaText = lab.read("beta.yaml")
        _ = try lab.write("beta.yaml", betaText.replacingOccurrences(of: ":\(sparePort)", with: ":\(movedPort)"))
        let alphaText = lab.read("alpha.yaml")
        _ = try lab.write("alpha.yaml", alphaText + SiteLab.exposed("extra", "tcp:127.0.0.1:\(httpPort)") + "\n")
        #expect(transfer.isRunning, "the transfer ended before the reload")
        lab.processes["beta"]!.signal(SIGHUP)
        lab.processes["alpha"]!.signal(SIGHUP)
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                FreePort.accepts(movedPort) && !FreePort.accepts(sparePort)
                    && !lab.lines("beta", "configuration reloaded").isEmpty
                    && !lab.lines("alpha", "configuration reloaded").isEmpty
            },
            "\(lab.log("beta").suffix(2000))")
        let reloaded = lab.lines("beta", "configuration reloaded")
        #expect(
            reloaded.count == 1 && reloaded[0].contains("remote changed: alpha/spare")
                && !reloaded[0].contains("restart"), "\(reloaded)")
        #expect(lab.lines("alpha", "configuration reloaded", "exposed added: extra").count == 1, "\(lab.log("alpha"))")
        // The peer learns the new app over the message channel.
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                (try? await Self.http(lab, "GET", "http://127.0.0.1:\(betaAPI)/api/v1/remoteSites/alpha"))?.body
                    .contains(
                        "extra") == true
            })
        let moved = try await Self.http(lab, "GET", "http://127.0.0.1:\(movedPort)/big.bin")
        #expect(moved.status == 200, "the moved app: \(moved.status)")

        // A file that does not load changes nothing.
        _ = try lab.write("beta.yaml", betaText + "siteName: [broken\n")
        lab.processes["beta"]!.signal(SIGHUP)
        #expect(await WeftProcess.waitFor(.seconds(60)) { !lab.lines("beta", "reload refused").isEmpty })
        #expect(FreePort.accepts(webPort) && FreePort.accepts(movedPort))

        #expect(await transfer.exited(within: .seconds(120)), "the transfer did not finish")
        #expect(transfer.exitCode == 0, "\(lab.read("transfer.err"))")
        #expect(try await lab.sha256(ofFile: fetched) == digest, "the transfer's bytes changed")
        // One tunnel throughout, never closed.
        #expect(lab.lines("beta", "tunnel created").count == 1 && lab.lines("beta", "closing tunnel").isEmpty)
        #expect(lab.lines("beta", "stream reset").isEmpty, "\(lab.lines("beta", "stream reset"))")
        await lab.stop("alpha", "beta")
    }

    @Test("REST API over TLS: HTTPS only, weft status verifies the certificate (or is told not to)")
    func restAPIOverTLS() async throws {
        let lab = try SiteLab()
        let port = try FreePort.find()
        let made = try await lab.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-keyout", lab.path + "/api-key.pem", "-out", lab.path + "/api-cert.pem", "-subj", "/CN=weft-api",
                "-addext", "subjectAltName=IP:127.0.0.1",
            ])
        try #require(made.status == 0, "\(made)")
        try lab.site(
            "alpha",
            extra: """
                restfulApi:
                  enabled: true
                  listenAddr: 127.0.0.1:\(port)
                  tls:
                    enabled: true
                    key: \(lab.path)/api-key.pem
                    cert: \(lab.path)/api-cert.pem
                  auth:
                    basicAuth:
                    - user: ops
                      password: pw

                """)
        try lab.start("alpha")
        #expect(await WeftProcess.waitFor(.seconds(60)) { FreePort.accepts(port) }, "\(lab.log("alpha"))")
        var secure = SiteLab.Output(status: -1, stdout: "", stderr: "")
        // The API answers 503 until the site has opened its sockets.
        _ = await WeftProcess.waitFor(.seconds(60)) {
            secure =
                (try? await lab.run(
                    SiteLab.curl,
                    [
                        "-sS", "--cacert", lab.path + "/api-cert.pem", "-u", "ops:pw",
                        "https://127.0.0.1:\(port)/api/v1/site",
                    ]
                )) ?? secure
            return secure.stdout.contains("siteName")
        }
        #expect(secure.status == 0 && secure.stdout.contains("\"siteName\":\"alpha\""), "\(secure)")
        let plain = try await lab.run(SiteLab.curl, ["-sS", "-u", "ops:pw", "http://127.0.0.1:\(port)/api/v1/site"])
        #expect(plain.status != 0 || !plain.stdout.contains("siteName"), "plain HTTP answered: \(plain)")
        let status = try await lab.run(
            WeftProcess.executable,
            ["status", "--config", lab.configs["alpha"]!, "--cacert", lab.path + "/api-cert.pem"])
        #expect(status.status == 0 && status.stdout.contains("site alpha"), "\(status)")
        let untrusted = try await lab.run(WeftProcess.executable, ["status", "--config", lab.configs["alpha"]!])
        #expect(untrusted.status != 0, "a certificate nobody vouched for was accepted: \(untrusted)")
        let insecure = try await lab.run(
            WeftProcess.executable, ["status", "--config", lab.configs["alpha"]!, "--insecure"])
        #expect(insecure.status == 0, "\(insecure)")
        await lab.stop("alpha")
    }

    static let chromium = "/usr/bin/chromium"

    @Test(
        "the dashboard loads in headless Chromium without console errors and shows both sites",
        .enabled(
            if: TestEnvironment.runs(needing: chromium),
            "\(chromium) is not installed (scripts/install-deps.sh installs it)"))
    func dashboard() async throws {
        let lab = try SiteLab()
        let httpPort = try FreePort.find()
        let betaAPI = try FreePort.find()
        try await lab.website(port: httpPort, files: ["hello.txt": "hello\n"])
        try lab.site("alpha", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")])
        try lab.site(
            "beta", remote: [SiteLab.remote("alpha", "web", "tcp:127.0.0.1:\(try FreePort.find())")],
            extra: Self.api(betaAPI, auth: false))
        try lab.start("alpha")
        try lab.start("beta")
        #expect(await lab.waitForLink("beta", to: "alpha"), "\(lab.log("beta"))")
        let page = try await Self.http(lab, "GET", "http://127.0.0.1:\(betaAPI)/")
        #expect(page.status == 200 && page.headers.lowercased().contains("text/html"), "\(page.status)")
        // No external assets: nothing the page loads comes from another origin.
        for marker in [
            "src=\"http", "src='http", "href=\"http", "href='http", "url(http", "url(\"http", "@import", "src=\"//",
        ] {
            #expect(!page.body.contains(marker), "the dashboard refers to \(marker)")
        }
        let screenshot = lab.path + "/dashboard.png"
        let check = try await lab.run(
            "/usr/bin/env",
            [
                "python3", Self.repository + "/scripts/dashboard-check.py", "http://127.0.0.1:\(betaAPI)/",
                "--screenshot", screenshot, "--expect", "alpha", "--expect", "beta", "--expect", "web", "--wait", "4",
            ], timeout: .seconds(120))
        #expect(check.status == 0, "\(check)")
        print("operations: dashboard check: \(check.stdout)")
        // The check fails a page that does not load cleanly.
        let broken = try await lab.run(
            "/usr/bin/env",
            [
                "python3", Self.repository + "/scripts/dashboard-check.py", "http://127.0.0.1:\(betaAPI)/no-such-page",
                "--screenshot", lab.path + "/broken.png", "--expect", "alpha", "--wait", "1",
            ], timeout: .seconds(120))
        #expect(broken.status == 1, "\(broken)")
        // Kept for a look after the run.
        let kept = Self.repository + "/.build/test-artifacts/dashboard.png"
        try? FileManager.default.createDirectory(
            atPath: (kept as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: kept)
        try? FileManager.default.copyItem(atPath: screenshot, toPath: kept)
        await lab.stop("alpha", "beta")
    }
}
