import WeftWire

/// How many messages each sender may queue for the directory, so a flood cannot push real
/// messages out of the bounded queue between the broker's thread and the directory.
///
/// Every site pinned under the name it signs with has a token bucket of its own: an honest
/// site sends one announcement per refresh, a few more when its apps or addresses change, so a
/// flood from one member only ever drops that member's messages. Senders not (yet) pinned — a
/// mesh forming, or someone inventing identities — share one larger bucket, so they cannot
/// starve the sites already known either. Refills are computed from an injected time.
public struct IntakeBudget: Sendable {
    public struct Configuration: Sendable {
        /// Messages a known site may send at once, and per second after that.
        public var knownBurst: Double
        public var knownPerSecond: Double
        /// The same for all senders not pinned, together.
        public var unknownBurst: Double
        public var unknownPerSecond: Double

        public init(
            knownBurst: Double = 32, knownPerSecond: Double = 2, unknownBurst: Double = 1024,
            unknownPerSecond: Double = 64
        ) {
            self.knownBurst = knownBurst
            self.knownPerSecond = knownPerSecond
            self.unknownBurst = unknownBurst
            self.unknownPerSecond = unknownPerSecond
        }

        /// Shares for a queue of `queueLimit` messages: strangers together never fill more than
        /// a quarter of it (1,024 of the default 4,096, enough for a large mesh forming at once).
        public init(queueLimit: Int) {
            let unknown = Double(max(4, min(1024, queueLimit / 4)))
            self.init(unknownBurst: unknown, unknownPerSecond: min(64, unknown))
        }
    }

    /// Who sent a message, as far as the directory can tell before judging it.
    public enum Sender: Hashable, Sendable {
        /// A site whose pinned identity signed it.
        case known(String)
        /// Anyone else.
        case unknown
    }

    struct Bucket {
        var tokens: Double
        var updated: Duration
    }

    public let configuration: Configuration
    private var known: [String: Bucket] = [:]
    private var unknown: Bucket

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        self.unknown = Bucket(tokens: configuration.unknownBurst, updated: .zero)
    }

    /// Takes one token from `sender`'s bucket; false when it is empty (the message is dropped).
    public mutating func admit(_ sender: Sender, now: Duration) -> Bool {
        switch sender {
        case .known(let name):
            var bucket = known[name] ?? Bucket(tokens: configuration.knownBurst, updated: now)
            defer { known[name] = bucket }
            return Self.take(&bucket, burst: configuration.knownBurst, rate: configuration.knownPerSecond, now: now)
        case .unknown:
            return Self.take(
                &unknown, burst: configuration.unknownBurst, rate: configuration.unknownPerSecond, now: now)
        }
    }

    /// Forgets the buckets of names no longer pinned (the trust changed).
    public mutating func keep(only names: Set<String>) {
        known = known.filter { names.contains($0.key) }
    }

    private static func take(_ bucket: inout Bucket, burst: Double, rate: Double, now: Duration) -> Bool {
        if now > bucket.updated {
            let elapsed = (now - bucket.updated).inSeconds
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
            bucket.updated = now
        }
        guard bucket.tokens >= 1 else { return false }
        bucket.tokens -= 1
        return true
    }
}
