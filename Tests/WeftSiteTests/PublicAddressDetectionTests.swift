import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing
import WeftSite
import WeftTestSupport
import WeftWire

#if canImport(Glibc)
    import Glibc
#endif

/// Public address detection against real servers on loopback: Python's HTTP server and
/// coturn as a STUN server, both started here.
@Suite("public address detection", .serialized, .timeLimit(.minutes(10)))
struct PublicAddressDetectionTests {
    static let python = "/usr/bin/python3"
    let group = MultiThreadedEventLoopGroup.singleton

    /// A directory served over HTTP on a free port.
    final class HTTPFiles {
        let directory: String
        let port: Int
        let server: ChildProcess

        init() async throws {
            directory = NSTemporaryDirectory() + "weft-detect-\(getpid())-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            port = try FreePort.find()
            server = try ChildProcess(
                PublicAddressDetectionTests.python,
                ["-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", directory],
                stderr: directory + ".log")
            let deadline = ContinuousClock.now + .seconds(10)
            while !FreePort.accepts(port) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        func put(_ name: String, _ text: String) throws {
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }

        var url: String { "http://127.0.0.1:\(port)" }

        /// How many times `name` was asked for (the server logs each request on stderr).
        func requests(for name: String) -> Int {
            let log = (try? String(contentsOfFile: directory + ".log", encoding: .utf8)) ?? ""
            return log.split(separator: "\n").filter { $0.contains("GET /\(name) ") }.count
        }

        deinit {
            server.signal(SIGKILL)
            _ = server.waitForExit(timeout: 2)
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: directory + ".log")
        }
    }

    @Test(
        "HTTP: the body is the address; anything else is an error",
        .enabled(if: TestEnvironment.runs(needing: python), "python3 is not installed"))
    func http() async throws {
        let files = try await HTTPFiles()
        try files.put("ip", "198.18.0.7\n")
        try files.put("v6", "  2001:db8::7 ")
        try files.put("html", "<html>198.18.0.7</html>")
        try files.put("big", String(repeating: "1", count: 4096))
        let ip = try await HTTPAddressDetector(url: files.url + "/ip").detect(group: group)
        #expect(ip == IPAddress("198.18.0.7"))
        #expect(try await HTTPAddressDetector(url: files.url + "/v6").detect(group: group) == IPAddress("2001:db8::7"))
        for path in ["/html", "/big", "/missing"] {
            let error = await #expect(throws: DetectionError.self, "\(path)") {
                try await HTTPAddressDetector(url: files.url + path).detect(group: group)
            }
            #expect(error?.code == .badAnswer, "\(path): \(String(describing: error))")
        }
        let ftp = await #expect(throws: DetectionError.self) {
            try await HTTPAddressDetector(url: "ftp://127.0.0.1/ip").detect(group: group)
        }
        #expect(ftp?.code == .invalidSetting)
        // Nothing listening: the connection is refused, and that is an error like any other.
        let closedPort = try FreePort.find()
        let refused = await #expect(throws: DetectionError.self) {
            try await HTTPAddressDetector(url: "http://127.0.0.1:\(closedPort)/ip").detect(group: group)
        }
        #expect(refused?.code == .unreachable, "\(String(describing: refused))")
    }

    @Test("HTTP: a server that never answers costs the timeout, no more")
    func silentServer() async throws {
        let listener = try await ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let error = await #expect(throws: DetectionError.self) {
            try await HTTPAddressDetector(
                url: "http://127.0.0.1:\(listener.localAddress!.port!)/", timeout: .milliseconds(300)
            ).detect(group: group)
        }
        #expect(error?.code == .timedOut, "\(String(describing: error))")
    }

    @Test(
        "STUN: coturn reports the loopback address; a silent port times out",
        .enabled(if: StunServer.isAvailable, "coturn is not installed (apt-get install coturn)"))
    func stun() async throws {
        let server = try StunServer()
        // coturn needs a moment to bind; the detector's retransmits cover part of it.
        var found: IPAddress?
        for _ in 0..<10 where found == nil {
            found = try? await STUNAddressDetector(server: "127.0.0.1:\(server.port)", timeout: .seconds(1)).detect(
                group: group)
        }
        #expect(
            found == IPAddress("127.0.0.1"),
            "\(server.log)")

        let silent = try FreePort.find()
        let error = await #expect(throws: DetectionError.self) {
            try await STUNAddressDetector(server: "127.0.0.1:\(silent)", timeout: .milliseconds(400)).detect(
                group: group)
        }
        #expect(error?.code == .timedOut, "\(String(describing: error))")
    }

    @Test(
        "the monitor announces literal and detected endpoints, and again when the address changes",
        .enabled(if: TestEnvironment.runs(needing: python), "python3 is not installed"))
    func monitor() async throws {
        let files = try await HTTPFiles()
        try files.put("ip", "198.18.0.7")
        let sockets = [
            LocalSocketConfig(
                mode: .dedicatedAddress, publicAddress: .literal(IPAddress("198.18.0.1")!), publicPort: 4000,
                listenAddress: IPAddress("127.0.0.1")!, listenPort: 4000),
            LocalSocketConfig(
                mode: .portForwarding, publicAddress: .autoHttpDetect, publicPort: 4100,
                listenAddress: IPAddress("127.0.0.1")!, listenPort: 4001, httpDetectorURL: files.url + "/ip"),
        ]
        let monitor = PublicAddressMonitor(
            sockets: sockets, stunServers: [], period: .milliseconds(100), retry: .milliseconds(100),
            logger: Logger(label: "test"))
        #expect(
            monitor.literalEndpoints == [SiteAnnouncement.Endpoint(linkType: .tls, address: "198.18.0.1", port: 4000)])
        let (changes, continuation) = AsyncStream.makeStream(of: [SiteAnnouncement.Endpoint].self)
        let task = Task { await monitor.run { continuation.yield($0) } }
        defer { task.cancel() }
        var iterator = changes.makeAsyncIterator()
        let first = await iterator.next()
        #expect(first?.map(\.address) == ["198.18.0.1", "198.18.0.7"])
        #expect(first?.last?.port == 4100)
        try files.put("ip", "198.18.0.8")
        let second = await iterator.next()
        #expect(second?.map(\.address) == ["198.18.0.1", "198.18.0.8"])
        // A detector that starts failing keeps the last address: nothing new is announced.
        try files.put("ip", "garbage")
        // Three more detections, at least two of them answered with garbage: none may announce.
        let asked = files.requests(for: "ip")
        let deadline = ContinuousClock.now + .seconds(60)
        while files.requests(for: "ip") < asked + 3 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(files.requests(for: "ip") >= asked + 3, "the monitor stopped asking")
        task.cancel()
        continuation.finish()
        #expect(await iterator.next() == nil)
    }
}
