import NIOConcurrencyHelpers
import Synchronization

/// Bytes and streams per app, for the API and the dashboard: each exposed app (streams that
/// peers opened to it) and each remote app (clients of its local socket). Sent and received
/// are seen from this site: sent is what went into the tunnel, received what came out of it.
///
/// A stream holds its app's `AppTrafficMeter` and counts on it without a lock; the table of
/// meters is locked only when a stream starts or the API reads it.
public final class AppTraffic: Sendable {
    /// Apps metered at most: a removed app's meter is forgotten when the apps change, and
    /// this bounds the table however the apps move meanwhile.
    static let maxApps = 4096
    private let meters = NIOLockedValueBox<[Key: AppTrafficMeter]>([:])

    /// An exposed app by name, or a remote app by site and name.
    public enum Key: Hashable, Sendable {
        case exposed(String)
        case remote(site: String, app: String)
    }

    public init() {}

    /// The meter of `key`, made on first use.
    public func meter(_ key: Key) -> AppTrafficMeter {
        meters.withLockedValue { meters in
            if let meter = meters[key] { return meter }
            if meters.count >= Self.maxApps { meters.removeAll() }
            let meter = AppTrafficMeter()
            meters[key] = meter
            return meter
        }
    }

    /// What `key` carried since it was first metered; zero for an app not seen yet.
    public func counts(_ key: Key) -> AppTrafficCounts {
        meters.withLockedValue { $0[key] }?.counts ?? AppTrafficCounts()
    }

    /// Forgets the meters of apps no longer in effect (their streams, if any still run, keep
    /// counting on a meter nobody reads).
    public func keep(only keys: Set<Key>) {
        meters.withLockedValue { meters in
            for key in meters.keys where !keys.contains(key) { meters.removeValue(forKey: key) }
        }
    }
}

/// One app's counters, shared by its streams on every event loop.
public final class AppTrafficMeter: Sendable {
    private let sent = Atomic<UInt64>(0)
    private let received = Atomic<UInt64>(0)
    private let open = Atomic<Int>(0)
    private let opened = Atomic<UInt64>(0)

    init() {}

    func streamStarted() {
        open.add(1, ordering: .relaxed)
        opened.add(1, ordering: .relaxed)
    }

    func streamEnded() { open.subtract(1, ordering: .relaxed) }

    /// Bytes that went into the tunnel.
    func sent(_ count: Int) { sent.add(UInt64(max(0, count)), ordering: .relaxed) }

    /// Bytes that came out of the tunnel.
    func received(_ count: Int) { received.add(UInt64(max(0, count)), ordering: .relaxed) }

    var counts: AppTrafficCounts {
        AppTrafficCounts(
            bytesSent: sent.load(ordering: .relaxed), bytesReceived: received.load(ordering: .relaxed),
            openStreams: max(0, open.load(ordering: .relaxed)), streams: opened.load(ordering: .relaxed))
    }
}

/// What one app carried: bytes both ways, streams open now and streams since it was added.
public struct AppTrafficCounts: Codable, Sendable, Equatable {
    public var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public var openStreams: Int = 0
    public var streams: UInt64 = 0

    public init(bytesSent: UInt64 = 0, bytesReceived: UInt64 = 0, openStreams: Int = 0, streams: UInt64 = 0) {
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
        self.openStreams = openStreams
        self.streams = streams
    }
}
