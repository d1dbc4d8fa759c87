import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftDiscovery
import WeftTransport
import WeftTunnel
import WeftWire

/// Keeps one tunnel per peer that this site shares apps with, fed by the directory.
///
/// The jobs are split: `DialPlanner` decides which links to dial (a value, unit-tested), a
/// `PathDialer` per planned link dials, holds and re-dials it (1 s doubling to 30 s, jittered,
/// cut short by a kick), the acceptor (`TunnelManager+Accepting`) places links the peers dial,
/// and `TunnelReaper` ends tunnels to peers that are gone. This type owns their shared state
/// behind one lock, which is never held across a call into another object: it decides under
/// the lock and acts after it.
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
        /// What links are dialed over, by the endpoint's link type.
        public var transports: LinkTransportSet
        /// Local addresses of backup paths (`role: backup` interfaces): links dialed from them
        /// carry data only while no primary link is up.
        public var backupLocalAddresses: Set<IPAddress> = []
        /// This site relays links between other sites (`tunnel.relay`), within `relayLimits`.
        public var relay = false
        public var relayLimits = TunnelSettings.RelayLimits()

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
            endpointPolicy: EndpointPolicy = EndpointPolicy(),
            transports: LinkTransportSet = .tcpOnly
        ) {
            self.transports = transports
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

    /// The current tunnel to one peer, and what the manager knows of it without asking it.
    struct Tunnel {
        var driver: TunnelDriver
        /// The peer's half, learned under the manager's lock (the driver is told after).
        var peerHalf: UInt64
        /// Its links now, as the driver reports them (`onLinksChanged`).
        var links = 0
        /// Since when a lost peer's tunnel has had no link (`TunnelReaper`).
        var linklessSince: ContinuousClock.Instant?
    }

    /// Clients of a remote app waiting for a tunnel with a link.
    struct Waiters {
        /// One waiting client: what to resume, and its timeout (cancelled when woken sooner).
        struct Waiter {
            var continuation: CheckedContinuation<TunnelWait, Never>
            var timeout: Scheduled<Void>?

            func end(with outcome: TunnelWait) {
                timeout?.cancel()
                continuation.resume(returning: outcome)
            }
        }

        var byPeer: [String: [UInt64: Waiter]] = [:]
        /// Waits begun and not yet over (a cancellation may come before the wait registers).
        var open: Set<UInt64> = []
        var last: UInt64 = 0
    }

    struct State {
        var planner: DialPlanner
        var tunnels: [String: Tunnel] = [:]
        var dialers: [UInt64: PathDialer] = [:]
        var waiters = Waiters()
        var nextLinkNumber: UInt32 = 0
        var noPath = NoPathWatch()
    }

    /// Links one tunnel accepts at most (a pinned peer still cannot open sockets without end).
    public static let maxLinksPerTunnel = 64
    /// Paths this site dials at most, all peers together (see `DialPlanner`).
    public static let maxPathsTotal = DialPlanner.maxPathsTotal

    public let configuration: Configuration
    public let site: LocalLinkSite
    private let group: EventLoopGroup
    /// The group's loops, in a fixed order: each peer's tunnels live on one of them.
    private let loops: [EventLoop]
    let apps: ExposedAppServer
    /// Relays links for other sites (refusing them unless `tunnel.relay`).
    let relay: RelayService
    /// Punches paths to peers behind NAT, when the site has a `nat-traversal` socket.
    let puncher = NIOLockedValueBox<HolePuncher?>(nil)
    /// Handshakes of relayed links arriving here: the same cap as a listening socket's.
    let relayedLinkAdmission: HandshakeAdmission
    /// The site's sockets for streams: app connections here, clients of remote apps.
    public var socketBudget: SocketBudget { apps.sockets }
    /// Bytes and streams per app (exposed and remote).
    public var appTraffic: AppTraffic { apps.traffic }
    let logger: Logger
    let state: NIOLockedValueBox<State>

    public init(
        configuration: Configuration,
        site: LocalLinkSite,
        exposedApps: [ExposedAppConfig],
        announcesEndpoints: Bool,
        group: EventLoopGroup,
        sockets: SocketBudget = SocketBudget(limit: 4096),
        linkAdmission: HandshakeAdmission = HandshakeAdmission(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.relayedLinkAdmission = linkAdmission
        self.site = site
        self.group = group
        self.loops = Array(group.makeIterator())
        self.logger = logger
        self.apps = ExposedAppServer(
            registry: ExposedAppRegistry(exposedApps), connectTimeout: configuration.appConnectTimeout,
            sockets: sockets, logger: logger)
        let state = NIOLockedValueBox(
            State(
                planner: DialPlanner(
                    usedSites: configuration.usedSites, exposesApps: configuration.exposesApps,
                    announcesEndpoints: announcesEndpoints, localAddresses: configuration.localAddresses,
                    linksPerPath: configuration.linksPerPath, policy: configuration.endpointPolicy)))
        self.state = state
        self.relay = RelayService(
            enabled: configuration.relay, siteName: configuration.siteName, limits: configuration.relayLimits,
            logger: logger,
            tunnel: { name in
                state.withLockedValue { state in
                    state.tunnels[name].flatMap { $0.links > 0 ? $0.driver : nil }
                }
            })
    }

    // MARK: events in

    /// Follows the directory: dial, re-dial, replace or stop tunnels.
    public func handle(_ event: DirectoryEvent) {
        if case .down(let name, .vanished) = event,
            let links = state.withLockedValue({ $0.tunnels[name]?.links }), links > 0
        {
            // A last will says the site's broker connection died (or a broker replayed it).
            // The tunnel is not closed for it: it lasts while its links do, and the reaper ends
            // it only once they are gone too; the site's next announcement brings it back up.
            logger.notice(
                "last will of a peer whose links are up: its tunnel stays while they do",
                metadata: ["peer": "\(name)", "links": "\(links)"])
        }
        perform(
            state.withLockedValue { state in
                let actions = state.planner.directory(event)
                if case .up = event { state.tunnels[event.siteName]?.linklessSince = nil }
                if case .changed = event { state.tunnels[event.siteName]?.linklessSince = nil }
                return actions
            })
        tellPuncher(event)
    }

    /// This site's own endpoints changed (public address detection).
    public func ownEndpointsChanged(announced: Bool) {
        perform(state.withLockedValue { $0.planner.ownEndpoints(announced: announced) })
    }

    /// A transport can reach more now (a USB gadget was plugged in): its waiting runs dial now
    /// rather than after their backoff.
    public func transportChanged(_ transport: LinkEndpoint.Kind) {
        perform(state.withLockedValue { $0.planner.kickAll(over: transport) })
    }

    /// This site's Bluetooth adapters changed (one came up after start): Bluetooth endpoints
    /// of peers are dialed from now on.
    public func ownAdaptersChanged(_ adapters: [BluetoothAddress]) {
        perform(state.withLockedValue { $0.planner.ownAdapters(adapters) })
    }

    /// `speedtest.allowDownload`, at start and on reload.
    public func allowSpeedtestDownload(_ allowed: Bool) {
        apps.allowSpeedtestDownload(allowed)
    }

    /// The apps changed at runtime (API, reload): peers are served with the new exposed apps
    /// from their next stream on, sites now used are dialed at once. A site no longer used is
    /// no longer dialed once its links close; its tunnel is left alone (it may carry streams).
    public func appsChanged(usedSites: Set<String>, exposedApps: [ExposedAppConfig]) {
        apps.update(ExposedAppRegistry(exposedApps))
        perform(state.withLockedValue { $0.planner.apps(usedSites: usedSites, exposesApps: !exposedApps.isEmpty) })
    }

    /// Carries out the planner's actions, outside the lock.
    private func perform(_ actions: [DialPlanner.Action]) {
        for action in actions {
            switch action {
            case .startDialing(let peer, let path, let run):
                let dialer = PathDialer(peer: peer, path: path, run: run)
                state.withLockedValue { $0.dialers[run] = dialer }
                let backoff = configuration.backoff
                Task { await dialer.run(manager: self, backoff: backoff, logger: self.logger) }
            case .kick(let run):
                state.withLockedValue { $0.dialers[run] }?.kick()
            case .stopDialing(let run):
                state.withLockedValue { $0.dialers.removeValue(forKey: run) }?.stop()
            case .closeTunnel(let peer, let reason):
                if let driver = state.withLockedValue({ $0.tunnels.removeValue(forKey: peer)?.driver }) {
                    close(driver, reason: reason)
                }
            case .endpointsRefused(let peer, let lines):
                for line in lines {
                    logger.warning(
                        "not dialing an endpoint the peer announced",
                        metadata: ["peer": "\(peer)", "endpoint": "\(line)"])
                }
            case .nothingToDial(let peer, let used):
                // Worth a notice only for a peer whose apps this site uses.
                logger.log(
                    level: used ? .notice : .debug,
                    "peer announces no endpoint to dial; waiting for it to dial this site",
                    metadata: ["peer": "\(peer)"])
            case .pathLimitReached(let peer):
                logger.warning(
                    "too many paths to dial; dialing fewer to this peer",
                    metadata: ["peer": "\(peer)", "limit": "\(Self.maxPathsTotal)"])
            }
        }
    }

    // MARK: the dial runs

    /// What `dialer` dials next, or nil when its run ends. Creates the tunnel on first use.
    func nextDial(for dialer: PathDialer) -> PathDialer.Job? {
        let name = dialer.peer
        let kind = dialer.path.remote.transport
        let transport: (any LinkTransport)? = kind == .relay ? relayTransport : configuration.transports[kind]
        guard let transport else {
            // Cannot happen with the site's transports (every announced kind has one); if it
            // does, the run leaves the plan rather than stay counted and never dial.
            logger.warning(
                "no transport for a planned path; not dialing it",
                metadata: ["peer": "\(name)", "path": "\(dialer.path)"])
            state.withLockedValue { state in
                state.planner.drop(peer: name, path: dialer.path, run: dialer.run)
                state.dialers[dialer.run] = nil
            }
            return nil
        }
        let local = dialer.path.local.flatMap { try? SocketAddress(ipAddress: $0.description, port: 0) }
        let backup = dialer.path.local.map { configuration.backupLocalAddresses.contains($0) } ?? false
        let job = withTunnel(to: name, peerHalf: LinkHandshake.unknownIncarnation, on: nil) {
            state, tunnel -> TunnelChoice<PathDialer.Job?> in
            guard let info = state.planner.dialTarget(peer: name, path: dialer.path, run: dialer.run) else {
                state.dialers[dialer.run] = nil
                return .done(nil)
            }
            guard let tunnel else { return .needsTunnel }
            state.nextLinkNumber &+= 1
            return .done(
                PathDialer.Job(
                    driver: tunnel.driver,
                    target: LinkDialer.Target(
                        endpoint: dialer.path.remote, localAddress: local, backup: backup, peerSite: name,
                        peerIncarnation: tunnel.peerHalf,
                        localIncarnation: tunnel.driver.localIncarnation, fingerprint: info.fingerprint),
                    transport: transport,
                    linkNumber: state.nextLinkNumber))
        }
        return job
    }

    /// Dials relayed links: a stream of this site's tunnel to the relay, once that tunnel has a
    /// link and none of its links is relayed itself.
    var relayTransport: RelayLinkTransport {
        let fallback = group.next()
        return RelayLinkTransport { [weak self] relay in
            guard let self else {
                return fallback.makeFailedFuture(LinkError(.closed, "the site is stopping"))
            }
            let promise = self.eventLoop(for: relay).makePromise(of: TunnelDriver.self)
            Task {
                guard let driver = await self.tunnel(to: relay, within: .seconds(5)) else {
                    promise.fail(LinkError(.transport, "no tunnel to the relay \(relay)"))
                    return
                }
                guard driver.relayedLinks == 0 else {
                    promise.fail(LinkError(.transport, "the tunnel to the relay \(relay) is relayed itself"))
                    return
                }
                promise.succeed(driver)
            }
            return promise.futureResult
        }
    }

    /// Whether a dial in flight is still for the current tunnel and run. A hello asking for a
    /// tunnel this side has already replaced would make the peer replace its healthy one.
    func isCurrent(_ driver: TunnelDriver, for dialer: PathDialer) -> Bool {
        state.withLockedValue { state in
            state.planner.isCurrent(peer: dialer.peer, path: dialer.path, run: dialer.run)
                && state.tunnels[dialer.peer]?.driver === driver
        }
    }

    /// A dialed link finished its handshake: keep it only if its run and tunnel are current.
    func linkDialed(_ established: LinkHandshake.Established, driver: TunnelDriver, for dialer: PathDialer) -> Bool {
        let current = state.withLockedValue { state in
            guard state.planner.isCurrent(peer: dialer.peer, path: dialer.path, run: dialer.run),
                state.tunnels[dialer.peer]?.driver === driver
            else { return false }
            return state.tunnels[dialer.peer]?.adopt(peerHalf: established.peerIncarnation) ?? false
        }
        return current && driver.adopt(peerIncarnation: established.peerIncarnation)
    }

    /// The peer has no tunnel matching ours (it restarted, or ended its half): ours ends too,
    /// and the next link starts a new one.
    func tunnelUnknownAtPeer(_ driver: TunnelDriver, reason: String) {
        let name = driver.peerSite
        let kicks = state.withLockedValue { state -> [DialPlanner.Action]? in
            guard state.tunnels[name]?.driver === driver else { return nil }
            state.tunnels[name] = nil
            return state.planner.kickAll(name)
        }
        guard let kicks else { return }
        close(driver, reason: "\(name) no longer has this tunnel: \(reason)")
        perform(kicks)
    }

    // MARK: tunnels

    /// What a decision under the lock needs: a tunnel that does not exist yet, or its result.
    enum TunnelChoice<Result> {
        case needsTunnel
        case done(Result)
    }

    /// Runs `decide` under the lock with the peer's current tunnel. When it needs one and there
    /// is none, a new tunnel is built outside the lock; then, under the lock again, `decide` runs
    /// first against the table as it is, and only if it still needs a tunnel (the slot empty,
    /// the site running) is the new one put in and `decide` run with it. A tunnel another thread
    /// put there meanwhile wins, and a decision that no longer wants one (the peer gone, the site
    /// stopping) leaves nothing behind: the spare is dropped.
    func withTunnel<Result>(
        to name: String, peerHalf: UInt64, on loop: EventLoop?,
        _ decide: (inout State, Tunnel?) -> TunnelChoice<Result>
    ) -> Result {
        var spare: TunnelDriver?
        while true {
            let outcome = state.withLockedValue { state -> (TunnelChoice<Result>, installed: Bool) in
                let first = decide(&state, state.tunnels[name])
                guard case .needsTunnel = first, let driver = spare, state.tunnels[name] == nil,
                    !state.planner.stopped
                else { return (first, false) }
                state.tunnels[name] = Tunnel(driver: driver, peerHalf: peerHalf)
                let second = decide(&state, state.tunnels[name])
                guard case .done = second else {
                    // It wants a tunnel even with one in place: never installed for nothing.
                    state.tunnels[name] = nil
                    return (second, false)
                }
                return (second, true)
            }
            if outcome.installed, let driver = spare {
                logger.info(
                    "tunnel created",
                    metadata: ["peer": "\(name)", "incarnation": "\(String(driver.localIncarnation, radix: 16))"])
                spare = nil
            }
            switch outcome.0 {
            case .done(let result):
                if let spare { discard(spare) }
                return result
            case .needsTunnel:
                if spare == nil { spare = makeDriver(peer: name, peerIncarnation: peerHalf, on: loop) }
            }
        }
    }

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
    private func makeDriver(peer name: String, peerIncarnation: UInt64, on loop: EventLoop?) -> TunnelDriver {
        let driver = TunnelDriver(
            eventLoop: loop ?? eventLoop(for: name),
            localIncarnation: UInt64.random(in: 1...UInt64.max),
            peerSite: name,
            peerIncarnation: peerIncarnation,
            options: .init(configuration: configuration.tunnel, opensOddStreams: site.siteName < name),
            logger: logger
        )
        let apps = self.apps
        let relay = self.relay
        let relayedLinks = RelayedLinkAcceptor(
            site: site, admission: relayedLinkAdmission, handlers: relayedLinkHandlers, logger: logger)
        driver.onIncomingStream = { [unowned driver] id, appName, target in
            if driver.incomingDatagrams, appName == RelayProtocol.request || appName == RelayProtocol.delivery {
                driver.reset(id, code: .notExposed, message: "a relay stream carries no datagrams")
                return nil
            }
            return switch appName {
            case RelayProtocol.request: relay.request(id, target: target, from: driver)
            case RelayProtocol.delivery: relayedLinks.accept(id, from: driver)
            default: apps.open(id, appName: appName, target: target, on: driver)
            }
        }
        driver.onFailed = { [weak self, weak driver] (_: TunnelFailure) in
            guard let self, let driver else { return }
            self.state.withLockedValue { state in
                if state.tunnels[name]?.driver === driver { state.tunnels[name] = nil }
            }
        }
        driver.onLinksChanged = { [weak self, weak driver] count in
            guard let self, let driver else { return }
            self.linksChanged(count, of: driver)
        }
        return driver
    }

    /// A driver built for a tunnel another thread created first: it ends unused.
    private func discard(_ driver: TunnelDriver) {
        driver.eventLoop.execute { driver.close(reason: "not needed") }
    }

    func close(_ driver: TunnelDriver, reason: String) {
        logger.info("closing tunnel", metadata: ["peer": "\(driver.peerSite)", "reason": "\(reason)"])
        driver.eventLoop.execute { driver.close(reason: reason) }
    }

    /// The driver's link count changed: waiting clients get the tunnel once it has a link.
    private func linksChanged(_ count: Int, of driver: TunnelDriver) {
        let name = driver.peerSite
        let woken = state.withLockedValue { state -> [Waiters.Waiter] in
            guard state.tunnels[name]?.driver === driver else { return [] }
            state.tunnels[name]?.links = count
            guard count > 0 else { return [] }
            state.tunnels[name]?.linklessSince = nil
            let waiting = state.waiters.byPeer.removeValue(forKey: name) ?? [:]
            for id in waiting.keys { state.waiters.open.remove(id) }
            return Array(waiting.values)
        }
        for waiter in woken { waiter.end(with: .ready(driver)) }
    }

    /// Every tunnel as it is now, by peer name.
    public func tunnelSnapshots() async -> [TunnelSnapshot] {
        let drivers = state.withLockedValue { state in state.tunnels.values.map(\.driver) }
        var snapshots: [TunnelSnapshot] = []
        for driver in drivers {
            if let snapshot = try? await driver.eventLoop.submit({ driver.snapshot() }).get() {
                snapshots.append(snapshot)
            }
        }
        return snapshots.sorted { $0.peer < $1.peer }
    }

    /// Stops (or resumes) scheduling data on link `link` of the tunnel to `peer`, without
    /// closing it. False when there is no such tunnel or link.
    public func setBlocked(peer: String, link: UInt32, _ blocked: Bool) async -> Bool {
        guard let driver = state.withLockedValue({ $0.tunnels[peer]?.driver }) else { return false }
        return (try? await driver.eventLoop.submit { driver.setBlocked(LinkID(link), blocked) }.get()) ?? false
    }

    /// Ends the open streams of an exposed app (it was removed or changed); returns how many.
    @discardableResult
    public func endStreams(ofExposedApp name: String) -> Int {
        apps.connections.abortAll(name)
    }

    /// The current tunnel to `peer`, with or without links.
    public func currentTunnel(to peer: String) -> TunnelDriver? {
        state.withLockedValue { state in state.tunnels[peer]?.driver }
    }

    /// Ends every tunnel (peers are told) and stops dialing.
    public func stop() async {
        let (actions, drivers, waiters) = state.withLockedValue { state in
            let actions = state.planner.stop()
            let drivers = state.tunnels.values.map(\.driver)
            state.tunnels.removeAll()
            let waiters = state.waiters.byPeer.values.flatMap(\.values)
            state.waiters = Waiters()
            return (actions, drivers, waiters)
        }
        perform(actions)
        for waiter in waiters { waiter.end(with: .over) }
        for driver in drivers {
            try? await driver.eventLoop.submit { driver.close(reason: "site stopping") }.get()
        }
    }
}

extension TunnelManager.Tunnel {
    /// Learns the peer's half of this tunnel from a welcome or a hello; false if it already had
    /// another one (that link belongs to a different tunnel).
    mutating func adopt(peerHalf half: UInt64) -> Bool {
        if peerHalf == LinkHandshake.unknownIncarnation { peerHalf = half }
        return peerHalf == half
    }
}
