import Logging
import Metrics
import NIOConcurrencyHelpers
import WeftTransport

/// Counts the datagrams one UDP app drops, by reason (`weft_udp_datagrams_dropped_total`), and
/// says so in the log at most once per reason every 10 s with the running total: a flood of
/// client addresses or a congested tunnel is one line, not one per datagram.
final class UDPDropCounter: Sendable {
    let peer: String
    let app: String
    private let logger: Logger
    private let limiter = LogLimiter()
    private let totals = NIOLockedValueBox<[String: Int]>([:])

    init(peer: String, app: String, logger: Logger) {
        self.peer = peer
        self.app = app
        self.logger = logger
    }

    /// Why a datagram can be dropped, and what the log says about it.
    static let reasons: [String: String] = [
        "flows": "the local socket carries udpMaxFlows client addresses already; a new one is dropped",
        "congested": "the tunnel holds enough of the flow's bytes; the datagram is dropped",
        "oversized": "larger than a UDP datagram the tunnel carries",
        "clientSlow": "the client's socket took no more",
        "appSlow": "the app's socket took no more",
        "waiting": "more datagrams came than are kept while the tunnel is awaited",
        "noTunnel": "no tunnel to the site",
    ]

    func count(_ reason: String, _ amount: Int = 1) {
        Counter(
            label: "weft_udp_datagrams_dropped_total", dimensions: [("peer", peer), ("app", app), ("reason", reason)]
        ).increment(by: amount)
        let total = totals.withLockedValue { totals in
            totals[reason, default: 0] += amount
            return totals[reason]!
        }
        let (allowed, _) = limiter.admit(reason)
        guard allowed else { return }
        logger.warning(
            "dropped UDP datagrams",
            metadata: [
                "reason": "\(reason)", "why": "\(Self.reasons[reason] ?? reason)", "total": "\(total)",
            ])
    }

    /// Datagrams dropped so far for `reason`.
    func total(_ reason: String) -> Int { totals.withLockedValue { $0[reason] ?? 0 } }
}
