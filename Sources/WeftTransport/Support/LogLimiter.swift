import NIOConcurrencyHelpers

/// Lets a kind of log line through at most once per `interval`, counting what it held back,
/// so a peer that repeats a refused request cannot flood the log.
public final class LogLimiter: Sendable {
    private struct Entry {
        var last: ContinuousClock.Instant
        var suppressed: Int
    }

    private let interval: Duration
    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    /// Kinds remembered at most; beyond it the oldest are forgotten.
    private let capacity = 1024

    public init(interval: Duration = .seconds(10)) {
        self.interval = interval
    }

    /// Whether a line of `kind` may be logged now, and how many were held back since the last.
    public func admit(_ kind: String, now: ContinuousClock.Instant = .now) -> (allowed: Bool, suppressed: Int) {
        entries.withLockedValue { entries in
            if var entry = entries[kind] {
                guard now - entry.last >= interval else {
                    entry.suppressed += 1
                    entries[kind] = entry
                    return (false, 0)
                }
                entries[kind] = Entry(last: now, suppressed: 0)
                return (true, entry.suppressed)
            }
            if entries.count >= capacity, let oldest = entries.min(by: { $0.value.last < $1.value.last })?.key {
                entries[oldest] = nil
            }
            entries[kind] = Entry(last: now, suppressed: 0)
            return (true, 0)
        }
    }
}
