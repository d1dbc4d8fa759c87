import Foundation
import Testing
import WeftTestSupport

/// The dashboard's app forms, clicked through in headless Chromium against two real sites: an
/// exposed app added at one, a remote app added at the other (each first refused at its field
/// for a bad socket), a real HTTP request through it, its traffic shown, an edit that moves its
/// socket, and its removal.
@Suite(.serialized)
struct DashboardAppsEndToEndTests {
    typealias Operations = OperationsEndToEndTests

    /// Runs `steps` on a dashboard; the screenshots go to `.build/test-artifacts` for a look.
    static func drive(_ lab: SiteLab, _ url: String, _ name: String, _ steps: [[String: Any]]) async throws {
        let file = lab.path + "/\(name).steps.json"
        try JSONSerialization.data(withJSONObject: steps, options: [.prettyPrinted]).write(
            to: URL(fileURLWithPath: file))
        let run = try await lab.run(
            "/usr/bin/env",
            [
                "python3", Operations.repository + "/scripts/dashboard-check.py", url, "--screenshot",
                lab.path + "/\(name).png", "--steps", file, "--allow-status", "400", "--wait", "2",
            ], timeout: .seconds(300))
        print("dashboard apps: \(name):\n\(run.stdout)")
        #expect(run.status == 0, "\(name): \(run)")
        let kept = Operations.repository + "/.build/test-artifacts"
        try? FileManager.default.createDirectory(atPath: kept, withIntermediateDirectories: true)
        for shot in (try? FileManager.default.contentsOfDirectory(atPath: lab.path)) ?? [] where shot.hasSuffix(".png")
        {
            try? FileManager.default.removeItem(atPath: kept + "/dashboard-" + shot)
            try? FileManager.default.copyItem(atPath: lab.path + "/" + shot, toPath: kept + "/dashboard-" + shot)
        }
    }

    @Test(
        "dashboard: apps added (a bad socket refused at its field), carrying HTTP, edited and removed by clicks",
        .enabled(
            if: TestEnvironment.runs(needing: Operations.chromium),
            "\(Operations.chromium) is not installed (scripts/install-deps.sh installs it)"))
    func appsFromTheDashboard() async throws {
        let lab = try SiteLab()
        let (httpPort, alphaAPI, betaAPI) = (try FreePort.find(), try FreePort.find(), try FreePort.find())
        let (clientPort, movedPort) = (try FreePort.find(), try FreePort.find())
        try await lab.website(port: httpPort, files: ["hello.txt": "hello through the dashboard\n"])
        try lab.site("alpha", extra: Operations.api(alphaAPI, auth: false))
        try lab.site("beta", extra: Operations.api(betaAPI, auth: false))
        try lab.start("alpha")
        try lab.start("beta")
        let shots = lab.path
        #expect(
            await WeftProcess.waitFor(.seconds(60)) { FreePort.accepts(alphaAPI) && FreePort.accepts(betaAPI) },
            "the APIs never listened: \(lab.log("alpha"))")

        // alpha exposes its web server: a socket without a port is refused at its field first.
        try await Self.drive(
            lab, "http://127.0.0.1:\(alphaAPI)/", "alpha-expose",
            [
                ["waitText": "beta", "in": "#sites", "timeout": 60],
                ["click": "#exposed-add"],
                ["waitFocus": "#ex-appName"],
                ["fill": "#ex-appName", "text": "web"],
                ["fill": "#ex-appSocket", "text": "tcp:127.0.0.1"],
                ["click": "#exposed-form button[type=submit]"],
                ["waitFor": "#exposed-form .field.invalid[data-field=appSocket]"],
                ["waitFocus": "#ex-appSocket"],
                ["screenshot": shots + "/1-exposed-field-error.png"],
                ["fill": "#ex-appSocket", "text": "tcp:127.0.0.1:\(httpPort)"],
                ["click": "#exposed-form button[type=submit]"],
                ["waitText": "tcp:127.0.0.1:\(httpPort)", "in": "#exposed"],
                ["waitText": "Added the exposed app web", "in": "#notice"],
                ["screenshot": shots + "/2-exposed-added.png"],
                // Edited: only beta may use it now.
                ["click": "#exposed tr[data-app='web'] button[data-action=edit]"],
                ["waitText": "Edit the exposed app web", "in": "#exposed-form"],
                ["fill": "#ex-allowedSites", "text": "beta"],
                ["click": "#exposed-form button[type=submit]"],
                ["waitText": "Saved the exposed app web", "in": "#notice"],
                ["waitGone": "every site", "in": "#exposed tr[data-app='web']"],
            ])
        let exposed = try await Operations.http(lab, "GET", "http://127.0.0.1:\(alphaAPI)/api/v1/localExposedApps")
        #expect(
            exposed.body.contains("\"appName\":\"web\"") && exposed.body.contains("\"source\":\"api\""), "\(exposed)")
        #expect(exposed.body.contains("\"allowedSites\":[\"beta\"]"), "\(exposed)")
        #expect(lab.log("alpha").contains("exposed app changed"), "\(lab.log("alpha"))")

        // beta uses it: an out-of-range port is refused at the local socket's field, then fixed.
        try await Self.drive(
            lab, "http://127.0.0.1:\(betaAPI)/", "beta-use",
            [
                ["waitText": "web", "in": "#sites", "timeout": 60],
                ["click": "#remote-add"],
                ["fill": "#re-siteName", "text": "alpha"],
                ["fill": "#re-appName", "text": "web"],
                ["fill": "#re-localSocket", "text": "tcp:127.0.0.1:99999"],
                ["click": "#remote-form button[type=submit]"],
                ["waitFor": "#remote-form .field.invalid[data-field=localSocket]"],
                ["screenshot": shots + "/3-remote-field-error.png"],
                ["fill": "#re-localSocket", "text": "tcp:127.0.0.1:\(clientPort)"],
                ["click": "#remote-form button[type=submit]"],
                ["waitText": "tcp:127.0.0.1:\(clientPort)", "in": "#remote"],
                ["screenshot": shots + "/4-remote-added.png"],
            ])
        let first = try await Operations.http(lab, "GET", "http://127.0.0.1:\(clientPort)/hello.txt")
        #expect(first.status == 200 && first.body == "hello through the dashboard\n", "\(first)\n\(lab.log("beta"))")
        // alpha counted the stream and the answer it sent into the tunnel.
        let served = try await Operations.http(lab, "GET", "http://127.0.0.1:\(alphaAPI)/api/v1/localExposedApps/web")
        let traffic = (Operations.json(served.body) as? [String: Any])?["traffic"] as? [String: Any]
        #expect(traffic?["streams"] as? Int == 1, "\(served.body)")
        #expect((traffic?["bytesSent"] as? Int ?? 0) > first.body.utf8.count, "\(served.body)")
        #expect((traffic?["bytesReceived"] as? Int ?? 0) > 0, "\(served.body)")

        // Its traffic shows in the row; an edit moves the local socket.
        try await Self.drive(
            lab, "http://127.0.0.1:\(betaAPI)/", "beta-edit",
            [
                ["waitText": "0 / 1", "in": "#remote tr[data-app='alpha/web']", "timeout": 30],
                ["screenshot": shots + "/5-remote-traffic.png"],
                ["click": "#remote tr[data-app='alpha/web'] button[data-action=edit]"],
                ["waitText": "Edit the remote app alpha/web", "in": "#remote-form"],
                ["fill": "#re-localSocket", "text": "tcp:127.0.0.1:\(movedPort)"],
                ["click": "#remote-form button[type=submit]"],
                ["waitText": "tcp:127.0.0.1:\(movedPort)", "in": "#remote"],
                ["waitGone": "tcp:127.0.0.1:\(clientPort)", "in": "#remote"],
                ["screenshot": shots + "/6-remote-edited.png"],
            ])
        let moved = try await Operations.http(lab, "GET", "http://127.0.0.1:\(movedPort)/hello.txt")
        #expect(moved.status == 200 && moved.body == "hello through the dashboard\n", "\(moved)")
        #expect(!FreePort.accepts(clientPort), "the old local socket still listens after the edit")

        // Removed: one click arms the button, the second removes the app.
        try await Self.drive(
            lab, "http://127.0.0.1:\(betaAPI)/", "beta-remove",
            [
                ["click": "#remote tr[data-app='alpha/web'] button[data-action=remove]"],
                ["waitText": "Confirm remove", "in": "#remote tr[data-app='alpha/web']"],
                ["click": "#remote tr[data-app='alpha/web'] button[data-action=remove]"],
                ["waitGone": "alpha", "in": "#remote"],
                ["waitText": "Removed the remote app alpha/web", "in": "#notice"],
                ["screenshot": shots + "/7-remote-removed.png"],
            ])
        #expect(!FreePort.accepts(movedPort), "the removed app's local socket still listens")
        let remote = try await Operations.http(lab, "GET", "http://127.0.0.1:\(betaAPI)/api/v1/remoteApps")
        #expect(
            remote.status == 200 && remote.body.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(remote)")
        // Each step changed the page: no two screenshots are the same picture.
        let pictures = try (1...7).map { n in
            let name = try FileManager.default.contentsOfDirectory(atPath: shots).first { $0.hasPrefix("\(n)-") }
            return try Data(contentsOf: URL(fileURLWithPath: shots + "/" + (name ?? "missing")))
        }
        #expect(Set(pictures).count == pictures.count, "two steps left the same picture")
        #expect(lab.log("beta").contains("remote app added") && lab.log("beta").contains("remote app changed"))
        #expect(lab.log("beta").contains("remote app removed"))
        await lab.stop("alpha", "beta")
    }
}
