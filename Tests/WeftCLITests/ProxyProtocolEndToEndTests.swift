import Foundation
import Testing
import WeftTestSupport

/// An app behind the far site learns each client's real address from a PROXY header: Debian's
/// nginx, listening with `proxy_protocol` and taking the client from it (`real_ip_header`),
/// answers with the address it saw, for clients on IPv4, IPv6 and a Unix socket.
@Suite(
    "client addresses (PROXY protocol) end to end", .serialized,
    .enabled(
        if: SiteLab.isAvailable && TestEnvironment.runs(needing: ProxyTools.nginx),
        "\(SiteLab.missing), and nginx"),
    .timeLimit(.minutes(10)))
struct ProxyProtocolEndToEndTests {
    /// nginx on `port`: reads a PROXY header (v1 or v2, nginx tells them apart), trusts it from
    /// loopback, and answers every request with the client address it ended up with.
    static func startNginx(_ lab: SiteLab, port: Int) async throws {
        try await ProxyTools.startNginx(
            lab, port: port,
            http: """
                log_format clients '$proxy_protocol_addr:$proxy_protocol_port via $realip_remote_addr "$request"';
                access_log \(lab.path)/nginx-access.log clients;
                server {
                    listen 127.0.0.1:\(port) proxy_protocol;
                    set_real_ip_from 127.0.0.0/8;
                    real_ip_header proxy_protocol;
                    location / { return 200 "client $remote_addr $remote_port\\n"; }
                }
                """)
    }

    /// curl through `url` from `interface` (when given): what nginx answered, and curl's own
    /// address and port.
    static func fetch(_ lab: SiteLab, _ arguments: [String]) async throws -> (answer: String, local: String) {
        let out = try await lab.run(
            SiteLab.curl, ["-sS", "--fail", "--max-time", "30", "-w", "%{local_ip} %{local_port}"] + arguments)
        #expect(out.status == 0, "curl \(arguments): \(out.stderr)")
        let lines = out.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (String(lines.first ?? ""), String(lines.last ?? ""))
    }

    @Test("nginx behind alpha sees beta's clients: 127.0.0.7 (v1), ::1 (v2), and weft itself for a Unix client")
    func nginxSeesTheClient() async throws {
        let lab = try SiteLab()
        let nginxPort = try FreePort.find()
        try await Self.startNginx(lab, port: nginxPort)
        let (v1Port, v2Port) = (try FreePort.find(), try FreePort.find())
        let unixClient = lab.path + "/web.sock"
        try lab.site(
            "alpha",
            exposed: [
                SiteLab.exposed("web1", "tcp:127.0.0.1:\(nginxPort)") + "\n  proxyProtocol: v1",
                SiteLab.exposed("web2", "tcp:127.0.0.1:\(nginxPort)") + "\n  proxyProtocol: v2",
                SiteLab.exposed("web3", "tcp:127.0.0.1:\(nginxPort)") + "\n  proxyProtocol: v1",
            ])
        try lab.site(
            "beta",
            remote: [
                SiteLab.remote("alpha", "web1", "tcp:127.0.0.1:\(v1Port)"),
                SiteLab.remote("alpha", "web2", "tcp:[::1]:\(v2Port)"),
                SiteLab.remote("alpha", "web3", "unix:\(unixClient)"),
            ])
        try lab.start("alpha")
        try lab.start("beta")
        #expect(await lab.waitForLink("beta", to: "alpha"), "no link: \(lab.log("beta").suffix(3000))")

        // v1 from a loopback address that is not weft's own: nginx answers with it and curl's port.
        let four = try await Self.fetch(lab, ["--interface", "127.0.0.7", "http://127.0.0.1:\(v1Port)/v1"])
        let fourPort = four.local.split(separator: " ").last.map(String.init) ?? "?"
        #expect(four.local.hasPrefix("127.0.0.7 "), "\(four)")
        #expect(four.answer == "client 127.0.0.7 \(fourPort)", "\(four)")
        // v2 from IPv6.
        let six = try await Self.fetch(lab, ["-g", "http://[::1]:\(v2Port)/v2"])
        let sixPort = six.local.split(separator: " ").last.map(String.init) ?? "?"
        #expect(six.answer == "client ::1 \(sixPort)", "\(six)")
        // A Unix-socket client has no address: the header says so, and nginx keeps weft's
        // connection (from 127.0.0.1), never a made-up address.
        let unix = try await Self.fetch(lab, ["--unix-socket", unixClient, "http://localhost/unix"])
        #expect(unix.answer.hasPrefix("client 127.0.0.1 "), "\(unix)")

        // alpha logs the client with each stream it serves.
        #expect(!lab.lines("alpha", "stream connected to its app", "client=127.0.0.7:\(fourPort)").isEmpty)
        await lab.stop("beta", "alpha")
        let log = lab.read("nginx-access.log")
        #expect(log.contains("127.0.0.7:\(fourPort) via 127.0.0.1 \"GET /v1 HTTP/1.1\""), "\(log)")
        #expect(log.contains("::1:\(sixPort) via 127.0.0.1 \"GET /v2 HTTP/1.1\""), "\(log)")
        #expect(!lab.read("nginx-error.log").contains("broken header"), "\(lab.read("nginx-error.log"))")
    }
}
