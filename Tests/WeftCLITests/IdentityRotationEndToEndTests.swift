import Foundation
import Testing
import WeftTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `weft identity --rotate` on real sites: the peer re-pins the endorsed identity, its clients
/// reach the app again; a site that only claims the name with a fresh identity is refused.
@Suite(
    "identity rotation end to end", .serialized, .enabled(if: SiteLab.isAvailable, "\(SiteLab.missing)"),
    .timeLimit(.minutes(10)))
struct IdentityRotationEndToEndTests {
    @Test("alpha rotates its identity and restarts: beta re-pins it and serves through it; a fresh claimant is refused")
    func rotateAndRestart() async throws {
        let lab = try SiteLab()
        let httpPort = try FreePort.find()
        let webPort = try FreePort.find()
        try await lab.website(port: httpPort, files: ["who.txt": "alpha\n"])
        try lab.site("alpha", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")])
        try lab.site("beta", remote: [SiteLab.remote("alpha", "web", "tcp:127.0.0.1:\(webPort)")])
        try lab.start("alpha")
        try lab.start("beta")
        #expect(await lab.waitForLink("beta", to: "alpha"), "\(lab.log("beta"))")
        let before = try await WeftProcess.run(["identity", "--config", lab.configs["alpha"]!])
        let oldFingerprint = before.output.trimmingCharacters(in: .whitespacesAndNewlines)

        let rotated = try await WeftProcess.run(["identity", "--rotate", "--config", lab.configs["alpha"]!])
        #expect(rotated.status == 0 && rotated.error.contains("endorses"), "\(rotated)")
        let newFingerprint = rotated.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(newFingerprint.hasPrefix("sha256:") && newFingerprint != oldFingerprint)
        let verbose = try await WeftProcess.run(["identity", "--verbose", "--config", lab.configs["alpha"]!])
        #expect(verbose.output.contains(newFingerprint) && verbose.output.contains("expires:"), "\(verbose)")

        await lab.stop("alpha")
        try lab.start("alpha")
        let repinned = await WeftProcess.waitFor(.seconds(60)) {
            !lab.lines("beta", "re-pinned a site", "peer=alpha", "to=\(newFingerprint)").isEmpty
        }
        #expect(repinned, "\(lab.log("beta").suffix(3000))")
        #expect(!lab.lines("alpha", "loaded site identity", "endorsedBy=\(oldFingerprint)").isEmpty)
        let served = await WeftProcess.waitFor(.seconds(60)) {
            let out = try? await lab.run(
                SiteLab.curl, ["-sS", "--fail", "--max-time", "10", "http://127.0.0.1:\(webPort)/who.txt"])
            return out?.status == 0 && out?.stdout.contains("alpha") == true
        }
        #expect(served, "\(lab.log("beta").suffix(3000))")
        let pins = try await WeftProcess.run(["trust", "list", "--config", lab.configs["beta"]!])
        #expect(pins.output.contains("\(newFingerprint)  alpha"), "\(pins)")

        // Someone else with a fresh identity and no endorsement claims alpha's name: refused.
        try lab.site("alpha-claimant", extra: "")
        _ = try lab.write(
            "alpha-claimant.yaml",
            lab.read("alpha-claimant.yaml").replacingOccurrences(
                of: "siteName: alpha-claimant", with: "siteName: alpha"))
        try lab.start("alpha-claimant")
        let refused = await WeftProcess.waitFor(.seconds(60)) {
            !lab.lines("beta", "dropped a message", "reason=impostor", "claimedSender=alpha").isEmpty
        }
        #expect(refused, "\(lab.log("beta").suffix(3000))")
        #expect(lab.lines("beta", "re-pinned a site").count == 1)
        await lab.stop("alpha", "beta", "alpha-claimant")
    }
}
