/// Credit this side grants the peer, for one stream or for the whole tunnel: the peer may send
/// below `limit`. Once half of the window is used the limit moves to `consumed + size`, and
/// the window doubles (up to `maximum`) when the reader took the last one within four round
/// trips, so a fast reader is never held back by a window sized for a slow one.
struct CreditWindow: Sendable {
    private(set) var size: Int
    let maximum: Int
    /// The peer may send bytes below this offset (stream offsets, all streams together for
    /// the tunnel).
    private(set) var limit: UInt64
    /// Bytes the reader took (or that were released); never more than were received.
    var consumed: UInt64 = 0
    private var lastUpdate: Duration

    init(size: Int, maximum: Int, limit: UInt64, now: Duration) {
        self.size = size
        self.maximum = max(maximum, size)
        self.limit = limit
        self.lastUpdate = now
    }

    /// Credit not yet used up by what was consumed.
    var remaining: UInt64 { limit - min(limit, consumed) }

    /// Whether half of the window is used: `update` then moves the limit.
    var isDue: Bool { remaining <= UInt64(size / 2) }

    /// The new limit to advertise, or nil while more than half of the window is left.
    mutating func update(now: Duration, rtt: Duration) -> UInt64? {
        guard isDue else { return nil }
        if now - lastUpdate < rtt * 4 { size = min(size * 2, maximum) }
        limit = consumed + UInt64(size)
        lastUpdate = now
        return limit
    }
}
