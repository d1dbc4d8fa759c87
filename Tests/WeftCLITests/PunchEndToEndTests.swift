import Foundation
import Testing
import WeftTestSupport

/// Two `weft` processes on loopback, each with only a `nat-traversal` QUIC socket and coturn
/// as their STUN server: neither announces an address to dial, so their link can only come
/// from a rendezvous, probes and a QUIC dial from the very socket STUN saw. (Real NATs are the
/// NAT lab's, `scripts/lab-nat.sh`; here the "mapping" is the socket's own address.)
@Suite(
    "hole-punched links end to end", .serialized, .enabled(if: SiteLab.isAvailable, "\(SiteLab.missing)"),
    .timeLimit(.minutes(10)))
struct PunchEndToEndTests {
    static func punchSocket(port: Int, stun: Int) -> String {
        """
              - mode: nat-traversal
                transportProtocol: quic
                listenAddress: 127.0.0.1
                listenPort: \(port)
                stunServer: 127.0.0.1:\(stun)

        """
    }

    @Test("two sites with only nat-traversal sockets link by punching and carry an HTTP transfer whole")
    func punchedApp() async throws {
        let lab = try SiteLab()
        let stunPort = try FreePort.find()
        try await lab.stunServer("stun", port: stunPort)
        let httpPort = try FreePort.find()
        let webPort = try FreePort.find()
        let digest = try await lab.website(port: httpPort, randomMegabytes: ["blob.bin": 16])["blob.bin"]
        try lab.site(
            "beta", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")],
            sockets: Self.punchSocket(port: try FreePort.find(), stun: stunPort))
        try lab.site(
            "alpha", remote: [SiteLab.remote("beta", "web", "tcp:127.0.0.1:\(webPort)")],
            sockets: Self.punchSocket(port: try FreePort.find(), stun: stunPort))
        try lab.start("beta")
        try lab.start("alpha")
        #expect(await lab.waitForLink("alpha", to: "beta"), "\(lab.log("alpha"))\n\(lab.log("beta"))")
        // beta logs the link it accepted a moment after alpha logs the one it dialed.
        #expect(await lab.waitForLink("beta", to: "alpha"), "\(lab.log("beta"))")
        // alpha sorts first: it dials once a probe of beta's came through.
        #expect(!lab.lines("alpha", "NAT mapping of the QUIC socket learned").isEmpty, "\(lab.log("alpha"))")
        // The puncher says so once its dial returns, a moment after the tunnel logged the link.
        #expect(
            await WeftProcess.waitFor(.seconds(60)) { !lab.lines("alpha", "punched link up", "peer=beta").isEmpty },
            "\(lab.log("alpha"))")
        let up = lab.lines("beta", "link up", "peer=alpha")
        #expect(up.contains { $0.contains("transport=quic") && $0.contains("path=punched") }, "\(up)")
        let dialed = lab.lines("alpha", "link up", "peer=beta")
        #expect(dialed.contains { $0.contains("path=punched") }, "\(dialed)")

        let fetched = lab.path + "/fetched.bin"
        let curl = try await lab.run(
            SiteLab.curl, ["-sS", "--fail", "-o", fetched, "http://127.0.0.1:\(webPort)/blob.bin"],
            timeout: .seconds(300))
        #expect(curl.status == 0, "\(curl.stderr)")
        let fetchedDigest = try await lab.sha256(ofFile: fetched)
        #expect(digest != nil && fetchedDigest == digest)
        await lab.stop("alpha", "beta")
    }

    @Test("no endpoint either way, no punching, no relay: the log and status say so, and clients are refused")
    func noPath() async throws {
        let lab = try SiteLab()
        let httpPort = try FreePort.find()
        let webPort = try FreePort.find()
        let api = try FreePort.find()
        try await lab.website(port: httpPort, randomMegabytes: ["blob.bin": 1])
        // Neither site listens for links: nobody can dial anybody.
        try lab.site("beta", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")], sockets: "    []\n")
        try lab.site(
            "alpha", remote: [SiteLab.remote("beta", "web", "tcp:127.0.0.1:\(webPort)")], sockets: "    []\n",
            extra: OperationsEndToEndTests.api(api, auth: false))
        try lab.start("beta")
        try lab.start("alpha")
        let reason = "no path to beta: no endpoint, no punching (this site has no nat-traversal socket), no relay"
        #expect(
            await WeftProcess.waitFor(.seconds(60)) { !lab.lines("alpha", "no path to a site", reason).isEmpty },
            "\(lab.log("alpha"))")

        let status = try await lab.run(WeftProcess.executable, ["status", "--api", "http://127.0.0.1:\(api)"])
        #expect(status.status == 0 && status.stdout.contains(reason), "\(status)")
        #expect(status.stdout.contains("no path"), "\(status.stdout)")

        // A client is refused at once (a reset), with the reason in the log, not after the
        // connect timeout.
        let started = ContinuousClock.now
        let curl = try await lab.run(SiteLab.curl, ["-sS", "http://127.0.0.1:\(webPort)/blob.bin"])
        print("no path: curl refused after \(ContinuousClock.now - started): \(curl.stderr)")
        #expect(curl.status != 0, "\(curl)")
        #expect(!lab.lines("alpha", "refused a client: no path to the site", reason).isEmpty, "\(lab.log("alpha"))")
        #expect(lab.lines("alpha", "no tunnel to the site in time").isEmpty)
        await lab.stop("alpha", "beta")
    }
}
