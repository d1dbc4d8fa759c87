import Metrics

/// One tunnel's series in the process's metrics system (Prometheus at `/metrics` in the daemon;
/// nothing when no backend is bootstrapped). Every series carries the peer's site name.
///
/// Byte counters move with every read and write; gauges are set by `TunnelDriver.publishMetrics`
/// about once a second. A link's series go away with the link.
struct TunnelMetrics {
    struct Link {
        let sent: Counter
        let received: Counter
        let rtt: Gauge
        let rate: Gauge

        func destroy() {
            sent.destroy()
            received.destroy()
            rtt.destroy()
            rate.destroy()
        }
    }

    let peer: String
    let sent: Counter
    let received: Counter
    let resent: Counter
    let streamsOpen: Gauge
    let links: Gauge

    init(peer: String) {
        self.peer = peer
        let labels = [("peer", peer)]
        sent = Counter(label: "weft_peer_sent_bytes_total", dimensions: labels)
        received = Counter(label: "weft_peer_received_bytes_total", dimensions: labels)
        resent = Counter(label: "weft_peer_resent_bytes_total", dimensions: labels)
        streamsOpen = Gauge(label: "weft_peer_streams_open", dimensions: labels)
        links = Gauge(label: "weft_peer_links", dimensions: labels)
    }

    func link(_ number: UInt32) -> Link {
        let labels = [("peer", peer), ("link", "\(number)")]
        return Link(
            sent: Counter(label: "weft_link_sent_bytes_total", dimensions: labels),
            received: Counter(label: "weft_link_received_bytes_total", dimensions: labels),
            rtt: Gauge(label: "weft_link_rtt_seconds", dimensions: labels),
            rate: Gauge(label: "weft_link_delivery_rate_bytes_per_second", dimensions: labels)
        )
    }

    /// A link came up, went down, or was suspected.
    func linkStateChanged(to state: String) {
        Counter(label: "weft_link_state_changes_total", dimensions: [("peer", peer), ("state", state)]).increment()
    }
}
