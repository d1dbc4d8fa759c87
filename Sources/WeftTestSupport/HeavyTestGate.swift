/// Tests that load both cores for seconds (a gigabyte over TLS, hundreds of clients through a
/// site, a discovery flood) take turns: alone, none of them comes near a timeout, but two at
/// once on a 2-core machine can starve each other's event loops into one (a link silent for 2 s).
public actor HeavyTestGate {
    public static let shared = HeavyTestGate()

    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

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
    public static func exclusive<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await shared.acquire()
        do {
            let result = try await body()
            await shared.release()
            return result
        } catch {
            await shared.release()
            throw error
        }
    }
}
