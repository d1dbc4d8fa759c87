import Foundation
import Testing
import WeftTestSupport

/// Three `weft` processes on loopback: a relay site with `tunnel.relay: true` and a link
/// listener, and two sites with no listener at all (nobody can dial them, as behind NAT). The
/// site using the other's app reaches it through the relay: a relayed link, its TLS inside a
/// stream of each site's tunnel to the relay.
@Suite(
    "relayed links end to end", .serialized, .enabled(if: SiteLab.isAvailable, "\(SiteLab.missing)"),
    .timeLimit(.minutes(10)))
struct RelayEndToEndTests {
    @Test("two sites nobody can dial reach an HTTP app through a relay; the relay says what it carried")
    func relayedApp() async throws {
        let lab = try SiteLab()
        let httpPort = try FreePort.find()
        let webPort = try FreePort.find()
        let digest = try await lab.website(port: httpPort, randomMegabytes: ["blob.bin": 16])["blob.bin"]
        try lab.site("relay", tunnelExtra: "  relay: true\n")
        try lab.site("beta", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")], sockets: "")
        try lab.site("alpha", remote: [SiteLab.remote("beta", "web", "tcp:127.0.0.1:\(webPort)")], sockets: "")
        try lab.start("relay")
        try lab.start("beta")
        try lab.start("alpha")
        // Both keep a tunnel to the relay; alpha's link to beta is relayed.
        #expect(await lab.waitForLink("beta", to: "relay"), "\(lab.log("beta"))")
        #expect(await lab.waitForLink("alpha", to: "beta"), "\(lab.log("alpha"))")
        let up = lab.lines("alpha", "link up", "peer=beta")
        #expect(up.contains { $0.contains("transport=relay") && $0.contains("via relay") }, "\(up)")

        let fetched = lab.path + "/fetched.bin"
        let curl = try await lab.run(
            SiteLab.curl, ["-sS", "--fail", "-o", fetched, "http://127.0.0.1:\(webPort)/blob.bin"],
            timeout: .seconds(300))
        #expect(curl.status == 0, "\(curl.stderr)")
        let fetchedDigest = try await lab.sha256(ofFile: fetched)
        #expect(digest != nil && fetchedDigest == digest)
        #expect(!lab.lines("relay", "relaying a link", "from=alpha", "to=beta").isEmpty, "\(lab.log("relay"))")
        await lab.stop("alpha", "beta", "relay")
    }

    @Test("a site that does not relay refuses, with its reason in the asking site's log")
    func notARelay() async throws {
        let lab = try SiteLab()
        let httpPort = try FreePort.find()
        let webPort = try FreePort.find()
        try await lab.website(port: httpPort, files: ["index.html": "hello\n"])
        // `hub` is reachable but does not relay (and does not announce that it would).
        try lab.site("hub")
        try lab.site("beta", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")], sockets: "")
        try lab.site("alpha", remote: [SiteLab.remote("beta", "web", "tcp:127.0.0.1:\(webPort)")], sockets: "")
        try lab.start("hub")
        try lab.start("beta")
        try lab.start("alpha")
        // Nobody relays: alpha says it has nothing to dial for beta and waits, no relayed link.
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                !lab.lines("alpha", "peer announces no endpoint to dial", "peer=beta").isEmpty
            }, "\(lab.log("alpha"))")
        #expect(lab.lines("alpha", "link up", "peer=beta").isEmpty)
        await lab.stop("alpha", "beta", "hub")
    }
}
