/// Notices a peer this site cannot reach by any path (issue 18, scenario 3): it uses the peer's
/// apps, but neither side announces an endpoint the other can dial, hole punching failed or
/// cannot be tried, and no relay is in the mesh. Its clients are then refused at once with the
/// reason, instead of each waiting out the connect timeout for a link that cannot come.
///
/// A value fed facts and injected time; `TunnelManager` reviews every used peer about four
/// times a second and carries the actions out. A peer counts as unreachable only after it has
/// been up for `settle`: a relay's or the peer's own next announcement (a NAT mapping learned a
/// moment after start) may still bring a path.
struct NoPathWatch: Sendable {
    /// How hole punching stands towards a peer.
    enum Punching: Sendable, Equatable {
        /// Cannot be tried; why (no `nat-traversal` socket here, none announced by the peer).
        case unavailable(String)
        /// A round is under way or about to start, or a punched link is up.
        case possible
        /// The last round failed; the next is a backoff away.
        case failed
    }

    /// What the manager knows of one peer now.
    struct Facts: Sendable, Equatable {
        /// Up in the directory.
        var up: Bool
        /// This site uses its apps (only then is a missing path worth a word).
        var used: Bool
        /// The tunnel to it has a link.
        var linked: Bool
        /// Direct paths to it in the dial plan.
        var directPaths: Int
        /// This site announces an endpoint the peer may dial.
        var announcesEndpoints: Bool
        /// Relays the peer can be reached through (itself not counted).
        var relays: Int
        var punching: Punching
    }

    enum Action: Sendable, Equatable {
        /// The peer has no path now: say so, and refuse its waiting clients with `reason`.
        case noPath(peer: String, reason: String)
        /// A path is possible again.
        case pathPossible(peer: String)
    }

    static let settle: Duration = .seconds(5)

    private var upSince: [String: ContinuousClock.Instant] = [:]
    /// The reason given for each peer without a path.
    private(set) var reasons: [String: String] = [:]

    /// The reason `peer`'s clients are refused, or nil while a path exists or may come.
    func reason(for peer: String) -> String? { reasons[peer] }

    /// Why there is no path to `peer` with these facts, or nil.
    static func missingPath(to peer: String, _ facts: Facts) -> String? {
        guard facts.up, facts.used, !facts.linked, facts.directPaths == 0, !facts.announcesEndpoints,
            facts.relays == 0
        else { return nil }
        let punching: String
        switch facts.punching {
        case .possible: return nil
        case .failed: punching = "punching failed"
        case .unavailable(let why): punching = "no punching (\(why))"
        }
        return "no path to \(peer): no endpoint, \(punching), no relay"
    }

    /// Looks at `peer` again.
    mutating func review(_ peer: String, _ facts: Facts, now: ContinuousClock.Instant) -> [Action] {
        if facts.up {
            if upSince[peer] == nil { upSince[peer] = now }
        } else {
            upSince[peer] = nil
        }
        var reason = Self.missingPath(to: peer, facts)
        if let since = upSince[peer], now - since < Self.settle, reasons[peer] == nil { reason = nil }
        guard reason != reasons[peer] else { return [] }
        reasons[peer] = reason
        if let reason { return [.noPath(peer: peer, reason: reason)] }
        return [.pathPossible(peer: peer)]
    }

    /// A peer no longer looked at (not used, forgotten): its state goes.
    mutating func forget(_ peer: String) -> [Action] {
        upSince[peer] = nil
        guard reasons.removeValue(forKey: peer) != nil else { return [] }
        return [.pathPossible(peer: peer)]
    }

    /// Peers looked at so far.
    var peers: Set<String> { Set(upSince.keys).union(reasons.keys) }
}
