import WeftDiscovery
import WeftIdentity
import WeftTransport
import WeftWire

/// Decides which links this site dials to which peer, from what the directory and the apps
/// say. A value with no sockets, clocks or locks: events go in, actions come out, and
/// `TunnelManager` carries them out (the `LinkPlacement` way), so each case is unit-tested.
///
/// Who dials: a site dials the peers whose apps it uses, and a site that exposes apps but
/// announces no endpoint of its own (nobody can dial it) dials every peer that announces one.
/// Each wanted link (`LinkPath`) gets a *dial run*, a numbered loop that dials, holds the link
/// and backs off until the planner stops it. A peer that is down or no longer used keeps its
/// runs: they stop by themselves once their link closes (`dialTarget` says so), since the
/// tunnel may still carry streams.
///
/// Relays (issue 18): every site keeps a tunnel to the relays of the mesh (peers announcing
/// `SiteAnnouncement.relaysLinks` and an endpoint, at most `maxRelays`), and each peer it dials
/// whose apps it uses gets, beside its direct paths, one relayed path through each of them but
/// itself. Whether a relayed path dials is the run's to decide (`PathDialer`):
/// only while the tunnel has no direct link.
public struct DialPlanner: Sendable {
    /// What the manager does for the planner.
    public enum Action: Sendable, Hashable {
        /// Start a dial run for `path` to `peer`.
        case startDialing(peer: String, path: LinkPath, run: UInt64)
        /// Wake a run waiting out its backoff: dial now (the announcement or the tunnel changed).
        case kick(run: UInt64)
        /// End a run and close its link: the path is no longer in the plan.
        case stopDialing(run: UInt64)
        /// End the tunnel to `peer`: it stopped, or it is no longer trusted.
        case closeTunnel(peer: String, reason: String)
        /// The peer announced endpoints that are not dialed (each with why); logged once per change.
        case endpointsRefused(peer: String, lines: [String])
        /// The peer announces nothing to dial; `used` when this site uses its apps (worth a notice).
        case nothingToDial(peer: String, used: Bool)
        /// The plan was cut to `maxPathsTotal`.
        case pathLimitReached(peer: String)
    }

    private struct Peer: Sendable {
        var info: PeerInfo?
        var up = false
        /// The dial run of every path in the plan.
        var runs: [LinkPath: UInt64] = [:]
        /// The refused endpoints last reported, so an announcement's refusals are logged once.
        var refusedReported: [String] = []
    }

    /// Paths this site dials at most, all peers together: members announcing many endpoints
    /// cannot make it hold sockets without end.
    public static let maxPathsTotal = 1024
    /// Relays this site keeps a tunnel to, and relays a peer is reached through, at most.
    public static let maxRelays = 2

    public let localAddresses: [IPAddress]
    public let linksPerPath: Int
    public private(set) var policy: EndpointPolicy
    public private(set) var usedSites: Set<String>
    public private(set) var exposesApps: Bool
    public private(set) var announcesEndpoints: Bool
    public private(set) var stopped = false
    private var peers: [String: Peer] = [:]
    private var lastRun: UInt64 = 0
    /// Paths of every peer, kept in step with `peers` (the total cap reads it).
    private var pathCount = 0

    public init(
        usedSites: Set<String>, exposesApps: Bool, announcesEndpoints: Bool, localAddresses: [IPAddress] = [],
        linksPerPath: Int = 1, policy: EndpointPolicy = EndpointPolicy()
    ) {
        self.usedSites = usedSites
        self.exposesApps = exposesApps
        self.announcesEndpoints = announcesEndpoints
        self.localAddresses = localAddresses
        self.linksPerPath = linksPerPath
        self.policy = policy
    }

    // MARK: events in

    /// The directory saw a peer come, change or go.
    public mutating func directory(_ event: DirectoryEvent) -> [Action] {
        guard !stopped else { return [] }
        let name = event.siteName
        var peer = peers[name] ?? Peer()
        var actions: [Action] = []
        switch event {
        case .rendezvous:
            return []  // for the hole puncher
        case .up(let info), .changed(let info):
            // A restart needs no action here: the restarted side's new tunnel replaces ours
            // (`LinkPlacement`), or our next dial into the old one is refused as unknown and
            // ours ends; the kick `reconcile` gives makes that dial now. Closing on the
            // announcement could end a new tunnel that was already made with it.
            peer.info = info
            peer.up = true
        case .down(_, let reason):
            peer.up = false
            if reason == .untrusted || reason == .revoked || reason == .expired {
                // Its certificate is no longer accepted on a link either.
                peer.info = nil
            }
            let why: String? =
                switch reason {
                case .stopped: "stopped"
                case .untrusted: "is no longer trusted"
                case .revoked: "was revoked"
                case .expired: "presents an expired certificate"
                case .vanished, .timedOut: nil
                }
            if let why { actions.append(.closeTunnel(peer: name, reason: "\(name) \(why)")) }
        }
        let relaysBefore = relays
        peers[name] = peer
        if relays != relaysBefore { return actions + reconcileAll() }
        actions += reconcile(&peer, name: name)
        peers[name] = peer
        return actions
    }

    /// This site's own endpoints changed (public address detection).
    public mutating func ownEndpoints(announced: Bool) -> [Action] {
        guard !stopped, announcesEndpoints != announced else { return [] }
        announcesEndpoints = announced
        return reconcileAll()
    }

    /// This site's Bluetooth adapters changed (one that was missing or down at start came
    /// up): Bluetooth endpoints are planned with them from now on, and runs dial from them.
    public mutating func ownAdapters(_ adapters: [BluetoothAddress]) -> [Action] {
        guard !stopped, policy.ownAdapters != adapters else { return [] }
        policy.ownAdapters = adapters
        return reconcileAll()
    }

    /// The apps changed at runtime (API, reload): sites now used are dialed at once. A site no
    /// longer used is no longer dialed once its links close.
    public mutating func apps(usedSites: Set<String>, exposesApps: Bool) -> [Action] {
        guard !stopped else { return [] }
        self.usedSites = usedSites
        self.exposesApps = exposesApps
        return reconcileAll()
    }

    /// The tunnel to `peer` was replaced or lost: every run waiting to dial the old one dials now.
    public func kickAll(_ name: String) -> [Action] {
        guard let peer = peers[name] else { return [] }
        return peer.runs.values.sorted().map { .kick(run: $0) }
    }

    /// Something changed for one transport (a USB gadget plugged in): every run dialing over it
    /// dials now.
    public func kickAll(over transport: LinkEndpoint.Kind) -> [Action] {
        peers.values.flatMap { $0.runs.filter { $0.key.remote.transport == transport }.values }.sorted().map {
            .kick(run: $0)
        }
    }

    /// The site stops: every run ends.
    public mutating func stop() -> [Action] {
        guard !stopped else { return [] }
        stopped = true
        let runs = peers.values.flatMap(\.runs.values).sorted()
        peers.removeAll()
        pathCount = 0
        return runs.map { .stopDialing(run: $0) }
    }

    // MARK: questions from the dial runs and the acceptor

    /// What run `run` dials next, or nil when it should end (the path left the plan, the peer is
    /// down or no longer dialed); a run that ends is forgotten.
    public mutating func dialTarget(peer name: String, path: LinkPath, run: UInt64) -> PeerInfo? {
        guard !stopped, var peer = peers[name], peer.runs[path] == run else { return nil }
        guard peer.up, let info = peer.info, wantsToDial(name) else {
            peer.runs[path] = nil
            pathCount -= 1
            peers[name] = peer
            return nil
        }
        return info
    }

    /// Ends run `run` of `path` (it cannot dial); the path counts no more.
    public mutating func drop(peer name: String, path: LinkPath, run: UInt64) {
        guard var peer = peers[name], peer.runs[path] == run else { return }
        peer.runs[path] = nil
        pathCount -= 1
        peers[name] = peer
    }

    /// Whether run `run` is still the one for `path` (a dial in flight for an old run is dropped).
    public func isCurrent(peer name: String, path: LinkPath, run: UInt64) -> Bool {
        !stopped && peers[name]?.runs[path] == run
    }

    /// The announcement this site last believed for `peer`, up or not (links from it are
    /// accepted until it is forgotten or no longer trusted).
    public func info(of name: String) -> PeerInfo? {
        stopped ? nil : peers[name]?.info
    }

    /// Whether any known peer announced `fingerprint`: links from anyone else are refused
    /// before their handshake.
    public func knows(_ fingerprint: CertificateFingerprint) -> Bool {
        !stopped && peers.values.contains { $0.info?.fingerprint == fingerprint }
    }

    /// Whether the directory has `peer` up now.
    public func isUp(_ name: String) -> Bool {
        peers[name]?.up ?? false
    }

    /// Dial runs in the plan now, all peers together.
    public var runCount: Int { pathCount }

    // MARK: planning

    /// Whether this site wants a tunnel to `name` now (it is up and dialed by the rules above):
    /// the hole puncher's question.
    public func wantsTunnel(to name: String) -> Bool {
        !stopped && isUp(name) && wantsToDial(name)
    }

    /// Direct (not relayed) paths to `name` in the plan now.
    public func directPaths(to name: String) -> Int {
        peers[name]?.runs.keys.count { $0.remote.transport != .relay } ?? 0
    }

    /// The peers up now.
    public var upPeers: [PeerInfo] {
        peers.values.filter(\.up).compactMap(\.info)
    }

    private func wantsToDial(_ name: String) -> Bool {
        usedSites.contains(name) || (exposesApps && !announcesEndpoints) || relays.contains(name)
    }

    /// The relays of the mesh this site uses: peers up that announce they relay and announce
    /// an endpoint to dial (a relay nobody can reach relays nothing), first `maxRelays` by name.
    public var relays: [String] {
        Array(
            peers.filter { name, peer in
                guard peer.up, let announcement = peer.info?.announcement else { return false }
                return announcement.capabilities & SiteAnnouncement.relaysLinks != 0
                    && announcement.endpoints.contains { $0.linkType != .relay && $0.linkType != .punch }
            }.keys.sorted().prefix(Self.maxRelays))
    }

    private mutating func reconcileAll() -> [Action] {
        var actions: [Action] = []
        for name in peers.keys.sorted() {
            guard var peer = peers[name] else { continue }
            actions += reconcile(&peer, name: name)
            peers[name] = peer
        }
        return actions
    }

    /// Brings a peer's runs in line with what it announces: new paths start, paths no longer
    /// in the plan stop, the rest are kicked so a waiting one dials now.
    private mutating func reconcile(_ peer: inout Peer, name: String) -> [Action] {
        guard peer.up, let info = peer.info, wantsToDial(name) else { return [] }
        var actions: [Action] = []
        var refused = LinkPath.refused(endpoints: info.announcement.endpoints, policy: policy)
            .map { "\($0.endpoint): \($0.refusal)" }
        if info.announcement.skippedEndpoints > 0 {
            refused.append(
                "\(info.announcement.skippedEndpoints) endpoint(s) of a link type this build does not know (a newer weft?): skipped"
            )
        }
        if refused != peer.refusedReported {
            peer.refusedReported = refused
            if !refused.isEmpty { actions.append(.endpointsRefused(peer: name, lines: refused)) }
        }
        var wanted = LinkPath.plan(
            endpoints: info.announcement.endpoints, localAddresses: localAddresses, linksPerPath: linksPerPath,
            policy: policy)
        // A site whose apps this site uses is also dialed through each relay but itself: such
        // a run dials only while the tunnel has no direct link (a relay is kept for its own sake).
        if usedSites.contains(name) {
            wanted += relays.filter { $0 != name }.map { LinkPath(remote: .relay(via: $0, to: name)) }
        }
        let others = pathCount - peer.runs.count
        if others + wanted.count > Self.maxPathsTotal {
            actions.append(.pathLimitReached(peer: name))
            wanted = Array(wanted.prefix(max(0, Self.maxPathsTotal - others)))
        }
        if wanted.isEmpty { actions.append(.nothingToDial(peer: name, used: usedSites.contains(name))) }
        let wantedSet = Set(wanted)
        for (path, run) in peer.runs.sorted(by: { $0.value < $1.value }) where !wantedSet.contains(path) {
            peer.runs[path] = nil
            pathCount -= 1
            actions.append(.stopDialing(run: run))
        }
        for path in wanted {
            if let run = peer.runs[path] {
                actions.append(.kick(run: run))
            } else {
                lastRun += 1
                peer.runs[path] = lastRun
                pathCount += 1
                actions.append(.startDialing(peer: name, path: path, run: lastRun))
            }
        }
        return actions
    }
}
