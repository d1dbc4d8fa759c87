import NIOConcurrencyHelpers
import NIOCore

/// A wait that ends when its time is up or when someone signals, whichever comes first: a dial
/// run waits out its backoff on one instead of polling. A signal with nobody waiting is kept
/// for the next wait (a kick during a dial skips the backoff after it) until `reset()`.
final class Wakeup: Sendable {
    private struct State {
        var signalled = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Which wait a scheduled timeout belongs to (an old one must not end a newer wait).
        var generation: UInt64 = 0
        var timeout: Scheduled<Void>?
    }

    private let state = NIOLockedValueBox(State())

    /// Wakes the current wait, or the next one.
    func signal() {
        let (waiter, timeout) = state.withLockedValue { state in
            guard let waiter = state.waiter else {
                state.signalled = true
                return (CheckedContinuation<Void, Never>?.none, Scheduled<Void>?.none)
            }
            state.waiter = nil
            defer { state.timeout = nil }
            return (waiter, state.timeout)
        }
        timeout?.cancel()
        waiter?.resume()
    }

    /// Forgets a signal given before now.
    func reset() {
        state.withLockedValue { $0.signalled = false }
    }

    /// Returns after `duration` (timed on `loop`), or at once when signalled.
    func wait(upTo duration: Duration, on loop: EventLoop) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let generation = state.withLockedValue { state -> UInt64? in
                if state.signalled {
                    state.signalled = false
                    return nil
                }
                state.generation &+= 1
                state.waiter = continuation
                return state.generation
            }
            guard let generation else {
                continuation.resume()
                return
            }
            let timeout = loop.scheduleTask(in: TimeAmount(duration)) { self.timedOut(generation) }
            // A timer that cannot run (its loop shut down) ends the wait too; one cancelled
            // because a signal came first finds no waiter left.
            timeout.futureResult.whenFailure { _ in self.timedOut(generation) }
            let stale = state.withLockedValue { state -> Bool in
                guard state.generation == generation && state.waiter != nil else { return true }
                state.timeout = timeout
                return false
            }
            if stale { timeout.cancel() }
        }
    }

    private func timedOut(_ generation: UInt64) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard state.generation == generation, let waiter = state.waiter else { return nil }
            state.waiter = nil
            state.timeout = nil
            return waiter
        }
        waiter?.resume()
    }
}
