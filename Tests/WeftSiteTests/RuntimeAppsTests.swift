import Foundation
import Testing
import WeftTestSupport

@testable import WeftSite

/// App entries from API request bodies, and the overlay of API changes on the file's apps.
@Suite("runtime apps: request bodies and the apps.json overlay", .timeLimit(.minutes(10)))
struct RuntimeAppsTests {
    let loader = ConfigLoader(homeDirectory: "/home/tester")

    func field(_ json: String, remote: Bool = false) -> String? {
        do {
            if remote {
                _ = try loader.parseRemoteApp(json: json, ownSite: "here")
            } else {
                _ = try loader.parseExposedApp(json: json)
            }
            Issue.record("\(json) was accepted")
            return nil
        } catch {
            return error.diagnostics.first?.path
        }
    }

    @Test("a body is checked like a config entry, and errors name the field relative to it")
    func bodies() throws {
        let app = try loader.parseExposedApp(json: #"{"appName":"web","appSocket":"tcp:127.0.0.1:8080"}"#)
        #expect(app == ExposedAppConfig(appName: "web", mode: .single(.tcp(IPAddress("127.0.0.1")!, port: 8080))))
        #expect(field(#"{"appName":"web","appSocket":"tcp:nowhere"}"#) == "appSocket")
        #expect(field(#"{"appSocket":"tcp:127.0.0.1:1"}"#) == "appName")
        #expect(
            field(#"{"appName":"r","mode":"range","portRange":["9-1"],"addressRange":["10.0.0.0/8"]}"#)
                == "portRange[0]")
        #expect(field(#"{"appName":"x","appSocket":"tcp:127.0.0.1:1","colour":"red"}"#) != nil)
        #expect(field(#"{"appName":"weft.speedtest","appSocket":"tcp:127.0.0.1:1"}"#) == "appName")
        // Names starting with `weft.` are weft's own streams (speed test, relays).
        #expect(field(#"{"appName":"weft.relay","appSocket":"tcp:127.0.0.1:1"}"#) == "appName")
        #expect(field(#"{"appName":"weft.anything","appSocket":"tcp:127.0.0.1:1"}"#) == "appName")
        #expect(field("[1, 2]") == "")
        #expect(field("{") == "")
        // Bodies are JSON: YAML aliases (a billion-laughs bomb), tags and merge keys are refused.
        let bomb = (1...9).map {
            "l\($0): &l\($0) [" + Array(repeating: "*l\($0 - 1)", count: 9).joined(separator: ",") + "]"
        }
        #expect(field("l0: &l0 x\n" + bomb.joined(separator: "\n") + "\nappName: *l9") == "")
        #expect(field("{appName: web, appSocket: !!str tcp:127.0.0.1:1}") == "")
        #expect(field(#"{"<<": {"appName": "web"}, "appSocket": "tcp:127.0.0.1:1"}"#) == "")
        #expect(field(#"{"appName": "web", "appSocket": "tcp:127.0.0.1:1", "x": [{"<<": 1}]}"#) == "")
        #expect(
            field(#"{"siteName":"here","appName":"a","localSocket":"tcp:127.0.0.1:1"}"#, remote: true) == "siteName")
        #expect(field(#"{"siteName":"far","appName":"a"}"#, remote: true) == "localSocket")
    }

    @Test("what the API lists parses back to the same app (null, [], source and traffic ignored)")
    func roundTrip() throws {
        let apps = [
            ExposedAppConfig(appName: "web", mode: .single(.unix(path: "/run/web.sock"))),
            ExposedAppConfig(
                appName: "vdi", mode: .range(ports: [5900...5910, 22...22], addresses: [IPNetwork("10.0.2.0/24")!])),
        ]
        for app in apps {
            var object = try #require(
                try JSONSerialization.jsonObject(with: JSONEncoder().encode(ExposedAppDocument(app))) as? [String: Any])
            object["source"] = "api"
            object["traffic"] = ["bytesSent": 1, "bytesReceived": 2, "openStreams": 0, "streams": 1]
            if object["appSocket"] == nil { object["appSocket"] = NSNull() }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            #expect(try loader.parseExposedApp(json: json) == app, "\(json)")
        }
        let remote = RemoteAppConfig(
            siteName: "far", appName: "vdi", localSocket: .tcp(IPAddress("127.0.0.1")!, port: 5901),
            appSocket: .tcp(IPAddress("10.0.2.7")!, port: 5901))
        let json = String(decoding: try JSONEncoder().encode(RemoteAppDocument(remote)), as: UTF8.self)
        #expect(try loader.parseRemoteApp(json: json, ownSite: "here") == remote)
    }

    @Test("the apps in effect: the file's, minus removed or replaced, plus added; saved and loaded back")
    func overlay() throws {
        let file = [
            ExposedAppConfig(appName: "a", mode: .single(.unix(path: "/a"))),
            ExposedAppConfig(appName: "b", mode: .single(.unix(path: "/b"))),
            ExposedAppConfig(appName: "c", mode: .single(.unix(path: "/c"))),
        ]
        var overlay = AppOverlay()
        overlay.removedExposedApps = ["a"]
        overlay.addedExposedApps = [
            ExposedAppDocument(ExposedAppConfig(appName: "b", mode: .single(.unix(path: "/b2")))),
            ExposedAppDocument(ExposedAppConfig(appName: "d", mode: .single(.unix(path: "/d")))),
        ]
        let effective = AppsInEffect(exposed: file, remote: [], overlay: overlay, ownSite: "here", loader: loader)
        #expect(effective.exposed.map(\.app.appName) == ["c", "b", "d"])
        #expect(effective.exposed.map(\.source) == [.config, .api, .api])
        #expect(effective.exposed[1].app.mode == .single(.unix(path: "/b2")))
        #expect(effective.undecodable.isEmpty)
        #expect(
            effective.conflict(exposing: ExposedAppConfig(appName: "c", mode: .single(.unix(path: "/x"))))?.code
                == .conflict)
        #expect(effective.conflict(exposing: ExposedAppConfig(appName: "a", mode: .single(.unix(path: "/a")))) == nil)

        // An edit is checked against the other apps only: its own name and socket are free.
        #expect(
            effective.conflict(
                exposing: ExposedAppConfig(appName: "c", mode: .single(.unix(path: "/x"))), replacing: "c") == nil)
        #expect(
            effective.conflict(
                exposing: ExposedAppConfig(appName: "d", mode: .single(.unix(path: "/x"))), replacing: "c")?.field
                == "appName")
        let remote = AppsInEffect(
            exposed: [],
            remote: [
                RemoteAppConfig(siteName: "far", appName: "web", localSocket: .tcp(IPAddress("127.0.0.1")!, port: 81)),
                RemoteAppConfig(siteName: "far", appName: "db", localSocket: .tcp(IPAddress("127.0.0.1")!, port: 82)),
            ], overlay: AppOverlay(), ownSite: "here", loader: loader)
        let moved = RemoteAppConfig(
            siteName: "far", appName: "web", localSocket: .tcp(IPAddress("127.0.0.1")!, port: 81))
        #expect(remote.conflict(using: moved, replacing: "far/web") == nil)
        #expect(remote.conflict(using: moved)?.field == "appName")
        let onDB = RemoteAppConfig(
            siteName: "far", appName: "web", localSocket: .tcp(IPAddress("127.0.0.1")!, port: 82))
        #expect(remote.conflict(using: onDB, replacing: "far/web")?.field == "localSocket")

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-overlay-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try AppOverlay.load(stateDirectory: directory) == AppOverlay())
        try overlay.save(stateDirectory: directory)
        #expect(try AppOverlay.load(stateDirectory: directory) == overlay)
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/apps.json")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // A file written before allowedSites existed still loads (every member allowed).
        let older = """
            {"addedExposedApps":[{"appName":"old","mode":"single","appSocket":"tcp:127.0.0.1:9","portRange":[],\
            "addressRange":[]}],"removedExposedApps":[],"addedRemoteApps":[],"removedRemoteApps":[]}
            """
        try older.write(toFile: directory + "/apps.json", atomically: true, encoding: .utf8)
        let loaded = try AppOverlay.load(stateDirectory: directory)
        #expect(loaded.addedExposedApps.map(\.appName) == ["old"] && loaded.addedExposedApps[0].allowedSites.isEmpty)
        // An entry that no longer decodes is reported, not dropped without a word.
        var broken = overlay
        broken.addedExposedApps.append(
            ExposedAppDocument(ExposedAppConfig(appName: "weft.speedtest", mode: .single(.unix(path: "/s")))))
        broken.addedRemoteApps.append(
            RemoteAppDocument(RemoteAppConfig(siteName: "here", appName: "self", localSocket: .unix(path: "/r"))))
        let reported = AppsInEffect(exposed: file, remote: [], overlay: broken, ownSite: "here", loader: loader)
        #expect(reported.exposed.map(\.app.appName) == ["c", "b", "d"])
        #expect(reported.undecodable.count == 2, "\(reported.undecodable)")
        #expect(reported.undecodable.first?.hasPrefix("exposed app weft.speedtest: ") == true)
        try "{ not json".write(toFile: directory + "/apps.json", atomically: true, encoding: .utf8)
        #expect(throws: DecodingError.self) { try AppOverlay.load(stateDirectory: directory) }
    }
}

@Suite("Unix socket files weft listens on: never another program's, 0660 unless asked", .timeLimit(.minutes(10)))
struct UnixSocketFileTests {
    func scratch() throws -> String {
        let path = NSTemporaryDirectory() + "weft-sock-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("a file in the way and a socket another program serves are refused; a stale socket is removed")
    func prepare() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/plain"
        try "keep me".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: UnixSocketFile.Problem.self) { try UnixSocketFile(path: file).prepare() }
        #expect(FileManager.default.contents(atPath: file) == Data("keep me".utf8))

        let live = directory + "/live.sock"
        let listener = try UnixListener(path: live)
        let problem = #expect(throws: UnixSocketFile.Problem.self) { try UnixSocketFile(path: live).prepare() }
        #expect(problem?.description.contains("another program listens") == true)
        #expect(UnixListener.accepts(live))
        listener.close()
        try UnixSocketFile(path: live).prepare()
        #expect(!FileManager.default.fileExists(atPath: live))

        try UnixSocketFile(path: directory + "/new/dir/app.sock").prepare()
        #expect(FileManager.default.fileExists(atPath: directory + "/new/dir"))
    }

    @Test("API socket paths: only inside restfulApi.socketDirectory, no .. and no symlink out")
    func apiDirectory() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/run", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory + "/run/out", withDestinationPath: "/tmp")
        #expect(RestfulAPISettings().problem(withAPISocketPath: directory + "/run/a.sock") != nil)
        let settings = RestfulAPISettings(socketDirectory: directory + "/run")
        #expect(settings.problem(withAPISocketPath: directory + "/run/a.sock") == nil)
        #expect(settings.problem(withAPISocketPath: directory + "/run/sub/a.sock") == nil)
        #expect(settings.problem(withAPISocketPath: directory + "/run/../a.sock") != nil)
        #expect(settings.problem(withAPISocketPath: directory + "/running/a.sock") != nil)
        #expect(settings.problem(withAPISocketPath: directory + "/run/out/a.sock") != nil)
        #expect(settings.problem(withAPISocketPath: "run/a.sock") != nil)
    }

    @Test("localSocketMode: octal text, unix sockets only")
    func modeKey() throws {
        let loader = ConfigLoader(homeDirectory: "/home/tester")
        let app = try loader.parseRemoteApp(
            json: #"{"siteName":"far","appName":"a","localSocket":"unix:/run/a.sock","localSocketMode":"0600"}"#,
            ownSite: "here")
        #expect(app.localSocketMode == 0o600 && app.effectiveSocketMode == 0o600)
        #expect(
            try loader.parseRemoteApp(
                json: #"{"siteName":"far","appName":"a","localSocket":"unix:/run/a.sock"}"#, ownSite: "here"
            ).effectiveSocketMode == 0o660)
        for bad in [
            #"{"siteName":"far","appName":"a","localSocket":"unix:/run/a.sock","localSocketMode":"0999"}"#,
            #"{"siteName":"far","appName":"a","localSocket":"tcp:127.0.0.1:1","localSocketMode":"0660"}"#,
        ] {
            #expect(throws: ConfigurationError.self) { _ = try loader.parseRemoteApp(json: bad, ownSite: "here") }
        }
    }
}

@Suite("socket budget: stream sockets capped below the open-files limit", .timeLimit(.minutes(10)))
struct SocketBudgetTests {
    @Test("acquire up to the limit, refuse beyond, release frees a place")
    func budget() {
        let budget = SocketBudget(limit: 2)
        #expect(budget.acquire() && budget.acquire())
        #expect(!budget.acquire())
        budget.release()
        #expect(budget.acquire() && budget.held == 2)
        budget.release()
        budget.release()
        budget.release()
        #expect(budget.held == 0)
    }

    @Test("the reserve: a quarter of the limit, at least 64, at most 512")
    func reserve() {
        #expect(SocketBudget.reserve(forLimit: 200) == 64)
        #expect(SocketBudget.reserve(forLimit: 1024) == 256)
        #expect(SocketBudget.reserve(forLimit: 1 << 20) == 512)
    }
}

@Suite("per-app traffic: meters shared by an app's streams, forgotten with the app")
struct AppTrafficTests {
    @Test("streams and bytes add up per app; a stream counts as open until it ends; unknown apps read zero")
    func counts() {
        let traffic = AppTraffic()
        let web = traffic.meter(.exposed("web"))
        #expect(traffic.meter(.exposed("web")) === web)
        web.streamStarted()
        web.streamStarted()
        web.sent(100)
        web.received(40)
        web.streamEnded()
        let remote = traffic.meter(.remote(site: "far", app: "web"))
        remote.streamStarted()
        remote.received(7)
        #expect(
            traffic.counts(.exposed("web"))
                == AppTrafficCounts(bytesSent: 100, bytesReceived: 40, openStreams: 1, streams: 2))
        #expect(
            traffic.counts(.remote(site: "far", app: "web"))
                == AppTrafficCounts(bytesSent: 0, bytesReceived: 7, openStreams: 1, streams: 1))
        #expect(traffic.counts(.exposed("ghost")) == AppTrafficCounts())
        traffic.keep(only: [.remote(site: "far", app: "web")])
        #expect(traffic.counts(.exposed("web")) == AppTrafficCounts())
        #expect(traffic.counts(.remote(site: "far", app: "web")).streams == 1)
        // A stream of a forgotten app still counts on its own meter, read by nobody.
        web.sent(1)
        #expect(traffic.counts(.exposed("web")) == AppTrafficCounts())
    }

    @Test("the table is bounded: past the limit it starts again")
    func bounded() {
        let traffic = AppTraffic()
        for n in 0..<AppTraffic.maxApps { traffic.meter(.exposed("app\(n)")).streamStarted() }
        #expect(traffic.counts(.exposed("app0")).streams == 1)
        traffic.meter(.exposed("one more")).streamStarted()
        #expect(traffic.counts(.exposed("app0")).streams == 0)
        #expect(traffic.counts(.exposed("one more")).streams == 1)
    }
}
