import Metrics

/// One tunnel's series in the process's metrics system (Prometheus at `/metrics` in the daemon;
/// nothing when no backend is bootstrapped). Every series carries the peer's site name.
///
/// Byte counters and gauges are both moved by `TunnelDriver.publishMetrics` about once a second
/// (and when a link or the tunnel ends): a counter per frame cost two atomic adds behind two
/// existential calls on every read and write. A link's series go away with the link; the peer's (`PeerSeries`) with
/// the last tunnel to it.
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

    let series: PeerSeries
    var sent: Counter { series.sent }
    var received: Counter { series.received }
    var resent: Counter { series.resent }
    var streamsOpen: Gauge { series.streamsOpen }
    var links: Gauge { series.links }

    init(peer: String) {
        series = PeerSeries.acquire(peer)
    }

    func link(_ number: UInt32, transport: LinkEndpoint.Kind, path: String) -> Link {
        let labels = [("peer", series.peer), ("link", "\(number)"), ("transport", "\(transport)"), ("path", path)]
        return Link(
            sent: Counter(label: "weft_link_sent_bytes_total", dimensions: labels),
            received: Counter(label: "weft_link_received_bytes_total", dimensions: labels),
            rtt: Gauge(label: "weft_link_rtt_seconds", dimensions: labels),
            rate: Gauge(label: "weft_link_delivery_rate_bytes_per_second", dimensions: labels)
        )
    }

    /// A link came up, went down, or was suspected.
    func linkStateChanged(to state: String) {
        series.counter("weft_link_state_changes_total", [("state", state)]).increment()
    }
}
