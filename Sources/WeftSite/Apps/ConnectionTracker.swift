import NIOConcurrencyHelpers
import NIOCore

/// The app-side sockets of open streams, grouped by a key (an app), so that removing an app
/// ends exactly its streams and no other.
public final class ConnectionTracker: Sendable {
    private let channels = NIOLockedValueBox<[String: [ObjectIdentifier: Channel]]>([:])

    public init() {}

    /// Tracks `channel` under `key` until it closes.
    public func add(_ channel: Channel, key: String) {
        let id = ObjectIdentifier(channel)
        channels.withLockedValue { $0[key, default: [:]][id] = channel }
        channel.closeFuture.whenComplete { _ in
            self.channels.withLockedValue { table in
                table[key]?[id] = nil
                if table[key]?.isEmpty == true { table[key] = nil }
            }
        }
    }

    /// How many sockets are open under `key`.
    public func count(_ key: String) -> Int {
        channels.withLockedValue { $0[key]?.count ?? 0 }
    }

    /// The sockets open under `key` now (to end later exactly these, and no newer one).
    public func sockets(_ key: String) -> [Channel] {
        channels.withLockedValue { $0[key].map { Array($0.values) } ?? [] }
    }

    /// Closes `sockets` with an RST (see `abortAll`); returns how many.
    @discardableResult
    public static func abort(_ sockets: [Channel]) -> Int {
        for channel in sockets { StreamRelay.abort(channel) }
        return sockets.count
    }

    /// Closes every socket under `key` with an RST: their streams end as failed, not finished.
    /// Returns how many there were.
    @discardableResult
    public func abortAll(_ key: String) -> Int {
        let victims = channels.withLockedValue { $0.removeValue(forKey: key).map { Array($0.values) } ?? [] }
        for channel in victims { StreamRelay.abort(channel) }
        return victims.count
    }
}
