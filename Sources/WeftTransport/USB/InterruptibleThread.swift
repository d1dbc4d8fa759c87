import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// A thread for blocking endpoint I/O that can be woken: FunctionFS endpoint files have no
/// poll and no timeout, so a read waiting for a host that never sends, or for a function that
/// is never enabled again, returns only when a signal interrupts it (EINTR). `interrupt` sends
/// SIGUSR2, whose handler does nothing and is installed without SA_RESTART.
final class InterruptibleThread: @unchecked Sendable {
    private let state = NIOLockedValueBox<(thread: pthread_t?, done: Bool)>((nil, false))
    private let finished = DispatchSemaphore(value: 0)

    static let signal = SIGUSR2

    private static let installHandler: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(InterruptibleThread.signal, &action, nil)
    }()

    init(name: String, _ body: @escaping @Sendable () -> Void) {
        _ = Self.installHandler
        let thread = Thread { [state, finished] in
            state.withLockedValue { $0.thread = pthread_self() }
            body()
            state.withLockedValue { $0.done = true }
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Interrupts its blocking call, if it is in one (the body checks why it woke).
    func interrupt() {
        state.withLockedValue { state in
            if let thread = state.thread, !state.done { pthread_kill(thread, Self.signal) }
        }
    }

    /// Interrupts it until it returns, at most `seconds`; true if it did.
    @discardableResult
    func stop(within seconds: Double = 10) -> Bool {
        let deadline = DispatchTime.now() + seconds
        while state.withLockedValue({ !$0.done }) {
            interrupt()
            if finished.wait(timeout: .now() + 0.05) == .success {
                finished.signal()
                return true
            }
            if DispatchTime.now() > deadline { return false }
        }
        return true
    }
}
