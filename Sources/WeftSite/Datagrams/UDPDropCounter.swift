import Logging
import Metrics
import NIOConcurrencyHelpers
import WeftTransport

/// Counts the datagrams one UDP app drops, by reason (`weft_udp_datagrams_dropped_total`), and
/// says so in the log at most once per reason every 10 s with the running total: a flood of
/// client addresses or a congested tunnel is one line, not one per datagram. The flows' own
/// warnings (a refusal, a datagram over the limit) go through it too, for the same reason.
final class UDPDropCounter: Sendable {
    let peer: String
    let app: String
    private let logger: Logger
    private let limiter = LogLimiter()
    private let state = NIOLockedValueBox<(totals: [String: Int], counters: [String: Counter])>(([:], [:]))

    init(peer: String, app: String, logger: Logger) {
        self.peer = peer
        self.app = app
        var logger = logger
        logger[metadataKey: "peer"] = "\(peer)"
        logger[metadataKey: "app"] = "\(app)"
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
        "refused": "the far site refused the flow a moment ago; it is tried again in 5 s",
    ]

    func count(_ reason: String, _ amount: Int = 1) {
        guard amount > 0 else { return }
        let (counter, total) = state.withLockedValue { state -> (Counter, Int) in
            state.totals[reason, default: 0] += amount
            if let counter = state.counters[reason] { return (counter, state.totals[reason]!) }
            let counter = Counter(
                label: "weft_udp_datagrams_dropped_total",
                dimensions: [("peer", peer), ("app", app), ("reason", reason)])
            state.counters[reason] = counter
            return (counter, state.totals[reason]!)
        }
        counter.increment(by: amount)
        let (allowed, _) = limiter.admit(reason)
        guard allowed else { return }
        logger.warning(
            "dropped UDP datagrams",
            metadata: [
                "reason": "\(reason)", "why": "\(Self.reasons[reason] ?? reason)", "total": "\(total)",
            ])
    }

    /// A warning about the app's flows, at most once per `kind` every 10 s.
    func warn(_ kind: String, _ message: Logger.Message, metadata: Logger.Metadata = [:]) {
        let (allowed, suppressed) = limiter.admit("warn " + kind)
        guard allowed else { return }
        var metadata = metadata
        metadata["alsoSinceLastLine"] = "\(suppressed)"
        logger.warning(message, metadata: metadata)
    }

    /// Datagrams dropped so far for `reason`.
    func total(_ reason: String) -> Int { state.withLockedValue { $0.totals[reason] ?? 0 } }
}
