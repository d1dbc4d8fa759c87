import Logging
import Metrics

/// Peers this site cannot reach by any path (`NoPathWatch`): said in the log and in status, and
/// their clients refused at once with the reason.
extension TunnelManager {
    /// Why there is no path to `peer` now, or nil while a path exists or may come.
    public func noPathReason(to peer: String) -> String? {
        state.withLockedValue { $0.noPath.reason(for: peer) }
    }

    /// Every peer without a path, with the reason.
    public var peersWithoutPath: [String: String] {
        state.withLockedValue { $0.noPath.reasons }
    }

    /// Looks at every peer whose apps this site uses (`TunnelReaper` calls this about four times
    /// a second): a peer that has just lost its last possible path has its waiting clients
    /// refused.
    func reviewPaths(now: ContinuousClock.Instant) {
        let puncher = self.puncher.withLockedValue { $0 }
        let names = state.withLockedValue { state in state.planner.usedSites.union(state.noPath.peers) }
        guard !names.isEmpty else { return }
        var punching: [String: NoPathWatch.Punching] = [:]
        for name in names {
            punching[name] = puncher?.outlook(for: name) ?? .unavailable("this site has no nat-traversal socket")
        }
        let (actions, refused, count) = state.withLockedValue {
            state -> ([NoPathWatch.Action], [(Waiters.Waiter, String)], Int) in
            guard !state.planner.stopped else { return ([], [], 0) }
            var actions: [NoPathWatch.Action] = []
            let relays = state.planner.relays
            for name in names.sorted() {
                guard state.planner.usedSites.contains(name) else {
                    actions += state.noPath.forget(name)
                    continue
                }
                let facts = NoPathWatch.Facts(
                    up: state.planner.isUp(name), used: true, linked: (state.tunnels[name]?.links ?? 0) > 0,
                    directPaths: state.planner.directPaths(to: name),
                    announcesEndpoints: state.planner.announcesEndpoints,
                    relays: relays.count { $0 != name },
                    punching: punching[name] ?? .possible)
                actions += state.noPath.review(name, facts, now: now)
            }
            var refused: [(Waiters.Waiter, String)] = []
            for case .noPath(let peer, let reason) in actions {
                let waiting = state.waiters.byPeer.removeValue(forKey: peer) ?? [:]
                for id in waiting.keys { state.waiters.open.remove(id) }
                refused += waiting.values.map { ($0, reason) }
            }
            return (actions, refused, state.noPath.reasons.count)
        }
        guard !actions.isEmpty else { return }
        for action in actions {
            switch action {
            case .noPath(let peer, let reason):
                logger.warning(
                    "no path to a site whose apps this site uses; its clients are refused until one appears",
                    metadata: ["peer": "\(peer)", "reason": "\(reason)"])
            case .pathPossible(let peer):
                logger.info("a path to the site may be possible again", metadata: ["peer": "\(peer)"])
            }
        }
        Gauge(label: "weft_peers_without_path").record(count)
        for (waiter, reason) in refused { waiter.end(with: .refused(reason)) }
    }
}
