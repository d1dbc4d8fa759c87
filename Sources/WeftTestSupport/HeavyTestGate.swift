import Foundation
import Synchronization

/// Tests that load both cores for seconds (a gigabyte over TLS, hundreds of clients through a
/// site, a discovery flood) take turns: alone, none of them comes near a timeout, but two at
/// once on a 2-core machine can starve each other's event loops into one (a link silent for 2 s).
///
/// A test that hangs inside the gate holds up every heavy test behind it, and a time limit
/// cannot end a wait that ignores cancellation (a NIO future's `get()`), so a watchdog thread —
/// not a task, so it runs even when no task can — names the holder and the waiting tests on
/// standard error once the holder has been in for `watchdogLimit`, and again every minute.
public actor HeavyTestGate {
    public static let shared = HeavyTestGate()

    /// No heavy test takes this long alone; one that does is named.
    public static let watchdogLimit: Duration = .seconds(300)

    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Who holds the gate since when, and who waits: read by the watchdog thread.
    private static let roster = Mutex(Roster())

    private struct Roster {
        var holder: (name: String, since: ContinuousClock.Instant)?
        var waiting: [String] = []
        var watchdogStarted = false
    }

    private func acquire() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
    }

    /// Runs `body` when no other heavy test runs.
    public static func exclusive<T: Sendable>(
        _ name: String = #function, file: String = #fileID, _ body: () async throws -> T
    ) async throws -> T {
        let label = "\(file): \(name)"
        startWatchdog()
        roster.withLock { $0.waiting.append(label) }
        await shared.acquire()
        roster.withLock { roster in
            if let index = roster.waiting.firstIndex(of: label) { roster.waiting.remove(at: index) }
            roster.holder = (label, .now)
        }
        let result: Result<T, any Error>
        do {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        roster.withLock { $0.holder = nil }
        await shared.release()
        return try result.get()
    }

    private static func startWatchdog() {
        let start = roster.withLock { roster in
            defer { roster.watchdogStarted = true }
            return !roster.watchdogStarted
        }
        guard start else { return }
        let thread = Thread {
            var lastReport: ContinuousClock.Instant?
            while true {
                Thread.sleep(forTimeInterval: 5)
                let report = roster.withLock { roster -> String? in
                    guard let holder = roster.holder, holder.since.duration(to: .now) >= watchdogLimit else {
                        return nil
                    }
                    return "HeavyTestGate: \(holder.name) has held the gate for \(holder.since.duration(to: .now)); "
                        + "waiting: \(roster.waiting.isEmpty ? "none" : roster.waiting.joined(separator: ", "))\n"
                }
                guard let report else {
                    lastReport = nil
                    continue
                }
                if let lastReport, lastReport.duration(to: .now) < .seconds(60) { continue }
                lastReport = .now
                FileHandle.standardError.write(Data(report.utf8))
            }
        }
        thread.name = "HeavyTestGate watchdog"
        thread.start()
    }
}
