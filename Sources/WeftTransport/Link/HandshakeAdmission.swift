import NIOConcurrencyHelpers

/// Caps the link handshakes (TLS, then weft's hello) in progress on a site's link listeners, in
/// all and per source address, so that connections that never finish — a scanner, a stranger
/// holding sockets open — cannot take the sockets, memory and CPU real peers need. A connection
/// over a cap is closed before TLS starts.
public final class HandshakeAdmission: Sendable {
    /// The counts, as a value: what `admit` and `release` decide, testable on its own.
    public struct Counts: Sendable {
        public var maxTotal: Int
        public var maxPerSource: Int
        public private(set) var total = 0
        public private(set) var perSource: [String: Int] = [:]

        public init(maxTotal: Int = 256, maxPerSource: Int = 16) {
            self.maxTotal = maxTotal
            self.maxPerSource = maxPerSource
        }

        /// Why a new handshake from `source` may not start, or nil (and it is counted).
        /// `capPerSource` false: the source is a reverse proxy that every peer comes through,
        /// so only the total cap applies to it.
        public mutating func admit(_ source: String, capPerSource: Bool = true) -> Refusal? {
            if total >= maxTotal { return .total }
            if capPerSource && perSource[source, default: 0] >= maxPerSource { return .perSource }
            total += 1
            perSource[source, default: 0] += 1
            return nil
        }

        /// A handshake from `source` finished (either way).
        public mutating func release(_ source: String) {
            guard let count = perSource[source] else { return }
            total -= 1
            perSource[source] = count > 1 ? count - 1 : nil
        }
    }

    public enum Refusal: String, Sendable {
        case total = "too many handshakes in progress"
        case perSource = "too many handshakes in progress from this address"
    }

    private let counts: NIOLockedValueBox<Counts>

    public init(maxTotal: Int = 256, maxPerSource: Int = 16) {
        counts = NIOLockedValueBox(Counts(maxTotal: maxTotal, maxPerSource: maxPerSource))
    }

    public func admit(_ source: String, capPerSource: Bool = true) -> Refusal? {
        counts.withLockedValue { $0.admit(source, capPerSource: capPerSource) }
    }

    public func release(_ source: String) {
        counts.withLockedValue { $0.release(source) }
    }

    /// Handshakes in progress now.
    public var inProgress: Int { counts.withLockedValue { $0.total } }
}
