import Foundation
import Testing
import WeftTestSupport

/// Clients that connect and leave at once — a TCP health check, a port scan, a load balancer's
/// probe — must not leave the app's connection at the far site open: the close travels in every
/// state of a stream (before the open is answered, while the app connection is being made, with
/// no byte sent, with bytes and a half-close, with a reset).
@Suite("connect-and-close probes through a tunnel", .serialized, .timeLimit(.minutes(10)))
struct ProbeEndToEndTests {
    /// A TCP app at alpha that logs, per connection, "accepted N" and then how it ended:
    /// "eof N BYTES" or "reset N".
    static let appScript = """
        import socket, sys, threading
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", int(sys.argv[1])))
        server.listen(256)
        log = open(sys.argv[2], "a", buffering=1)
        lock = threading.Lock()
        def note(line):
            with lock:
                log.write(line + "\\n")
        def serve(conn, n):
            note(f"accepted {n}")
            total = 0
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    total += len(data)
                note(f"eof {n} {total}")
            except ConnectionResetError:
                note(f"reset {n}")
            conn.close()
        n = 0
        while True:
            conn, _ = server.accept()
            n += 1
            threading.Thread(target=serve, args=(conn, n), daemon=True).start()
        """

    /// Probes of every kind against `port`, `count` each, one after another.
    static let probeScript = """
        import socket, struct, sys, time
        port, count = int(sys.argv[1]), int(sys.argv[2])
        for i in range(count):
            for kind in ("close", "shutdown", "write", "reset"):
                conn = socket.create_connection(("127.0.0.1", port))
                if kind == "shutdown":
                    conn.shutdown(socket.SHUT_WR)
                    time.sleep(0.01)
                elif kind == "write":
                    conn.sendall(b"probe")
                    conn.shutdown(socket.SHUT_WR)
                    time.sleep(0.01)
                elif kind == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
        print("done")
        """

    @Test("every probe that reached the app ends there: EOF (with its bytes) or a reset, none left open")
    func probesEnd() async throws {
        let lab = try SiteLab()
        let appPort = try FreePort.find()
        let entryPort = try FreePort.find()
        let appLog = lab.path + "/app-connections.log"
        try lab.site("alpha", exposed: [SiteLab.exposed("app", "tcp:127.0.0.1:\(appPort)")])
        try lab.site("beta", remote: [SiteLab.remote("alpha", "app", "tcp:127.0.0.1:\(entryPort)")])
        let script = try lab.write("probe_app.py", Self.appScript)
        try await lab.app("app", SiteLab.python, [script, "\(appPort)", appLog], port: appPort)
        try lab.start("alpha")
        try lab.start("beta")
        #expect(await lab.waitForLink("beta", to: "alpha"), "\(lab.log("beta"))")

        let probes = try lab.write("probe.py", Self.probeScript)
        let run = try await lab.run(SiteLab.python, [probes, "\(entryPort)", "15"])
        #expect(run.status == 0 && run.stdout.contains("done"), "\(run)")

        func connections() -> (accepted: Set<String>, ended: [String: String]) {
            var accepted: Set<String> = []
            var ended: [String: String] = [:]
            for line in lab.read("app-connections.log").split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count >= 2 else { continue }
                if parts[0] == "accepted" {
                    accepted.insert(String(parts[1]))
                } else {
                    ended[String(parts[1])] = String(line)
                }
            }
            return (accepted, ended)
        }
        func withBytes(_ ended: [String: String]) -> Int {
            ended.values.filter { $0.hasPrefix("eof") && $0.hasSuffix(" 5") }.count
        }
        // The probe script is done when its last probe is sent; on a loaded machine the last
        // ones may still be on their way through weft. Wait for the write probes' bytes too.
        let allEnded = await WeftProcess.waitFor(.seconds(60)) {
            let (accepted, ended) = connections()
            return !accepted.isEmpty && accepted.allSatisfy { ended[$0] != nil } && withBytes(ended) >= 15
        }
        let (accepted, ended) = connections()
        let open = accepted.filter { ended[$0] == nil }.sorted()
        #expect(allEnded, "connections still open at the app: \(open) of \(accepted.count)")
        // Every probe that closed cleanly and reached the app arrived with its bytes; the
        // write probes' 5 bytes are there.
        #expect(withBytes(ended) == 15, "the write probes' bytes: \(ended.values.sorted())\n\(lab.log("beta"))")
        print("probes: \(accepted.count) connections reached the app, all ended: \(ended.count)")
        // The tunnel is unharmed: one more ordinary client works.
        let check = try await lab.run(SiteLab.python, [probes, "\(entryPort)", "1"])
        #expect(check.status == 0)
        await lab.stop("alpha", "beta")
    }
}
