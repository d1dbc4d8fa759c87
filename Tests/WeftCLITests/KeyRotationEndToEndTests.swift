import Foundation
import Testing
import WeftTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A mesh key rotated the way an operator does it: every site in turn takes the new key and
/// keeps the old one in `crypto.previousKeys` (SIGHUP), then every site in turn drops the old
/// key (SIGHUP), all while an app transfer crosses the mesh.
@Suite(
    "mesh key rotation end to end", .serialized, .enabled(if: SiteLab.isAvailable, "\(SiteLab.missing)"),
    .timeLimit(.minutes(10)))
struct KeyRotationEndToEndTests {
    static let oldKey = "lab-mesh-key"
    static let newKey = "lab-mesh-key-rotated"

    @Test("three sites rotate the mesh key one at a time with a transfer running: no peer, tunnel or byte drops")
    func rotateThreeSites() async throws {
        let lab = try SiteLab()
        let httpPort = try FreePort.find()
        let betaPort = try FreePort.find()
        let gammaPort = try FreePort.find()
        let digest = try await lab.website(port: httpPort, randomMegabytes: ["big.bin": 40])["big.bin"]
        try lab.site("alpha", key: Self.oldKey, exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")])
        try lab.site("beta", key: Self.oldKey, remote: [SiteLab.remote("alpha", "web", "tcp:127.0.0.1:\(betaPort)")])
        try lab.site(
            "gamma", key: Self.oldKey, remote: [SiteLab.remote("alpha", "web", "tcp:127.0.0.1:\(gammaPort)")])
        let sites = ["alpha", "beta", "gamma"]
        for site in sites { try lab.start(site) }
        func peersUp(_ site: String) -> Set<String> {
            Set(sites.filter { $0 != site && !lab.lines(site, "peer up", "peer=\($0)").isEmpty })
        }
        let formed = await WeftProcess.waitFor(.seconds(60)) {
            sites.allSatisfy { peersUp($0).count == 2 } && !lab.lines("beta", "link up", "peer=alpha").isEmpty
                && !lab.lines("gamma", "link up", "peer=alpha").isEmpty
        }
        #expect(formed, "\(sites.map { ($0, peersUp($0)) })")

        // About 20 s through beta's tunnel to alpha; the rotation starts once bytes flow.
        let fetched = lab.path + "/fetched.bin"
        let transfer = try await lab.download(
            "http://127.0.0.1:\(betaPort)/big.bin", to: fetched, rate: "2M", flowing: 2 << 20)
        #expect(transfer.isRunning, "the transfer ended before the rotation")

        /// Rewrites a site's key lines, sends SIGHUP and waits for the reload and for the message
        /// channel to come back under the new keys.
        func rekey(_ site: String, previous: Bool, expecting summary: String) async {
            let reloads = lab.lines(site, "configuration reloaded").count
            let connects = lab.lines(site, "message channel connected").count
            let text = lab.read("\(site).yaml")
            let keyLines = try? #require(
                text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex {
                    $0.hasPrefix("  key: ")
                })
            guard let keyLines else { return }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            lines.removeAll { $0.hasPrefix("  previousKeys:") }
            lines[keyLines] = "  key: \"\(Self.newKey)\""
            if previous { lines.insert("  previousKeys: [\"\(Self.oldKey)\"]", at: keyLines + 1) }
            _ = try? lab.write("\(site).yaml", lines.joined(separator: "\n"))
            lab.processes[site]!.signal(SIGHUP)
            let done = await WeftProcess.waitFor(.seconds(60)) {
                lab.lines(site, "configuration reloaded").count > reloads
                    && lab.lines(site, "message channel connected").count > connects
            }
            #expect(done, "\(site) did not reload: \(lab.log(site).suffix(3000))")
            let reloaded = lab.lines(site, "configuration reloaded").last ?? ""
            #expect(
                reloaded.contains("mesh keys: \(summary)") && !reloaded.contains("restart"), "\(site): \(reloaded)")
        }
        for site in sites { await rekey(site, previous: true, expecting: "new key, 1 previous") }
        for site in sites { await rekey(site, previous: false, expecting: "same key, 0 previous") }
        print("key rotation: transfer still running after the six reloads: \(transfer.isRunning)")

        // A site that only ever had the new key sees the whole mesh: each site announces under it.
        try lab.site("delta", key: Self.newKey)
        try lab.start("delta")
        #expect(
            await WeftProcess.waitFor(.seconds(60)) { peersUp("delta").count == 3 },
            "delta sees \(peersUp("delta")): \(lab.log("delta").suffix(3000))")

        #expect(await transfer.exited(within: .seconds(120)), "the transfer did not finish")
        #expect(transfer.exitCode == 0, "\(lab.read("transfer.err"))")
        #expect(try await lab.sha256(ofFile: fetched) == digest, "the transfer's bytes changed")
        // gamma's tunnel still carries a request after the rotation.
        let after = try await lab.run(
            SiteLab.curl, ["-sS", "--fail", "-o", "/dev/null", "http://127.0.0.1:\(gammaPort)/big.bin"])
        #expect(after.status == 0, "\(after)")
        for site in sites {
            #expect(lab.lines(site, "peer down").isEmpty, "\(site): \(lab.lines(site, "peer down"))")
            #expect(lab.lines(site, "closing tunnel").isEmpty, "\(site): \(lab.lines(site, "closing tunnel"))")
            #expect(lab.lines(site, "stream reset").isEmpty, "\(site): \(lab.lines(site, "stream reset"))")
        }
        #expect(lab.lines("beta", "tunnel created").count == 1 && lab.lines("gamma", "tunnel created").count == 1)
        await lab.stop("alpha", "beta", "gamma", "delta")
    }
}
