import ArgumentParser
import Dispatch
import Foundation
import WeftAPI

#if canImport(Glibc)
    import Glibc
#endif

struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract:
            "A live view of the tunnels: per peer and per link throughput, RTT, in flight, re-sent bytes, streams.",
        discussion: """
            Reads the site's REST API every --interval seconds and shows each peer's tunnel with \\
            the rates since the last refresh, and the links of one peer. Keys: n/p, Tab or the \\
            arrow keys switch peer, s changes the order of the links, q or Ctrl-C quits. Not on \\
            a terminal, it prints what weft status --watch prints.
            """
    )

    @OptionGroup var options: APIOptions

    @Option(help: "Seconds between refreshes (1–60).")
    var interval: Int = 1

    @Option(help: ArgumentHelp("The peer to show the links of first.", valueName: "name"))
    var peer: String?

    @Option(help: "Stop after this many refreshes (0: run until quit).")
    var count: Int = 0

    func validate() throws {
        guard (1...60).contains(interval) else { throw ValidationError("--interval must be from 1 to 60") }
        guard count >= 0 else { throw ValidationError("--count must be 0 or more") }
    }

    /// What wakes the loop. Fetches run beside it and report here, so a key or a signal is
    /// handled at once even while the API is slow to answer.
    enum Event: Sendable {
        case tick
        case fetched([APIModels.Tunnel]?, problem: String?)
        case input([UInt8])
        case quit
        case resize
    }

    func run() async throws {
        let client = try options.client()
        guard isatty(STDIN_FILENO) != 0, isatty(STDOUT_FILENO) != 0 else {
            try await StatusCommand.watch(client, interval: interval, count: count, command: "weft top")
            return
        }
        let site: String
        do {
            site = try await client.get("/api/v1/site", as: APIModels.Site.self).siteName
        } catch let failure as APIClient.Failure {
            printError("weft top: \(failure)")
            throw ExitCode(1)
        }
        let (events, continuation) = AsyncStream<Event>.makeStream()
        // Keys: a thread blocked in read(2); it ends with the process.
        Thread {
            var buffer = [UInt8](repeating: 0, count: 64)
            while true {
                let count = read(STDIN_FILENO, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    continuation.yield(.quit)
                    return
                }
                continuation.yield(.input(Array(buffer[0..<count])))
            }
        }.start()
        var sources: [DispatchSourceSignal] = []
        for (number, event) in [
            (SIGTERM, Event.quit), (SIGHUP, .quit), (SIGINT, .quit), (SIGQUIT, .quit), (SIGWINCH, .resize),
        ] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { continuation.yield(event) }
            source.resume()
            sources.append(source)
        }
        let ticker = Task {
            while !Task.isCancelled {
                continuation.yield(.tick)
                try? await Task.sleep(for: .seconds(interval))
            }
        }
        let screen = try TerminalScreen()
        defer {
            screen.restore()
            ticker.cancel()
            for source in sources { source.cancel() }
        }
        var monitor = TunnelMonitor(peer: peer)
        var refreshes = 0
        var fetch: Task<Void, Never>?
        defer { fetch?.cancel() }
        let clock = ContinuousClock()
        let start = clock.now
        func draw() {
            let (width, height) = screen.size
            screen.draw(monitor.lines(site: site, width: width, height: height))
        }
        loop: for await event in events {
            switch event {
            case .tick:
                // One fetch at a time: a tick while one is out is skipped, not queued.
                guard fetch == nil else { continue }
                fetch = Task {
                    do {
                        let tunnels = try await client.get("/api/v1/tunnels", as: [APIModels.Tunnel].self)
                        continuation.yield(.fetched(tunnels, problem: nil))
                    } catch {
                        continuation.yield(.fetched(nil, problem: "cannot read the API: \(error)"))
                    }
                }
            case .fetched(let tunnels, let problem):
                fetch = nil
                if let tunnels {
                    monitor.update(tunnels, at: clock.now - start)
                } else {
                    monitor.problem = problem
                }
                draw()
                refreshes += 1
                if count > 0 && refreshes >= count { break loop }
            case .input(let bytes):
                for key in TunnelMonitor.keys(in: bytes) {
                    if monitor.handle(key) == .quit { break loop }
                }
                draw()
            case .resize:
                draw()
            case .quit:
                break loop
            }
        }
    }
}
