import Foundation
import Testing
import WeftTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Real sites on loopback for end-to-end tests: a mosquitto broker started here, `weft run`
/// processes, and real apps (Python's HTTP server, redis, small Python servers), all stopped
/// and removed when the lab goes.
final class SiteLab: @unchecked Sendable {
    static let python = "/usr/bin/python3"
    static let redisServer = "/usr/bin/redis-server"
    static let redisCLI = "/usr/bin/redis-cli"
    static let curl = "/usr/bin/curl"

    /// Whether the lab's tools are here (always true under CI, where a missing one fails).
    static var isAvailable: Bool {
        MosquittoBroker.isAvailable
            && [python, redisServer, redisCLI, curl, StunServer.executable].allSatisfy {
                TestEnvironment.runs(needing: $0)
            }
    }

    static let missing =
        "needs mosquitto, python3, redis-server, redis-tools, curl and coturn (scripts/install-deps.sh installs them)"

    let broker: MosquittoBroker
    /// The lab's directory (configs, logs, app files); removed with the lab.
    let scratch = Scratch()
    var path: String { scratch.path }
    private(set) var processes: [String: ChildProcess] = [:]
    private(set) var configs: [String: String] = [:]

    init() throws {
        broker = try MosquittoBroker()
    }

    deinit {
        for process in processes.values where process.isRunning {
            process.signal(SIGKILL)
            _ = process.waitForExit(timeout: 2)
        }
    }

    // MARK: sites

    /// Writes a site's config: a link listener on a free loopback port, and the given
    /// `localExposedApps` / `remoteApps` entries (YAML list items, already indented).
    @discardableResult
    func site(
        _ name: String, key: String = "lab-mesh-key", exposed: [String] = [], remote: [String] = [],
        tunnelExtra: String = "", topic: String? = nil, sockets: String? = nil, extra: String = "",
        brokerURL: String? = nil, moreBrokerURLs: [String] = []
    ) throws -> String {
        let port = try FreePort.find()
        let localSockets =
            sockets ?? """
                  - mode: dedicated-address
                    listenAddress: 127.0.0.1
                    listenPort: \(port)

                """
        var text = """
            siteName: \(name)
            crypto:
              key: "\(key)"
            logger:
              level: debug
              file: \(path)/\(name).log
            messageChannel:
              mqtt:
                brokerServer: \(brokerURL ?? broker.url)
            \(moreBrokerURLs.isEmpty ? "" : "    brokerServers: [\(moreBrokerURLs.joined(separator: ", "))]\n")    keepAlive: 5
            \(topic.map { "    topic: \"\($0)\"\n" } ?? "")tunnel:
              localSockets:
            \(localSockets)\(tunnelExtra)stateDir: \(path)/\(name)-state

            """
        if !exposed.isEmpty { text += "localExposedApps:\n" + exposed.joined(separator: "\n") + "\n" }
        if !remote.isEmpty { text += "remoteApps:\n" + remote.joined(separator: "\n") + "\n" }
        text += extra
        let file = path + "/\(name).yaml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        configs[name] = file
        return file
    }

    /// Starts (or restarts) a site's process; `openFiles` sets its open-files limit (soft and
    /// hard, as `ulimit -n` does) first.
    func start(_ name: String, openFiles: Int? = nil) throws {
        if let openFiles {
            processes[name] = try ChildProcess(
                "/bin/sh",
                [
                    "-c", "ulimit -n \(openFiles) && exec \"$0\" run --config \"$1\"", WeftProcess.executable,
                    configs[name]!,
                ],
                stderr: path + "/\(name).stderr")
            return
        }
        processes[name] = try ChildProcess(
            WeftProcess.executable, ["run", "--config", configs[name]!], stderr: path + "/\(name).stderr")
    }

    func kill(_ name: String, signal: Int32 = SIGKILL) async {
        processes[name]?.signal(signal)
        _ = await processes[name]?.exited(within: .seconds(60))
    }

    /// Resident memory of a running process, in bytes (from /proc).
    func residentBytes(_ name: String) -> Int { statusBytes(name, "VmRSS:") }

    /// The most resident memory the process has had since it started (its high-water mark).
    func peakResidentBytes(_ name: String) -> Int { statusBytes(name, "VmHWM:") }

    private func statusBytes(_ name: String, _ field: String) -> Int {
        guard let pid = processes[name]?.pid,
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: path + "/\(name).log", encoding: .utf8)) ?? ""
    }

    /// Lines of `name`'s log containing every one of `parts`.
    func lines(_ name: String, _ parts: String...) -> [Substring] {
        log(name).split(separator: "\n").filter { line in parts.allSatisfy { line.contains($0) } }
    }

    /// Waits until `name` has a link up to `peer`.
    func waitForLink(_ name: String, to peer: String, count: Int = 1, timeout: Duration = .seconds(60)) async -> Bool {
        await WeftProcess.waitFor(timeout) { self.lines(name, "link up", "peer=\(peer)").count >= count }
    }

    // MARK: apps

    /// Starts a long-running helper process and waits until `port` accepts (when given).
    @discardableResult
    func app(
        _ name: String, _ executable: String, _ arguments: [String], port: Int? = nil, socket: String? = nil,
        ipv6: Bool = false
    ) async throws -> ChildProcess {
        let process = try ChildProcess(
            executable, arguments, stdout: path + "/\(name).out", stderr: path + "/\(name).err")
        processes[name] = process
        let ready = await WeftProcess.waitFor(.seconds(60)) {
            if let port { return ipv6 ? FreePort.acceptsIPv6(port) : FreePort.accepts(port) }
            if let socket { return FileManager.default.fileExists(atPath: socket) }
            return true
        }
        guard ready else { throw BrokerError(message: "\(name) did not start: \(read(name + ".err"))") }
        return process
    }

    /// Python's HTTP server on `port`, serving `files` (name → text) and files of random bytes
    /// (name → megabytes) from a directory of its own; returns the random files' sha256.
    @discardableResult
    func website(
        _ name: String = "http", port: Int, files: [String: String] = [:], randomMegabytes: [String: Int] = [:],
        bind: String = "127.0.0.1"
    ) async throws -> [String: String] {
        let directory = "www-\(name)"
        try FileManager.default.createDirectory(atPath: path + "/" + directory, withIntermediateDirectories: true)
        for (file, text) in files { _ = try write(directory + "/" + file, text) }
        var digests: [String: String] = [:]
        for (file, megabytes) in randomMegabytes {
            digests[file] = try await randomFile(directory + "/" + file, megabytes: megabytes)
        }
        try await httpServer(name, directory: path + "/" + directory, port: port, bind: bind)
        return digests
    }

    /// A rate-limited curl download of `url` into `file`, left running; it returns once the
    /// first `bytes` have arrived (the transfer is flowing: an event, not a guessed time), or
    /// after 60 s with the test failed. curl's errors go to `transfer.err`.
    func download(
        _ url: String, to file: String, rate: String, flowing bytes: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> ChildProcess {
        let transfer = try ChildProcess(
            Self.curl, ["-sS", "--fail", "--max-time", "600", "--limit-rate", rate, "-o", file, url],
            stderr: path + "/transfer.err")
        let flowing = await WeftProcess.waitFor(.seconds(60)) {
            ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0) >= bytes
        }
        #expect(flowing, "the transfer never got going: \(read("transfer.err"))", sourceLocation: sourceLocation)
        return transfer
    }

    /// A `localExposedApps` entry.
    static func exposed(_ app: String, _ socket: String) -> String {
        "- appName: \(app)\n  appSocket: \(socket)"
    }

    /// A `remoteApps` entry.
    static func remote(_ site: String, _ app: String, _ localSocket: String) -> String {
        "- siteName: \(site)\n  appName: \(app)\n  localSocket: \(localSocket)"
    }

    /// Stops sites with SIGTERM, as a user would.
    func stop(_ names: String...) async {
        for name in names { await kill(name, signal: SIGTERM) }
    }

    /// Python's HTTP server on `port`, serving `directory`.
    func httpServer(_ name: String, directory: String, port: Int, bind: String = "127.0.0.1") async throws {
        try await app(
            name, Self.python, ["-m", "http.server", "\(port)", "--bind", bind, "--directory", directory],
            port: port, ipv6: bind.contains(":"))
    }

    /// A TCP forwarder from 127.0.0.1:`port` to the lab's broker: killing it cuts a site's
    /// broker connection, and only that (the broker then publishes the site's last will).
    func brokerProxy(_ name: String, port: Int) async throws {
        try await forwarder(name, port: port, upstream: broker.port)
    }

    /// A TCP forwarder from 127.0.0.1:`port` to 127.0.0.1:`upstream`; with `recording`, every
    /// byte it passes (both ways) is appended to that file: what a capture would see there.
    /// A connection while the upstream does not listen yet (the readiness probe) is closed.
    func forwarder(_ name: String, port: Int, upstream: Int, recording: String? = nil) async throws {
        let script = """
            import socket, sys, threading
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", int(sys.argv[1])))
            listener.listen(16)
            record = open(sys.argv[3], "ab", buffering=0) if len(sys.argv) > 3 else None
            lock = threading.Lock()
            def pipe(a, b):
                try:
                    while True:
                        data = a.recv(65536)
                        if not data:
                            break
                        if record:
                            with lock:
                                record.write(data)
                        b.sendall(data)
                except OSError:
                    pass
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            while True:
                client, _ = listener.accept()
                try:
                    upstream = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
                except OSError:
                    client.close()
                    continue
                threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
                threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
            """
        try await app(
            name, Self.python, ["-c", script, "\(port)", "\(upstream)"] + (recording.map { [$0] } ?? []), port: port)
    }

    /// redis-server listening only on a Unix socket.
    func redis(_ name: String, socket: String) async throws {
        try await app(
            name, Self.redisServer,
            ["--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no", "--dir", path],
            socket: socket)
    }

    /// coturn as a plain STUN server on a UDP port of 127.0.0.1.
    func stunServer(_ name: String, port: Int) async throws {
        try FileManager.default.createDirectory(atPath: path + "/\(name)", withIntermediateDirectories: true)
        try await app(name, StunServer.executable, StunServer.arguments(port: port, directory: path + "/\(name)"))
    }

    /// A TCP app that reads until EOF, then answers "<bytes> <sha256>\n" and closes.
    func digestServer(_ name: String, port: Int) async throws {
        let script = try write(
            "digest_server.py",
            """
            import hashlib, socket, sys, threading
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", int(sys.argv[1])))
            server.listen(64)
            def serve(conn):
                digest, total = hashlib.sha256(), 0
                while True:
                    data = conn.recv(1 << 16)
                    if not data:
                        break
                    digest.update(data)
                    total += len(data)
                conn.sendall(f"{total} {digest.hexdigest()}\\n".encode())
                conn.close()
            while True:
                conn, _ = server.accept()
                threading.Thread(target=serve, args=(conn,), daemon=True).start()
            """)
        try await app(name, Self.python, [script, "\(port)"], port: port)
    }

    // MARK: clients

    typealias Output = ChildProcess.Output

    /// Runs a client to completion (killed after `timeout`), without holding a thread. curl
    /// always gets a `--max-time` (the timeout, unless the caller gave a shorter one), so a
    /// stall is curl's error, printed, not a kill.
    func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(120)) async throws -> Output {
        var arguments = arguments
        if executable == Self.curl && !arguments.contains("--max-time") {
            arguments = ["--max-time", "\(timeout.components.seconds)"] + arguments
        }
        return try await ChildProcess.run(executable, arguments, timeout: timeout + .seconds(5))
    }

    /// Python that connects to `tcp:HOST:PORT` or `unix:/path`, shared by the client scripts.
    static let connectFunction = """
        import socket
        def connect(target):
            if target.startswith("unix:"):
                conn = socket.socket(socket.AF_UNIX)
                conn.connect(target[5:])
                return conn
            host, port = target[4:].rsplit(":", 1)
            return socket.create_connection((host, int(port)))

        """

    /// Sends `megabytes` of seeded random bytes to a TCP port or Unix socket, shuts the write
    /// side, and prints "<sent digest>\n<reply>".
    func halfCloseClient(to socket: String, megabytes: Int) async throws -> Output {
        let script = try write(
            "half_close_client.py",
            Self.connectFunction + """
                import hashlib, random, socket, sys
                target, size = sys.argv[1], int(sys.argv[2]) << 20
                conn = connect(target)
                rng, digest, sent = random.Random(7), hashlib.sha256(), 0
                while sent < size:
                    chunk = rng.randbytes(min(1 << 16, size - sent))
                    conn.sendall(chunk)
                    digest.update(chunk)
                    sent += len(chunk)
                conn.shutdown(socket.SHUT_WR)
                reply = b""
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    reply += data
                print(f"{sent} {digest.hexdigest()}")
                print(reply.decode().strip())
                """)
        return try await run(Self.python, [script, socket, "\(megabytes)"])
    }

    /// Connects, sends a line, and reports how the connection ended: "reset", "closed" or
    /// "open" (still open after `wait` seconds), and how long that took.
    func probe(_ socket: String, wait: Double = 5) async throws -> Output {
        let script = try write(
            "probe.py",
            Self.connectFunction + """
                import socket, sys, time
                target, wait = sys.argv[1], float(sys.argv[2])
                start = time.monotonic()
                conn = connect(target)
                conn.settimeout(wait)
                try:
                    conn.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
                    data = conn.recv(4096)
                    print("closed" if not data else "data")
                except ConnectionResetError:
                    print("reset")
                except socket.timeout:
                    print("open")
                print(f"{time.monotonic() - start:.3f}")
                """)
        return try await run(Self.python, [script, socket, "\(wait)"])
    }

    // MARK: files

    func write(_ name: String, _ text: String) throws -> String { try scratch.write(name, text) }

    func read(_ name: String) -> String { scratch.read(name) }

    /// A file of `megabytes` random bytes; returns its sha256.
    func randomFile(_ name: String, megabytes: Int) async throws -> String {
        let out = try await run(
            Self.python,
            [
                "-c",
                """
                import hashlib, os, sys
                digest = hashlib.sha256()
                with open(sys.argv[1], "wb") as f:
                    for _ in range(int(sys.argv[2])):
                        block = os.urandom(1 << 20)
                        f.write(block)
                        digest.update(block)
                print(digest.hexdigest())
                """,
                path + "/" + name, "\(megabytes)",
            ])
        return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func sha256(ofFile file: String) async throws -> String {
        let out = try await run(
            Self.python,
            [
                "-c",
                """
                import hashlib, sys
                digest = hashlib.sha256()
                with open(sys.argv[1], "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                print(digest.hexdigest())
                """, file,
            ])
        return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
