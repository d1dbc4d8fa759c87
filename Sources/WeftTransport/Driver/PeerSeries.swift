import Metrics
import Synchronization

/// The metric series labelled with one peer site, shared by every tunnel to it (a restart
/// briefly overlaps the old tunnel and the new) and removed from the metrics system when the
/// last of them ends, so a mesh whose members come and go does not grow `/metrics` without end.
///
/// At most `maxPeers` peers have series of their own at a time; beyond that they share the
/// label `peer="(other)"`, whose series stay (a site may be named "(other)" too; its series
/// are then summed with the overflow's, which is only a matter of display).
public final class PeerSeries: Sendable {
    /// Peers with series of their own at most (the directory pins at most 1,024 names).
    public static let maxPeers = 1024
    /// The label of peers beyond `maxPeers`.
    public static let overflowLabel = "(other)"

    private struct Entry {
        let series: PeerSeries
        var users: Int
    }

    private static let registry = Mutex<[String: Entry]>([:])

    /// The value of the `peer` label.
    public let peer: String
    let sent: Counter
    let received: Counter
    let resent: Counter
    let streamsOpen: Gauge
    let links: Gauge
    /// Counters with more labels than the peer's (state changes, streams by side or reason),
    /// made on first use.
    private let counters = Mutex<[String: Counter]>([:])

    private init(peer: String) {
        self.peer = peer
        let labels = [("peer", peer)]
        sent = Counter(label: "weft_peer_sent_bytes_total", dimensions: labels)
        received = Counter(label: "weft_peer_received_bytes_total", dimensions: labels)
        resent = Counter(label: "weft_peer_resent_bytes_total", dimensions: labels)
        streamsOpen = Gauge(label: "weft_peer_streams_open", dimensions: labels)
        links = Gauge(label: "weft_peer_links", dimensions: labels)
    }

    /// The series of `peer`, for one more user (a tunnel); `release()` when it ends.
    public static func acquire(_ peer: String) -> PeerSeries {
        registry.withLock { registry in
            if var entry = registry[peer] {
                entry.users += 1
                registry[peer] = entry
                return entry.series
            }
            let label = registry.count < maxPeers ? peer : overflowLabel
            if var entry = registry[label] {
                entry.users += 1
                registry[label] = entry
                return entry.series
            }
            let series = PeerSeries(peer: label)
            registry[label] = Entry(series: series, users: 1)
            return series
        }
    }

    /// Labels with series now: at most `maxPeers`, plus the overflow label.
    public static var trackedPeers: Int { registry.withLock { $0.count } }

    /// One user is done; the last one's leaving removes every series of the peer.
    public func release() {
        let last = Self.registry.withLock { registry -> Bool in
            guard var entry = registry[peer], entry.series === self else { return false }
            entry.users -= 1
            if entry.users > 0 || peer == Self.overflowLabel {
                registry[peer] = entry
                return false
            }
            registry[peer] = nil
            return true
        }
        guard last else { return }
        for counter in [sent, received, resent] { counter.destroy() }
        for gauge in [streamsOpen, links] { gauge.destroy() }
        for counter in counters.withLock({ $0.values }) { counter.destroy() }
    }

    /// A counter of this peer with `dimensions` after the `peer` label, removed with the peer.
    public func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: [("peer", peer)] + dimensions)
            counters[key] = counter
            return counter
        }
    }
}
