import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftDiscovery
import WeftIdentity
import WeftTransport
import WeftTunnel
import WeftWire

/// Keeps one tunnel per peer that this site shares apps with, fed by the directory.
///
/// Who dials: a site dials the peers whose apps it uses, and a site that exposes apps but
/// announces no endpoint of its own (nobody can dial it) dials every peer that announces one.
/// Links accepted from a known peer join its tunnel whichever side dialed, so both directions
/// may be in use at once.
///
/// Each link the plan wants (`LinkPath`) has its own loop: dial, hold the link until it
/// closes, wait a backoff (1 s doubling to 30 s, jittered), again. An announcement that changes
/// re-dials at once; a peer that goes away is no longer dialed.
///
/// A tunnel outlives its links: streams wait for a link to come back (no byte lost) for the
/// engine's grace period (60 s). It ends sooner when the peer is known to be gone: it stopped,
/// it restarted (a new incarnation in its announcement), or the directory lost it and no link
/// has been up for `deadPeerGrace`. Each side names its half of a tunnel with a fresh random
/// incarnation (see `LinkHandshake`), so a tunnel ended at one side is never mistaken for the
/// old one at the other: the other side's next link is refused or starts a new tunnel.
public final class TunnelManager: Sendable {
    public struct Configuration: Sendable {
        public var siteName: String
        /// Sites whose apps this site uses: it dials them.
        public var usedSites: Set<String>
        /// Whether this site exposes apps (then, without an endpoint of its own, it dials all).
        public var exposesApps: Bool
        /// Local addresses to dial from; empty lets the OS choose.
        public var localAddresses: [IPAddress]
        public var linksPerPath: Int
        public var tunnel: TunnelConfiguration
        public var backoff: Backoff
        /// How long an exposed app may take to accept a connection.
        public var appConnectTimeout: TimeAmount
        /// A tunnel to a peer the directory has lost ends after this long without a link.
        public var deadPeerGrace: Duration
        /// Which announced endpoints are dialed (this site's own listeners among the refused).
        public var endpointPolicy: EndpointPolicy

        public init(
            siteName: String,
            usedSites: Set<String>,
            exposesApps: Bool,
            localAddresses: [IPAddress] = [],
            linksPerPath: Int = 1,
            tunnel: TunnelConfiguration = TunnelConfiguration(),
            backoff: Backoff = Backoff(),
            appConnectTimeout: TimeAmount = .seconds(10),
            deadPeerGrace: Duration = .seconds(10),
            endpointPolicy: EndpointPolicy = EndpointPolicy()
        ) {
            self.deadPeerGrace = deadPeerGrace
            self.endpointPolicy = endpointPolicy
            self.siteName = siteName
            self.usedSites = usedSites
            self.exposesApps = exposesApps
            self.localAddresses = localAddresses
            self.linksPerPath = linksPerPath
            self.tunnel = tunnel
            self.backoff = backoff
            self.appConnectTimeout = appConnectTimeout
        }
    }

    private struct PathRun {
        var run: UInt64
        var kicks: UInt64 = 0
        var channel: Channel?
        var failures = 0
    }

    private struct Peer {
        var info: PeerInfo?
        var up = false
        var driver: TunnelDriver?
        var paths: [LinkPath: PathRun] = [:]
        /// Since when a lost peer's tunnel has had no link.
        var linklessSince: ContinuousClock.Instant?
        /// The refused endpoints last logged, so an announcement's refusals are logged once.
        var refusedLogged: [String] = []
    }

    private struct State {
        var peers: [String: Peer] = [:]
        var announcesEndpoints: Bool
        /// Start as configured; the API and a reload change them (`appsChanged`).
        var usedSites: Set<String>
        var exposesApps: Bool
        var stopped = false
        var nextRun: UInt64 = 0
        var nextLinkNumber: UInt32 = 0
    }

    /// Links one tunnel accepts at most (a pinned peer still cannot open sockets without end).
    public static let maxLinksPerTunnel = 64
    /// Paths this site dials at most, all peers together: members announcing many endpoints
    /// cannot make it hold sockets without end.
    public static let maxPathsTotal = 1024

    public let configuration: Configuration
    public let site: LocalLinkSite
    private let group: EventLoopGroup
    /// The group's loops, in a fixed order: each peer's tunnels live on one of them.
    private let loops: [EventLoop]
    private let apps: ExposedAppServer
    /// The site's sockets for streams: app connections here, clients of remote apps.
    public var socketBudget: SocketBudget { apps.sockets }
    private let logger: Logger
    private let state: NIOLockedValueBox<State>

    public init(
        configuration: Configuration,
        site: LocalLinkSite,
        exposedApps: [ExposedAppConfig],
        announcesEndpoints: Bool,
        group: EventLoopGroup,
        sockets: SocketBudget = SocketBudget(limit: 4096),
        logger: Logger
    ) {
        self.configuration = configuration
        self.site = site
        self.group = group
        self.loops = Array(group.makeIterator())
        self.logger = logger
        self.apps = ExposedAppServer(
            registry: ExposedAppRegistry(exposedApps), connectTimeout: configuration.appConnectTimeout,
            sockets: sockets, logger: logger)
        self.state = NIOLockedValueBox(
            State(
                announcesEndpoints: announcesEndpoints, usedSites: configuration.usedSites,
                exposesApps: configuration.exposesApps))
    }

    // MARK: the directory

    /// Follows the directory: dial, re-dial, replace or stop tunnels.
    public func handle(_ event: DirectoryEvent) {
        if case .down(let name, .vanished) = event,
            let driver = state.withLockedValue({ $0.peers[name]?.driver }), driver.establishedLinks > 0
        {
            // A last will says the site's broker connection died (or a broker replayed it).
            // The tunnel is not closed for it: it lasts while its links do, and the reaper ends
            // it only once they are gone too; the site's next announcement brings it back up.
            logger.notice(
                "last will of a peer whose links are up: its tunnel stays while they do",
                metadata: ["peer": "\(name)", "links": "\(driver.establishedLinks)"])
        }
        var closing: [(TunnelDriver, String)] = []
        var starting: [(String, LinkPath, UInt64)] = []
        state.withLockedValue { state in
            guard !state.stopped else { return }
            let name = event.siteName
            var peer = state.peers[name] ?? Peer()
            switch event {
            case .up(let info), .changed(let info):
                // A restart needs no action here: the restarted side's new tunnel replaces
                // ours (`LinkPlacement`), or our next dial into the old one is refused as
                // unknown and ours ends; the kick below makes that dial now. Closing on the
                // announcement could end a new tunnel that was already made with it.
                peer.info = info
                peer.up = true
                peer.linklessSince = nil
            case .down(_, let reason):
                peer.up = false
                if reason == .untrusted {
                    // Its certificate is no longer accepted on a link either.
                    peer.info = nil
                }
                if reason == .stopped || reason == .untrusted, let driver = peer.driver {
                    closing.append((driver, "\(name) \(reason == .stopped ? "stopped" : "is no longer trusted")"))
                    peer.driver = nil
                }
            }
            starting = reconcile(&peer, name: name, state: &state)
            state.peers[name] = peer
        }
        for (driver, reason) in closing { close(driver, reason: reason) }
        for (name, path, run) in starting { startPath(path, peer: name, run: run) }
    }

    /// This site's own endpoints changed (public address detection).
    public func ownEndpointsChanged(announced: Bool) {
        var starting: [(String, LinkPath, UInt64)] = []
        state.withLockedValue { state in
            guard state.announcesEndpoints != announced else { return }
            state.announcesEndpoints = announced
            for name in state.peers.keys {
                var peer = state.peers[name]!
                starting += reconcile(&peer, name: name, state: &state)
                state.peers[name] = peer
            }
        }
        for (name, path, run) in starting { startPath(path, peer: name, run: run) }
    }

    /// The apps changed at runtime (API, reload): peers are served with the new exposed apps
    /// from their next stream on, sites now used are dialed at once. A site no longer used is
    /// no longer dialed once its links close; its tunnel is left alone (it may carry streams).
    public func appsChanged(usedSites: Set<String>, exposedApps: [ExposedAppConfig]) {
        apps.update(ExposedAppRegistry(exposedApps))
        var starting: [(String, LinkPath, UInt64)] = []
        state.withLockedValue { state in
            state.usedSites = usedSites
            state.exposesApps = !exposedApps.isEmpty
            for name in state.peers.keys {
                var peer = state.peers[name]!
                starting += reconcile(&peer, name: name, state: &state)
                state.peers[name] = peer
            }
        }
        for (name, path, run) in starting { startPath(path, peer: name, run: run) }
    }

    /// Every tunnel as it is now, by peer name.
    public func tunnelSnapshots() async -> [TunnelSnapshot] {
        let drivers = state.withLockedValue { state in state.peers.values.compactMap(\.driver) }
        var snapshots: [TunnelSnapshot] = []
        for driver in drivers {
            if let snapshot = try? await driver.eventLoop.submit({ driver.snapshot() }).get() {
                snapshots.append(snapshot)
            }
        }
        return snapshots.sorted { $0.peer < $1.peer }
    }

    /// Ends the open streams of an exposed app (it was removed or changed); returns how many.
    @discardableResult
    public func endStreams(ofExposedApp name: String) -> Int {
        apps.connections.abortAll(name)
    }

    /// The current tunnel to `peer`, with or without links.
    public func currentTunnel(to peer: String) -> TunnelDriver? {
        state.withLockedValue { state in state.peers[peer]?.driver }
    }

    private func wantsToDial(_ name: String, state: State) -> Bool {
        state.usedSites.contains(name) || (state.exposesApps && !state.announcesEndpoints)
    }

    /// Brings a peer's dialing loops in line with what it announces: new paths start, paths no
    /// longer in the plan stop (their link closed), the rest are kicked so a waiting one dials
    /// now. A peer that is down or no longer dialed keeps its links: its loops end by
    /// themselves once their link closes (`nextDial`), since the tunnel may still be in use.
    private func reconcile(_ peer: inout Peer, name: String, state: inout State) -> [(String, LinkPath, UInt64)] {
        guard peer.up, let info = peer.info, wantsToDial(name, state: state) else { return [] }
        let refused = LinkPath.refused(endpoints: info.announcement.endpoints, policy: configuration.endpointPolicy)
        let refusedLines = refused.map { "\($0.endpoint): \($0.refusal)" }
        if refusedLines != peer.refusedLogged {
            peer.refusedLogged = refusedLines
            for line in refusedLines {
                logger.warning(
                    "not dialing an endpoint the peer announced", metadata: ["peer": "\(name)", "endpoint": "\(line)"])
            }
        }
        var wanted = LinkPath.plan(
            endpoints: info.announcement.endpoints, localAddresses: configuration.localAddresses,
            linksPerPath: configuration.linksPerPath, policy: configuration.endpointPolicy)
        let othersPaths = state.peers.reduce(0) { $0 + ($1.key == name ? 0 : $1.value.paths.count) }
        if othersPaths + wanted.count > Self.maxPathsTotal {
            logger.warning(
                "too many paths to dial; dialing fewer to this peer",
                metadata: ["peer": "\(name)", "limit": "\(Self.maxPathsTotal)"])
            wanted = Array(wanted.prefix(max(0, Self.maxPathsTotal - othersPaths)))
        }
        if wanted.isEmpty {
            // Worth a notice only for a peer whose apps this site uses.
            logger.log(
                level: state.usedSites.contains(name) ? .notice : .debug,
                "peer announces no endpoint to dial; waiting for it to dial this site",
                metadata: ["peer": "\(name)"])
        }
        let wantedSet = Set(wanted)
        for (path, run) in peer.paths where !wantedSet.contains(path) {
            peer.paths[path] = nil
            // Closed from an event loop's task queue, never under this lock.
            if let channel = run.channel { channel.eventLoop.execute { channel.close(promise: nil) } }
        }
        var starting: [(String, LinkPath, UInt64)] = []
        for path in wanted {
            if peer.paths[path] == nil {
                state.nextRun += 1
                peer.paths[path] = PathRun(run: state.nextRun)
                starting.append((name, path, state.nextRun))
            } else {
                peer.paths[path]!.kicks += 1
            }
        }
        return starting
    }

    // MARK: dialing

    private struct DialJob {
        var driver: TunnelDriver
        var target: LinkDialer.Target
        var linkNumber: UInt32
        var kicks: UInt64
    }

    private func startPath(_ path: LinkPath, peer: String, run: UInt64) {
        Task { await self.runPath(path, peer: peer, run: run) }
    }

    /// One link's life: dial, hold, back off, until the path is no longer wanted.
    private func runPath(_ path: LinkPath, peer name: String, run: UInt64) async {
        var logger = self.logger
        logger[metadataKey: "peer"] = "\(name)"
        logger[metadataKey: "path"] = "\(path)"
        var backoff = configuration.backoff
        while let job = nextDial(path, peer: name, run: run) {
            let started = ContinuousClock.now
            let channelBox = NIOLockedValueBox<Channel?>(nil)
            let driver = job.driver
            do {
                _ = try await LinkDialer.dial(
                    job.target, on: driver.eventLoop, site: site, linkNumber: job.linkNumber,
                    stillWanted: { self.isCurrent(driver, path: path, peer: name, run: run) }
                ) { channel, established in
                    guard self.linkDialed(channel, established, path: path, peer: name, run: run, driver: driver) else {
                        channel.close(promise: nil)
                        return
                    }
                    channelBox.withLockedValue { $0 = channel }
                    driver.attach(channel, leftover: established.leftover)
                }.get()
                if let channel = channelBox.withLockedValue({ $0 }) {
                    recordOutcome(path, peer: name, run: run, failed: false)
                    logger.info("link dialed", metadata: ["link": "\(job.linkNumber)"])
                    try? await channel.closeFuture.get()
                    if ContinuousClock.now - started >= .seconds(10) { backoff.reset() }
                }
            } catch {
                if let refusal = (error as? LinkError)?.refusal, refusal.reason == .unknownTunnel {
                    tunnelUnknownAtPeer(driver, peer: name, reason: refusal.message)
                }
                let failures = recordOutcome(path, peer: name, run: run, failed: true)
                if failures == 1 {
                    logger.warning("cannot dial a link; retrying with backoff", metadata: ["error": "\(error)"])
                } else {
                    logger.debug("cannot dial a link", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                }
            }
            await sleep(backoff.next(), path: path, peer: name, run: run, kicks: job.kicks)
        }
    }

    /// What to dial next on a path, or nil when it should stop. Creates the tunnel on first use.
    private func nextDial(_ path: LinkPath, peer name: String, run: UInt64) -> DialJob? {
        var closing: TunnelDriver?
        let job = state.withLockedValue { state -> DialJob? in
            guard !state.stopped, var peer = state.peers[name], let pathRun = peer.paths[path], pathRun.run == run
            else { return nil }
            guard peer.up, let info = peer.info, wantsToDial(name, state: state) else {
                peer.paths[path] = nil
                state.peers[name] = peer
                return nil
            }
            if let driver = peer.driver, driver.isEnded {
                closing = driver
                peer.driver = nil
            }
            let driver = peer.driver ?? makeDriver(peer: name)
            peer.driver = driver
            peer.paths[path]!.channel = nil
            state.peers[name] = peer
            state.nextLinkNumber &+= 1
            let local = path.local.flatMap { try? SocketAddress(ipAddress: $0.description, port: 0) }
            guard let remote = try? SocketAddress(ipAddress: path.remote.address.description, port: path.remote.port)
            else {
                state.peers[name]!.paths[path] = nil
                return nil
            }
            return DialJob(
                driver: driver,
                target: LinkDialer.Target(
                    address: remote, localAddress: local, peerSite: name, peerIncarnation: driver.peerIncarnation,
                    localIncarnation: driver.localIncarnation, fingerprint: info.fingerprint),
                linkNumber: state.nextLinkNumber,
                kicks: pathRun.kicks
            )
        }
        if let closing { close(closing, reason: "tunnel ended") }
        return job
    }

    /// The peer has no tunnel matching ours (it restarted, or ended its half): ours ends too,
    /// and the next link starts a new one.
    private func tunnelUnknownAtPeer(_ driver: TunnelDriver, peer name: String, reason: String) {
        let current = state.withLockedValue { state -> Bool in
            guard state.peers[name]?.driver === driver else { return false }
            state.peers[name]!.driver = nil
            for path in state.peers[name]!.paths.keys { state.peers[name]!.paths[path]!.kicks += 1 }
            return true
        }
        if current { close(driver, reason: "\(name) no longer has this tunnel: \(reason)") }
    }

    /// Whether a dial in flight is still for the current tunnel and path. A hello asking for a
    /// tunnel this side has already replaced would make the peer replace its healthy one.
    private func isCurrent(_ driver: TunnelDriver, path: LinkPath, peer name: String, run: UInt64) -> Bool {
        state.withLockedValue { state in
            !state.stopped && state.peers[name]?.paths[path]?.run == run && state.peers[name]?.driver === driver
        }
    }

    /// A dialed link finished its handshake: keep it only if its path and tunnel are current.
    private func linkDialed(
        _ channel: Channel, _ established: LinkHandshake.Established, path: LinkPath, peer name: String, run: UInt64,
        driver: TunnelDriver
    ) -> Bool {
        state.withLockedValue { state in
            guard !state.stopped, state.peers[name]?.paths[path]?.run == run, state.peers[name]?.driver === driver,
                driver.adopt(peerIncarnation: established.peerIncarnation)
            else { return false }
            state.peers[name]!.paths[path]!.channel = channel
            return true
        }
    }

    @discardableResult
    private func recordOutcome(_ path: LinkPath, peer name: String, run: UInt64, failed: Bool) -> Int {
        state.withLockedValue { state in
            guard state.peers[name]?.paths[path]?.run == run else { return 0 }
            if failed {
                state.peers[name]!.paths[path]!.failures += 1
            } else {
                state.peers[name]!.paths[path]!.failures = 0
            }
            return state.peers[name]!.paths[path]!.failures
        }
    }

    /// Waits out a backoff, cut short when the path is kicked (the announcement changed).
    private func sleep(_ duration: Duration, path: LinkPath, peer name: String, run: UInt64, kicks: UInt64) async {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline {
            let current = state.withLockedValue { state -> Bool in
                guard !state.stopped, let pathRun = state.peers[name]?.paths[path], pathRun.run == run else {
                    return false
                }
                return pathRun.kicks == kicks
            }
            guard current else { return }
            try? await Task.sleep(for: min(.milliseconds(100), deadline - ContinuousClock.now))
        }
    }

    // MARK: accepting

    /// The listener's handlers: only pinned peers, as the site their certificate belongs to.
    public var listenerHandlers: LinkListener.Handlers {
        LinkListener.Handlers(
            trusts: { fingerprint in
                self.state.withLockedValue { state in
                    !state.stopped && state.peers.values.contains { $0.info?.fingerprint == fingerprint }
                }
            },
            decide: { hello, fingerprint in self.decide(hello, fingerprint) },
            onLink: { channel, established in self.linkAccepted(channel, established) }
        )
    }

    /// Which half of which tunnel an accepted link joins (see the type's doc): the current
    /// tunnel when the hello names it or asks for a new one that it already is; a new tunnel
    /// (the old one ended) when the dialer started a new one; a refusal when the hello names a
    /// tunnel that is gone here, so the dialer starts a new one.
    private func decide(_ hello: LinkHello, _ fingerprint: CertificateFingerprint) -> LinkDecision {
        var closing: TunnelDriver?
        let decision = state.withLockedValue { state -> LinkDecision in
            guard !state.stopped else { return .refuse(.shuttingDown, "the site is stopping") }
            let name = hello.siteName
            guard var peer = state.peers[name], let known = peer.info?.fingerprint else {
                return .refuse(.wrongIdentity, "\(name) is not in this site's directory")
            }
            guard known == fingerprint else {
                return .refuse(.wrongIdentity, "that certificate is not the one \(name) announced")
            }
            let current = peer.driver.flatMap { driver in
                driver.isEnded
                    ? nil
                    : LinkPlacement.Current(
                        localIncarnation: driver.localIncarnation, peerIncarnation: driver.peerIncarnation)
            }
            switch LinkPlacement.place(hello, acceptor: site.siteName, current: current) {
            case .join(let incarnation):
                // Learn the dialer's half now, so a second new-tunnel hello from another half
                // cannot join too.
                guard let driver = peer.driver, driver.adopt(peerIncarnation: hello.incarnation) else {
                    return .refuse(.unknownTunnel, "this tunnel belongs to another half of \(name)")
                }
                guard driver.establishedLinks < Self.maxLinksPerTunnel else {
                    return .refuse(.tooManyLinks, "\(Self.maxLinksPerTunnel) links is the most one tunnel takes")
                }
                return .acceptInto(incarnation: incarnation)
            case .refuse(let reason):
                return .refuse(.unknownTunnel, reason)
            case .replace:
                closing = peer.driver
            case .create:
                break
            }
            // A peer whose apps this site does not use reaches it only through links it dials
            // here: the tunnel lives on this first link's loop, so at least it never hops.
            let loop =
                state.usedSites.contains(name)
                ? eventLoop(for: name) : MultiThreadedEventLoopGroup.currentEventLoop ?? eventLoop(for: name)
            let driver = makeDriver(peer: name, peerIncarnation: hello.incarnation, on: loop)
            peer.driver = driver
            peer.linklessSince = nil
            // Paths waiting to dial the old tunnel dial this one now.
            for path in peer.paths.keys { peer.paths[path]!.kicks += 1 }
            state.peers[name] = peer
            return .acceptInto(incarnation: driver.localIncarnation)
        }
        if let closing { close(closing, reason: "\(hello.siteName) started a new tunnel") }
        return decision
    }

    /// On the link's event loop, at once: attach the link to the tunnel it was accepted into.
    private func linkAccepted(_ channel: Channel, _ established: LinkHandshake.Established) {
        let name = established.peerSite
        let driver = state.withLockedValue { state -> TunnelDriver? in
            guard !state.stopped, let driver = state.peers[name]?.driver,
                driver.localIncarnation == established.localIncarnation,
                driver.adopt(peerIncarnation: established.peerIncarnation)
            else { return nil }
            return driver
        }
        guard let driver else {
            channel.close(promise: nil)
            return
        }
        driver.attach(channel, leftover: established.leftover, dialed: false)
    }

    // MARK: tunnels

    /// The event loop of every tunnel to `peer`, of the links it dials and of the clients of
    /// its remote apps: data between an app socket and a link then never hops between threads
    /// (links the peer dials to us are the exception; they hop once). Peers spread over the
    /// loops by a stable hash of their name.
    public func eventLoop(for peer: String) -> EventLoop {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: stable across runs, unlike Hasher
        for byte in peer.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return loops.isEmpty ? group.next() : loops[Int(hash % UInt64(loops.count))]
    }

    /// A new half of a tunnel, with a fresh random incarnation (never the unknown marker).
    private func makeDriver(
        peer name: String, peerIncarnation: UInt64 = LinkHandshake.unknownIncarnation, on loop: EventLoop? = nil
    ) -> TunnelDriver {
        let driver = TunnelDriver(
            eventLoop: loop ?? eventLoop(for: name),
            localIncarnation: UInt64.random(in: 1...UInt64.max),
            peerSite: name,
            peerIncarnation: peerIncarnation,
            options: .init(configuration: configuration.tunnel, opensOddStreams: site.siteName < name),
            logger: logger
        )
        let apps = self.apps
        driver.onIncomingStream = { [unowned driver] id, appName, target in
            apps.open(id, appName: appName, target: target, on: driver)
        }
        driver.onFailed = { [weak self, weak driver] (_: String) in
            guard let self, let driver else { return }
            self.state.withLockedValue { state in
                if state.peers[name]?.driver === driver { state.peers[name]!.driver = nil }
            }
        }
        logger.info(
            "tunnel created",
            metadata: ["peer": "\(name)", "incarnation": "\(String(driver.localIncarnation, radix: 16))"])
        return driver
    }

    private func close(_ driver: TunnelDriver, reason: String) {
        logger.info("closing tunnel", metadata: ["peer": "\(driver.peerSite)", "reason": "\(reason)"])
        driver.eventLoop.execute { driver.close(reason: reason) }
    }

    /// The tunnel to `site` once it has a link, waiting up to `timeout` for one; nil if none came.
    public func tunnel(to site: String, within timeout: Duration) async -> TunnelDriver? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (driver, stopped) = state.withLockedValue { state -> (TunnelDriver?, Bool) in
                guard !state.stopped, let driver = state.peers[site]?.driver, !driver.isEnded,
                    driver.establishedLinks > 0
                else { return (nil, state.stopped) }
                return (driver, false)
            }
            if let driver { return driver }
            guard !stopped, ContinuousClock.now < deadline, !Task.isCancelled else { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Ends tunnels to peers the directory has lost once they have had no link for
    /// `deadPeerGrace`, so the clients of a site that died learn it in seconds. Runs until
    /// cancelled.
    public func run() async {
        var rounds = 0
        while !Task.isCancelled {
            rounds += 1
            if rounds % 4 == 0 {
                for driver in state.withLockedValue({ $0.peers.values.compactMap(\.driver) }) {
                    driver.eventLoop.execute { driver.publishMetrics() }
                }
            }
            let now = ContinuousClock.now
            var closing: [TunnelDriver] = []
            state.withLockedValue { state in
                for name in state.peers.keys {
                    guard let driver = state.peers[name]!.driver else { continue }
                    if state.peers[name]!.up || driver.establishedLinks > 0 {
                        state.peers[name]!.linklessSince = nil
                    } else if let since = state.peers[name]!.linklessSince {
                        if now - since >= configuration.deadPeerGrace {
                            closing.append(driver)
                            state.peers[name]!.driver = nil
                            state.peers[name]!.linklessSince = nil
                        }
                    } else {
                        state.peers[name]!.linklessSince = now
                    }
                }
            }
            for driver in closing {
                close(
                    driver,
                    reason: "\(driver.peerSite) is gone: no announcement and no link for \(configuration.deadPeerGrace)"
                )
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Ends every tunnel (peers are told) and stops dialing.
    public func stop() async {
        let drivers = state.withLockedValue { state -> [TunnelDriver] in
            state.stopped = true
            let drivers = state.peers.values.compactMap(\.driver)
            for peer in state.peers.values {
                for channel in peer.paths.values.compactMap(\.channel) {
                    channel.eventLoop.execute { channel.close(promise: nil) }
                }
            }
            state.peers.removeAll()
            return drivers
        }
        for driver in drivers {
            try? await driver.eventLoop.submit { driver.close(reason: "site stopping") }.get()
        }
    }
}
