import Foundation
import Testing
import WeftTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The terminal multiplexer the test drives `weft top` in.
enum TerminalTools {
    static let tmux = "/usr/bin/tmux"
}

/// `weft top` on a real terminal: tmux gives it one (a pane), types its keys and shows its
/// screen, while two sites carry a transfer.
@Suite(
    "weft top under tmux", .serialized,
    .enabled(
        if: SiteLab.isAvailable && TestEnvironment.runs(needing: TerminalTools.tmux), "\(SiteLab.missing), and tmux"),
    .timeLimit(.minutes(10)))
struct TopEndToEndTests {
    /// tmux on a server of the lab's own, with a terminal type it knows.
    static func runTmux(_ lab: SiteLab, _ arguments: [String]) async throws -> ChildProcess.Output {
        var environment = ProcessInfo.processInfo.environment
        environment["TERM"] = "xterm-256color"
        return try await ChildProcess.run(
            TerminalTools.tmux, ["-S", lab.path + "/tmux.sock"] + arguments, environment: environment,
            timeout: .seconds(30))
    }

    static func screen(_ lab: SiteLab) async -> String {
        (try? await runTmux(lab, ["capture-pane", "-p", "-t", "top"]))?.stdout ?? ""
    }

    @Test(
        "a live view of a transfer: the peer's received rate, its links, the sort key, q quits; piped, it prints the status"
    )
    func liveView() async throws {
        let lab = try SiteLab()
        let httpPort = try FreePort.find()
        try await lab.website(port: httpPort, randomMegabytes: ["big.bin": 64])
        let webPort = try FreePort.find()
        let apiPort = try FreePort.find()
        try lab.site("alpha", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")])
        try lab.site(
            "beta", remote: [SiteLab.remote("alpha", "web", "tcp:127.0.0.1:\(webPort)")],
            extra: "restfulApi:\n  enabled: true\n  listenAddr: 127.0.0.1:\(apiPort)\n")
        try lab.start("alpha")
        try lab.start("beta")
        #expect(await lab.waitForLink("beta", to: "alpha"), "no link: \(lab.log("beta").suffix(3000))")
        let file = lab.path + "/big.bin"
        let transfer = try await lab.download(
            "http://127.0.0.1:\(webPort)/big.bin", to: file, rate: "1M", flowing: 1 << 20)

        let command = "exec '\(WeftProcess.executable)' top --config '\(lab.configs["beta"]!)'"
        let started = try await Self.runTmux(lab, ["new-session", "-d", "-s", "top", "-x", "160", "-y", "45", command])
        #expect(started.status == 0, "\(started.stderr)")
        // beta receives about 8 Mbit/s from alpha (curl's average; it comes in bursts): its row shows a received rate in Mbit/s,
        // and the links of alpha are listed.
        var screen = ""
        let live = await WeftProcess.waitFor(.seconds(60)) {
            screen = await Self.screen(lab)
            let row =
                screen.split(separator: "\n").first {
                    $0.split(separator: " ", omittingEmptySubsequences: true).prefix(2) == [">", "alpha"]
                } ?? ""
            return row.contains("Mbit/s") && screen.contains("LINKS TO alpha") && screen.contains(" up ")
        }
        #expect(live, "screen:\n\(screen)")
        #expect(screen.contains("weft top — site beta") && screen.contains("q quit"), "screen:\n\(screen)")
        _ = try await Self.runTmux(lab, ["send-keys", "-t", "top", "s"])
        let sorted = await WeftProcess.waitFor(.seconds(30)) {
            screen = await Self.screen(lab)
            return screen.contains("sort links by: sent/s")
        }
        #expect(sorted, "screen:\n\(screen)")
        _ = try await Self.runTmux(lab, ["send-keys", "-t", "top", "q"])
        let quit = await WeftProcess.waitFor(.seconds(30)) {
            ((try? await Self.runTmux(lab, ["has-session", "-t", "top"]))?.status ?? 0) != 0
        }
        let after = await Self.screen(lab)
        #expect(quit, "weft top did not quit on q: \(after)")
        _ = try? await Self.runTmux(lab, ["kill-server"])

        // Not on a terminal: the status, again each interval, as many times as asked.
        let piped = try await lab.run(
            WeftProcess.executable, ["top", "--config", lab.configs["beta"]!, "--interval", "1", "--count", "2"])
        #expect(piped.status == 0, "\(piped)")
        #expect(piped.stdout.components(separatedBy: "TUNNELS").count == 3, "\(piped.stdout)")
        #expect(piped.stdout.contains("alpha: 1 link"), "\(piped.stdout)")

        // The transfer only had to be running; it ends here.
        transfer.signal(SIGTERM)
        _ = await transfer.exited(within: .seconds(60))
        await lab.stop("beta", "alpha")
    }
}
