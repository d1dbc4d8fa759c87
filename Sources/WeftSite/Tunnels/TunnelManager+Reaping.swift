import WeftTransport

/// What `TunnelReaper` runs: the end of tunnels to peers the directory lost, and the gauges.
extension TunnelManager {
    /// Ends tunnels to peers the directory has lost once they have had no link for
    /// `deadPeerGrace`, so the clients of a site that died learn it in seconds (`TunnelReaper`
    /// calls this about four times a second).
    func reap(now: ContinuousClock.Instant) {
        let grace = configuration.deadPeerGrace
        let closing = state.withLockedValue { state -> [TunnelDriver] in
            var closing: [TunnelDriver] = []
            for (name, tunnel) in state.tunnels {
                if state.planner.isUp(name) || tunnel.links > 0 {
                    state.tunnels[name]?.linklessSince = nil
                } else if let since = tunnel.linklessSince {
                    if now - since >= grace {
                        closing.append(tunnel.driver)
                        state.tunnels[name] = nil
                    }
                } else {
                    state.tunnels[name]?.linklessSince = now
                }
            }
            return closing
        }
        for driver in closing {
            close(driver, reason: "\(driver.peerSite) is gone: no announcement and no link for \(grace)")
        }
        reviewPaths(now: now)
    }

    /// Sets every tunnel's gauges (on its loop).
    func publishMetrics() {
        for driver in state.withLockedValue({ $0.tunnels.values.map(\.driver) }) {
            driver.eventLoop.execute { driver.publishMetrics() }
        }
    }
}
