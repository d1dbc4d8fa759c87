import Foundation
import Testing
import WeftTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The tools these tests need beside the lab's.
enum ProxyTools {
    static let nginx = "/usr/sbin/nginx"
    static let openssl = "/usr/bin/openssl"

    /// Debian's nginx in the foreground on `port`, everything it writes kept in the lab's
    /// directory, with `http` (lines inside the `http` block: servers, formats) as its work.
    static func startNginx(_ lab: SiteLab, port: Int, http: String) async throws {
        let dir = lab.path
        try FileManager.default.createDirectory(atPath: dir + "/nginx-tmp", withIntermediateDirectories: true)
        let config = try lab.write(
            "nginx.conf",
            """
            master_process off;
            daemon off;
            pid \(dir)/nginx.pid;
            error_log \(dir)/nginx-error.log info;
            events { worker_connections 128; }
            http {
                client_body_temp_path \(dir)/nginx-tmp/body;
                proxy_temp_path \(dir)/nginx-tmp/proxy;
                fastcgi_temp_path \(dir)/nginx-tmp/fastcgi;
                uwsgi_temp_path \(dir)/nginx-tmp/uwsgi;
                scgi_temp_path \(dir)/nginx-tmp/scgi;
            \(http)
            }
            """)
        try await lab.app("nginx", nginx, ["-e", dir + "/nginx-error.log", "-c", config, "-p", dir], port: port)
    }
}

/// Sites whose links run over WebSocket behind Debian's nginx as a TLS-terminating reverse
/// proxy, beside TLS links: the proxy forwards the upgrade, sees only weft's ciphertext, and a
/// proxy that dies costs the tunnel nothing while another link is up.
@Suite(
    "link transports end to end", .serialized,
    .enabled(
        if: SiteLab.isAvailable && TestEnvironment.runs(needing: ProxyTools.nginx)
            && TestEnvironment.runs(needing: ProxyTools.openssl),
        "\(SiteLab.missing), and nginx and openssl"),
    .timeLimit(.minutes(10)))
struct TransportsEndToEndTests {
    static let nginx = ProxyTools.nginx
    static let openssl = ProxyTools.openssl

    /// A CA and a certificate it signed for localhost (DNS and IP), made with openssl.
    static func makeCertificates(_ lab: SiteLab) async throws {
        let dir = lab.path
        _ = try lab.write("san.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n")
        for arguments in [
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                "\(dir)/ca.key", "-out", "\(dir)/ca.pem", "-days", "2", "-subj", "/CN=weft test CA",
            ],
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                "\(dir)/proxy.key", "-out", "\(dir)/proxy.csr", "-subj", "/CN=localhost",
            ],
            [
                "x509", "-req", "-in", "\(dir)/proxy.csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca.key",
                "-CAcreateserial", "-out", "\(dir)/proxy.pem", "-days", "2", "-extfile", "\(dir)/san.ext",
            ],
        ] {
            let out = try await lab.run(openssl, arguments)
            #expect(out.status == 0, "openssl \(arguments[0]): \(out.stderr)")
        }
    }

    /// nginx terminating TLS on `port` and passing `/weft` upgrades to `upstream`.
    static func startNginx(_ lab: SiteLab, port: Int, upstream: Int) async throws {
        let dir = lab.path
        try await ProxyTools.startNginx(
            lab, port: port,
            http: """
                access_log \(dir)/nginx-access.log;
                server {
                    listen 127.0.0.1:\(port) ssl;
                    ssl_certificate \(dir)/proxy.pem;
                    ssl_certificate_key \(dir)/proxy.key;
                    location /weft {
                        proxy_pass http://127.0.0.1:\(upstream);
                        proxy_http_version 1.1;
                        proxy_set_header Upgrade $http_upgrade;
                        proxy_set_header Connection "upgrade";
                        proxy_read_timeout 3600s;
                        proxy_send_timeout 3600s;
                    }
                }
                """)
    }

    @Test(
        "a site behind nginx (TLS-terminating): links over wss:// through it, an HTTP transfer, no plaintext upstream")
    func behindReverseProxy() async throws {
        let lab = try SiteLab()
        try await Self.makeCertificates(lab)
        let httpPort = try FreePort.find()
        let marker = "weft-plaintext-marker-\(UUID().uuidString)"
        let text = String(repeating: marker + "\n", count: (1 << 20) / (marker.count + 1))
        let digests = try await lab.website(
            port: httpPort, files: ["marker.txt": text], randomMegabytes: ["big.bin": 8])
        let linkPort = try FreePort.find()
        let recorderPort = try FreePort.find()
        let proxyPort = try FreePort.find()
        // What passes between nginx and the site is recorded, as a capture there would be.
        try await lab.forwarder(
            "recorder", port: recorderPort, upstream: linkPort, recording: lab.path + "/upstream.bin")
        try await Self.startNginx(lab, port: proxyPort, upstream: recorderPort)

        // alpha: only a WebSocket socket on loopback, announced as nginx's public URL.
        try lab.site(
            "alpha", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")],
            sockets: """
                  - mode: dedicated-address
                    transportProtocol: websocket
                    listenAddress: 127.0.0.1
                    listenPort: \(linkPort)
                    publicUrl: wss://localhost:\(proxyPort)/weft

                """)
        let webPort = try FreePort.find()
        try lab.site(
            "beta", remote: [SiteLab.remote("alpha", "web", "tcp:127.0.0.1:\(webPort)")],
            tunnelExtra: "  caFile: \(lab.path)/ca.pem\n")
        try lab.start("alpha")
        try lab.start("beta")
        #expect(await lab.waitForLink("beta", to: "alpha"), "no link: \(lab.log("beta").suffix(3000))")
        #expect(!lab.lines("beta", "link up", "transport=websocket").isEmpty)

        let fetched = lab.path + "/fetched.bin"
        let download = try await lab.run(
            SiteLab.curl, ["-sS", "--fail", "-o", fetched, "http://127.0.0.1:\(webPort)/big.bin"])
        #expect(download.status == 0, "\(download.stderr)")
        #expect(try await lab.sha256(ofFile: fetched) == digests["big.bin"])
        let page = try await lab.run(SiteLab.curl, ["-sS", "--fail", "http://127.0.0.1:\(webPort)/marker.txt"])
        #expect(page.stdout == text)

        // What passed between nginx and the site is ciphertext: at least the file's size, and
        // not one copy of the marker the app served in clear.
        let recorded = FileManager.default.contents(atPath: lab.path + "/upstream.bin") ?? Data()
        #expect(recorded.count > 8 << 20, "recorded \(recorded.count) bytes; \(lab.read("recorder.err"))")
        #expect(recorded.range(of: Data(marker.utf8)) == nil, "the app's plaintext crossed the proxy's upstream side")
        await lab.stop("beta", "alpha")
        // nginx logs an upgraded request when its connection ends: the upgrade (101) on /weft.
        let upgraded = await WeftProcess.waitFor(.seconds(60)) {
            lab.read("nginx-access.log").contains("\"GET /weft HTTP/1.1\" 101")
        }
        #expect(upgraded, "nginx access log: \(lab.read("nginx-access.log"))")
    }

    /// What `mixedSites` made.
    struct MixedSetup {
        var digests: [String: String]
        var webPort: Int
        var wsPort: Int
        var proxyPort: Int
    }

    /// alpha exposes `web` (big.bin of `megabytes`) on a TLS socket (with `tlsExtra` lines) and
    /// a WebSocket socket behind nginx (TLS-terminating); beta uses it on `webPort`. Both run.
    static func mixedSites(
        _ lab: SiteLab, megabytes: Int, tlsExtra: String = "", betaExtra: String = "", quic: Bool = false
    ) async throws -> MixedSetup {
        try await makeCertificates(lab)
        let httpPort = try FreePort.find()
        let digests = try await lab.website(port: httpPort, randomMegabytes: ["big.bin": megabytes])
        let tlsPort = try FreePort.find()
        let wsPort = try FreePort.find()
        let proxyPort = try FreePort.find()
        try await startNginx(lab, port: proxyPort, upstream: wsPort)
        try lab.site(
            "alpha", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")],
            sockets: """
                  - mode: dedicated-address
                    listenAddress: 127.0.0.1
                    listenPort: \(tlsPort)
                \(tlsExtra)  - mode: dedicated-address
                    transportProtocol: websocket
                    listenAddress: 127.0.0.1
                    listenPort: \(wsPort)
                    publicUrl: wss://localhost:\(proxyPort)/weft
                \(quic ? "  - mode: dedicated-address\n    transportProtocol: quic\n    listenAddress: 127.0.0.1\n    listenPort: \(tlsPort)\n" : "")
                """)
        let webPort = try FreePort.find()
        try lab.site(
            "beta", remote: [SiteLab.remote("alpha", "web", "tcp:127.0.0.1:\(webPort)")],
            tunnelExtra: "  caFile: \(lab.path)/ca.pem\n", extra: betaExtra)
        try lab.start("alpha")
        try lab.start("beta")
        return MixedSetup(digests: digests, webPort: webPort, wsPort: wsPort, proxyPort: proxyPort)
    }

    @Test(
        "TLS, QUIC (on the TLS socket's port number, over UDP) and WebSocket links in one tunnel; nginx killed mid-transfer: the others carry the rest, then the WebSocket link returns"
    )
    func mixedLinksSurviveAProxyCut() async throws {
        let lab = try SiteLab()
        let setup = try await Self.mixedSites(lab, megabytes: 24, quic: true)
        let (digests, webPort, wsPort, proxyPort) = (setup.digests, setup.webPort, setup.wsPort, setup.proxyPort)
        #expect(await lab.waitForLink("beta", to: "alpha", count: 3), "\(lab.log("beta").suffix(3000))")
        #expect(lab.lines("beta", "link up", "transport=websocket").count == 1)
        #expect(lab.lines("beta", "link up", "transport=tls").count == 1)
        #expect(lab.lines("beta", "link up", "transport=quic").count == 1)

        let fetched = lab.path + "/fetched.bin"
        let transfer = try await lab.download(
            "http://127.0.0.1:\(webPort)/big.bin", to: fetched, rate: "4M", flowing: 4 << 20)
        // Cut the WebSocket path: nginx goes away with its connections.
        await lab.kill("nginx", signal: SIGTERM)
        #expect(await transfer.exited(within: .seconds(120)))
        #expect(transfer.exitCode == 0, "curl: \(lab.read("transfer.err"))")
        #expect(try await lab.sha256(ofFile: fetched) == digests["big.bin"])

        // nginx back: the WebSocket link is dialed again.
        try await Self.startNginx(lab, port: proxyPort, upstream: wsPort)
        #expect(
            await WeftProcess.waitFor(.seconds(90)) {
                lab.lines("beta", "link up", "transport=websocket").count >= 2
            }, "\(lab.log("beta").suffix(3000))")
        await lab.stop("beta", "alpha")
    }

    /// The tunnel to `peer` as beta's API shows it: each link's id, transport, role, blocked flag
    /// and bytes received.
    struct APILink: Decodable {
        var id: UInt32
        var transport: String
        var role: String
        var blocked: Bool
        var bytesReceived: UInt64
    }

    struct APITunnel: Decodable {
        var links: [APILink]
    }

    static func links(_ lab: SiteLab, api: Int, peer: String) async throws -> [APILink] {
        let out = try await lab.run(SiteLab.curl, ["-sS", "--fail", "http://127.0.0.1:\(api)/api/v1/tunnels/\(peer)"])
        return (try? JSONDecoder().decode(APITunnel.self, from: Data(out.stdout.utf8)).links) ?? []
    }

    @Test(
        "a backup link carries under 1 % beside its primary; blocking the primary moves data to it; the primary's proxy cut: it carries the rest"
    )
    func backupAndBlockedLinks() async throws {
        let lab = try SiteLab()
        let api = try FreePort.find()
        // alpha's TLS socket is the backup path (think: a metered LTE uplink).
        let setup = try await Self.mixedSites(
            lab, megabytes: 32, tlsExtra: "    role: backup\n",
            betaExtra: "restfulApi:\n  enabled: true\n  listenAddr: 127.0.0.1:\(api)\n")
        let (digests, webPort) = (setup.digests, setup.webPort)
        #expect(await lab.waitForLink("beta", to: "alpha", count: 2), "\(lab.log("beta").suffix(3000))")
        var links = try await Self.links(lab, api: api, peer: "alpha")
        let backup = try #require(links.first { $0.role == "backup" }, "links: \(links)")
        let primary = try #require(links.first { $0.role == "primary" }, "links: \(links)")
        #expect(backup.transport == "tls" && primary.transport == "websocket")

        let fetched = lab.path + "/fetched.bin"
        let transfer = try await lab.download(
            "http://127.0.0.1:\(webPort)/big.bin", to: fetched, rate: "4M", flowing: 8 << 20)
        links = try await Self.links(lab, api: api, peer: "alpha")
        let total = links.reduce(0) { $0 + $1.bytesReceived }
        let onBackup = links.first { $0.id == backup.id }?.bytesReceived ?? 0
        #expect(total > 8 << 20 && Double(onBackup) < 0.01 * Double(total), "per link: \(links)")

        // Block the primary (it stays up): the backup is all the tunnel has, and carries.
        let post = [
            "-sS", "-X", "POST", "-H", "Content-Type: application/json", "-o", "/dev/null", "-w", "%{http_code}",
        ]
        let blockURL = "http://127.0.0.1:\(api)/api/v1/tunnels/alpha/links/\(primary.id)/block"
        #expect(try await lab.run(SiteLab.curl, post + [blockURL]).stdout == "200")
        #expect(
            try await lab.run(SiteLab.curl, post + ["http://127.0.0.1:\(api)/api/v1/tunnels/alpha/links/999/block"])
                .stdout == "404")
        #expect(
            try await lab.run(SiteLab.curl, post + ["http://127.0.0.1:\(api)/api/v1/tunnels/alpha/links/x/block"])
                .stdout == "400")
        let movedToBackup = await WeftProcess.waitFor(.seconds(60)) {
            let now = (try? await Self.links(lab, api: api, peer: "alpha")) ?? []
            return (now.first { $0.id == backup.id }?.bytesReceived ?? 0) > onBackup + (2 << 20)
                && now.first { $0.id == primary.id }?.blocked == true
        }
        let afterBlock = try await Self.links(lab, api: api, peer: "alpha")
        #expect(movedToBackup, "\(afterBlock)")
        // Unblocked, and then its proxy cut: the backup carries the rest, nothing lost.
        #expect(
            try await lab.run(SiteLab.curl, post + [blockURL.replacingOccurrences(of: "/block", with: "/unblock")])
                .stdout == "200")
        await lab.kill("nginx", signal: SIGTERM)
        #expect(await transfer.exited(within: .seconds(120)))
        #expect(transfer.exitCode == 0, "curl: \(lab.read("transfer.err"))")
        #expect(try await lab.sha256(ofFile: fetched) == digests["big.bin"])
        #expect(!lab.lines("beta", "link blocked").isEmpty && !lab.lines("beta", "link unblocked").isEmpty)
        await lab.stop("beta", "alpha")
    }
}
