import Foundation
import Testing
import WeftTestSupport

/// What a site does when clients or peers ask for more than it has: refuse the excess, keep
/// serving the rest, and never run out of descriptors for its links.
@Suite("limits end to end", .enabled(if: SiteLab.isAvailable, "\(SiteLab.missing)"), .timeLimit(.minutes(10)))
struct LimitsEndToEndTests {
    /// Opens `count` connections to `port` and holds them until the far end has closed at
    /// least `expected` (EOF or reset; 60 s at most), then prints how many it closed and how many
    /// stayed open.
    static let holdScript = """
        import socket, sys, time
        port, count, expected = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        for conn in conns:
            conn.setblocking(False)
        closed = set()
        deadline = time.monotonic() + 60
        while len(closed) < expected and time.monotonic() < deadline:
            for index, conn in enumerate(conns):
                if index in closed:
                    continue
                try:
                    if conn.recv(1) == b"":
                        closed.add(index)
                except BlockingIOError:
                    pass
                except OSError:
                    closed.add(index)
            time.sleep(0.05)
        print(f"closed {len(closed)} open {count - len(closed)}")
        """

    @Test("more clients than the open-files limit allows: the excess is refused at once, the site lives on")
    func socketBudget() async throws {
        try await HeavyTestGate.exclusive { try await socketBudgetAlone() }
    }

    func socketBudgetAlone() async throws {
        let lab = try SiteLab()
        let httpPort = try FreePort.find()
        let entryPort = try FreePort.find()
        try await lab.website(port: httpPort, files: ["index.html": "still serving\n"])
        try lab.site("alpha", exposed: [SiteLab.exposed("web", "tcp:127.0.0.1:\(httpPort)")])
        try lab.site("beta", remote: [SiteLab.remote("alpha", "web", "tcp:127.0.0.1:\(entryPort)")])
        try lab.start("alpha")
        // 200 descriptors: 64 kept for links, listeners, the broker and the event loops, 136
        // for stream sockets.
        try lab.start("beta", openFiles: 200)
        #expect(await lab.waitForLink("beta", to: "alpha"), "\(lab.log("beta"))")
        #expect(!lab.lines("beta", "stream sockets capped", "limit=136", "openFilesLimit=200").isEmpty)

        let script = try lab.write("hold.py", Self.holdScript)
        let held = try await lab.run(SiteLab.python, [script, "\(entryPort)", "170", "34"])
        #expect(held.status == 0, "\(held)")
        let counts = held.stdout.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        #expect(
            counts.count == 2 && counts[0] >= 34 && counts[1] <= 136,
            "\(held.stdout)\n\(lab.log("beta").suffix(4000))")
        print("limits: of 170 clients held, \(held.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
        #expect(
            await WeftProcess.waitFor(.seconds(60)) {
                !lab.lines("beta", "refused a client: the site's stream sockets are all in use").isEmpty
            })
        #expect(lab.lines("beta", "Too many open files").isEmpty, "\(lab.lines("beta", "open files"))")

        // Once they are gone (their sockets released as beta sees them close), clients are
        // served again, and the tunnel never broke.
        var page = SiteLab.Output(status: -1, stdout: "", stderr: "")
        let served = await WeftProcess.waitFor(.seconds(60)) {
            page =
                (try? await lab.run(
                    SiteLab.curl, ["-sS", "--fail", "--max-time", "10", "http://127.0.0.1:\(entryPort)/index.html"]))
                ?? page
            return page.stdout == "still serving\n"
        }
        #expect(served, "\(page)")
        #expect(lab.lines("beta", "tunnel failed").isEmpty)
        await lab.stop("alpha", "beta")
    }
}
