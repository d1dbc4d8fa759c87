import WeftWire

/// A relay's book of the links it carries: who may have one more (`tunnel.relayLimits`, per
/// pair of sites and in all), and the bytes carried per pair for status and metrics. A value:
/// the relay service keeps it behind its lock.
struct RelayAdmission: Sendable {
    /// A pair of sites, in name order (alpha→beta and beta→alpha share their limit).
    struct Pair: Hashable, Sendable, CustomStringConvertible {
        let first: String
        let second: String

        init(_ one: String, _ other: String) {
            (first, second) = one < other ? (one, other) : (other, one)
        }

        var description: String { "\(first)↔\(second)" }
    }

    struct Usage: Sendable, Equatable {
        var streams = 0
        var bytes: UInt64 = 0
        /// Relayed links ever carried.
        var carried = 0
    }

    enum Decision: Equatable {
        case admit
        case refuse(StreamReset.Code, String)
    }

    let limits: (perPair: Int, total: Int)
    private(set) var pairs: [Pair: Usage] = [:]
    private(set) var total = 0

    init(perPair: Int, total: Int) {
        limits = (perPair, total)
    }

    /// Whether `asker` may have a relayed link to `target` through this site (`own`) now; an
    /// admitted one holds its slot until `release`.
    mutating func admit(asker: String, target: String?, own: String, targetReachable: Bool) -> Decision {
        guard let target, !target.isEmpty else { return .refuse(.relayNoPath, "no site named") }
        guard target != own else { return .refuse(.relayNoPath, "the relay itself is not relayed to") }
        guard target != asker else { return .refuse(.relayNoPath, "a site is not relayed to itself") }
        guard targetReachable else { return .refuse(.relayNoPath, "no direct tunnel to that site") }
        let pair = Pair(asker, target)
        guard total < limits.total else { return .refuse(.limitReached, "relayed streams: \(limits.total) in all") }
        guard pairs[pair, default: Usage()].streams < limits.perPair else {
            return .refuse(.limitReached, "relayed streams: \(limits.perPair) for this pair")
        }
        pairs[pair, default: Usage()].streams += 1
        pairs[pair, default: Usage()].carried += 1
        total += 1
        return .admit
    }

    mutating func carried(_ count: Int, between one: String, and other: String) {
        pairs[Pair(one, other), default: Usage()].bytes &+= UInt64(count)
    }

    mutating func release(_ one: String, _ other: String) {
        let pair = Pair(one, other)
        guard let usage = pairs[pair], usage.streams > 0 else { return }
        pairs[pair]!.streams -= 1
        total -= 1
    }
}
