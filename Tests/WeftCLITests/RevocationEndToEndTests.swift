import Foundation
import Testing
import WeftTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `weft trust revoke` on real sites: hq revokes a member, and a site that takes hq's
/// revocations (`crypto.revokers: [hq]`) drops it within seconds; a member that is not a
/// revoker cannot revoke anyone; lifting the revocation lets the member back.
@Suite(
    "revocation end to end", .serialized, .enabled(if: SiteLab.isAvailable, "\(SiteLab.missing)"),
    .timeLimit(.minutes(10)))
struct RevocationEndToEndTests {
    @Test(
        "hq revokes a member: hq and the sites that take its revocations drop it, its tunnel and its links; a rogue cannot"
    )
    func revokeAndLift() async throws {
        let lab = try SiteLab()
        let hqHTTP = try FreePort.find()
        let gammaHTTP = try FreePort.find()
        let viaGamma = try FreePort.find()
        try await lab.website("hq-www", port: hqHTTP, files: ["who.txt": "hq\n"])
        try await lab.website("gamma-www", port: gammaHTTP, files: ["who.txt": "gamma\n"])
        try lab.site("hq", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(hqHTTP)")])
        try lab.site("gamma", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(gammaHTTP)")])
        // A revoker must be pinned: hq's identity is made first and its fingerprint pinned at gamma.
        let hqIdentity = try await WeftProcess.run(["identity", "--config", lab.configs["hq"]!])
        let hqFingerprint = hqIdentity.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hqFingerprint.hasPrefix("sha256:"), "\(hqIdentity)")
        _ = try lab.write(
            "gamma.yaml",
            lab.read("gamma.yaml").replacingOccurrences(
                of: "crypto:\n",
                with:
                    "crypto:\n  revokers: [hq]\n  pinnedSites:\n  - {siteName: hq, fingerprint: \"\(hqFingerprint)\"}\n"
            ))
        try lab.site(
            "member",
            remote: [
                SiteLab.remote("hq", "web", "tcp:127.0.0.1:\(try FreePort.find())"),
                SiteLab.remote("gamma", "web", "tcp:127.0.0.1:\(viaGamma)"),
            ])
        try lab.site("rogue")
        let sites = ["hq", "gamma", "member", "rogue"]
        for site in sites { try lab.start(site) }
        func up(_ site: String, _ peer: String) -> Int { lab.lines(site, "peer up", "peer=\(peer)").count }
        let formed = await WeftProcess.waitFor(.seconds(60)) {
            sites.allSatisfy { site in sites.allSatisfy { $0 == site || up(site, $0) >= 1 } }
                && !lab.lines("member", "link up", "peer=gamma").isEmpty
        }
        #expect(formed, "\(lab.log("member").suffix(3000))")
        let before = try await lab.run(SiteLab.curl, ["-sS", "--fail", "http://127.0.0.1:\(viaGamma)/who.txt"])
        #expect(before.status == 0 && before.stdout.contains("gamma"), "\(before)")

        // A member that is not a revoker revokes gamma: announced, and applied nowhere else.
        let rogue = try await WeftProcess.run(["trust", "revoke", "--config", lab.configs["rogue"]!, "gamma"])
        #expect(rogue.status == 0 && rogue.output.contains("revoked sha256:"), "\(rogue)")
        lab.processes["rogue"]!.signal(SIGHUP)
        let ignored = await WeftProcess.waitFor(.seconds(60)) {
            ["hq", "gamma", "member"].allSatisfy {
                !lab.lines($0, "not applying revocations", "site=rogue").isEmpty
            }
        }
        #expect(ignored, "\(lab.log("hq").suffix(2000))")
        // rogue applies its own revocation when it reloads: an event of its own, waited for.
        let rogueDropped = await WeftProcess.waitFor(.seconds(60)) {
            !lab.lines("rogue", "peer down", "peer=gamma", "reason=revoked").isEmpty
        }
        #expect(rogueDropped, "rogue itself drops gamma: \(lab.log("rogue").suffix(2000))")

        // hq revokes the member.
        let revoke = try await WeftProcess.run(["trust", "revoke", "--config", lab.configs["hq"]!, "member"])
        #expect(revoke.status == 0, "\(revoke)")
        lab.processes["hq"]!.signal(SIGHUP)
        let clock = ContinuousClock()
        let start = clock.now
        let dropped = await WeftProcess.waitFor(.seconds(60)) {
            !lab.lines("hq", "peer down", "peer=member", "reason=revoked").isEmpty
                && !lab.lines("gamma", "peer down", "peer=member", "reason=revoked").isEmpty
        }
        #expect(dropped, "\(lab.log("gamma").suffix(3000))")
        print("revocation: the member was dropped at gamma \(clock.now - start) after hq's SIGHUP")
        let tunnelClosed = await WeftProcess.waitFor(.seconds(60)) { !lab.lines("gamma", "member was revoked").isEmpty }
        #expect(tunnelClosed, "gamma closes the member's tunnel")
        // Its clients reach gamma no more: its links are refused there.
        let after = try await lab.run(
            SiteLab.curl, ["-sS", "--fail", "--max-time", "15", "http://127.0.0.1:\(viaGamma)/who.txt"])
        #expect(after.status != 0, "a revoked member still reached gamma: \(after)")
        let stored = lab.read("gamma-state/revoked-peers.json")
        #expect(stored.contains("\"revokedBy\" : \"hq\"") && stored.contains("\"siteName\" : \"member\""), "\(stored)")
        let listed = try await WeftProcess.run(["trust", "list", "--config", lab.configs["gamma"]!])
        #expect(listed.output.contains("member  revoked by hq"), "\(listed)")
        // The rogue member is still a member everywhere, and gamma still serves hq.
        for site in ["hq", "gamma", "member"] {
            #expect(
                lab.lines(site, "peer down", "peer=rogue").isEmpty && lab.lines(site, "peer down", "peer=gamma").isEmpty
            )
        }

        // hq lifts it: the member is back at gamma without waiting for its next refresh.
        let upBefore = (gamma: up("gamma", "member"), hq: up("hq", "member"))
        let lift = try await WeftProcess.run(["trust", "unrevoke", "--config", lab.configs["hq"]!, "member"])
        #expect(lift.status == 0, "\(lift)")
        lab.processes["hq"]!.signal(SIGHUP)
        let back = await WeftProcess.waitFor(.seconds(60)) {
            up("gamma", "member") > upBefore.gamma && up("hq", "member") > upBefore.hq
        }
        #expect(back, "\(lab.log("gamma").suffix(3000))")
        let served = await WeftProcess.waitFor(.seconds(120)) {
            let again = try? await lab.run(
                SiteLab.curl, ["-sS", "--fail", "--max-time", "10", "http://127.0.0.1:\(viaGamma)/who.txt"])
            return again?.status == 0 && again?.stdout.contains("gamma") == true
        }
        #expect(served, "\(lab.log("member").suffix(3000))")
        await lab.stop("hq", "gamma", "member", "rogue")
    }
}
