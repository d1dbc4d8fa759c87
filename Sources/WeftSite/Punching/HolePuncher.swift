import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import WeftTransport
import WeftWire

/// UDP hole punching for a site with a `nat-traversal` QUIC socket (issue 18).
///
/// It learns the socket's public mapping with STUN from the socket itself (announced as a
/// `punch` endpoint, re-checked every `mappingPeriod`), and for each peer that announces one
/// too and has no direct link while this site wants a tunnel to it, runs rounds of
/// `PunchStateMachine`: a rendezvous over the message channel, probes from the socket, and a
/// QUIC link dialed from the socket by the side whose name sorts first. Rounds of one peer run
/// one at a time; a failed round backs off, and the tunnel goes on through a relay meanwhile.
///
/// The machines live behind one lock; what they ask for is done after it, on the socket's loop
/// (`tick` every `tickInterval`).
final class HolePuncher: Sendable {
    struct Hooks: Sendable {
        /// Sends a rendezvous over the message channel.
        var send: @Sendable (Rendezvous) -> Void
        /// Whether this site wants a punched link to the peer now: it wants a tunnel, and the
        /// tunnel has no direct link.
        var needsLink: @Sendable (String) -> Bool
        /// Dials a QUIC link to the peer at this address from the punching socket, and attaches it.
        var dial: @Sendable (String, SocketAddress) -> EventLoopFuture<Channel>
        /// The mapping changed: announce this endpoint (nil: none known).
        var mappingChanged: @Sendable (PunchCandidate?) -> Void
    }

    struct Peer: Sendable {
        var machine: PunchStateMachine
        /// The addresses it announces (`punch` endpoints).
        var announced: [PunchCandidate]
        /// Why its last round failed, for status and the log.
        var lastFailure: String?
    }

    private struct State: Sendable {
        var peers: [String: Peer] = [:]
        var mapping: PunchCandidate?
        var stopped = false
        var ticks = 0

        var activeRounds: Int {
            peers.values.count { peer in
                switch peer.machine.state {
                case .asking, .probing: true
                case .idle, .linked, .backingOff: false
                }
            }
        }
    }

    static let tickInterval: TimeAmount = .milliseconds(200)
    /// Whether a peer needs a round is asked every this many ticks (rounds under way: every tick).
    static let needsEvery = 5
    /// Rounds under way at once, all peers together: members cannot make this site probe
    /// without bound.
    static let maxActiveRounds = 16
    static let mappingPeriod: Duration = .seconds(60)
    static let mappingRetry: Duration = .seconds(5)

    let ownName: String
    let router: SidebandRouter
    /// `HOST[:PORT]` each (port 3478 by default); the first that answers gives the mapping.
    let stunServers: [String]
    let policy: EndpointPolicy
    let configuration: PunchStateMachine.Configuration
    private let hooks: Hooks
    private let state = NIOLockedValueBox(State())
    private let started = NIODeadline.now()
    private let logger: Logger
    private let strangers = Counter(label: "weft_punch_probes_unknown_total")
    private let rounds = Counter(label: "weft_punch_rounds_total")
    private let punched = Counter(label: "weft_punch_links_total")
    private let tick = NIOLockedValueBox<RepeatedTask?>(nil)

    init(
        ownName: String, router: SidebandRouter, stunServers: [String], policy: EndpointPolicy,
        configuration: PunchStateMachine.Configuration = .init(), hooks: Hooks, logger: Logger
    ) {
        self.ownName = ownName
        self.router = router
        self.stunServers = stunServers
        self.policy = policy
        self.configuration = configuration
        self.hooks = hooks
        self.logger = logger
    }

    var now: Duration { .nanoseconds((NIODeadline.now() - started).nanoseconds) }

    /// The socket's public mapping as last learned.
    var mapping: PunchCandidate? { state.withLockedValue { $0.mapping } }

    /// Peers and why their last round failed (for status).
    var failures: [String: String] { state.withLockedValue { $0.peers.compactMapValues(\.lastFailure) } }

    /// How punching stands towards `name`, for `NoPathWatch`.
    func outlook(for name: String) -> NoPathWatch.Punching {
        state.withLockedValue { state in
            guard state.mapping != nil else { return .unavailable("this site's NAT mapping is not known") }
            guard let peer = state.peers[name] else { return .unavailable("\(name) announces no NAT mapping") }
            // Once a round failed, the retries (backing off) do not count as a path until one works.
            return peer.lastFailure == nil || peer.machine.state == .linked ? .possible : .failed
        }
    }

    /// Starts the ticks and the probe handler; `run` keeps the mapping fresh.
    func start() {
        router.onProbe { [weak self] probe, source in self?.probeArrived(probe, from: source) }
        let loop = router.sideband.eventLoop
        tick.withLockedValue {
            $0 = loop.scheduleRepeatedTask(initialDelay: Self.tickInterval, delay: Self.tickInterval) {
                [weak self] _ in self?.tickAll()
            }
        }
    }

    func stop() {
        state.withLockedValue { $0.stopped = true }
        tick.withLockedValue { $0?.cancel() }
        router.onProbe(nil)
    }

    /// Learns the mapping now and again every `mappingPeriod` (every `mappingRetry` while no
    /// server answers), until cancelled.
    func run() async {
        while !Task.isCancelled {
            var learned: PunchCandidate?
            for server in stunServers where learned == nil {
                do {
                    let (host, port) = try STUNAddressDetector.hostAndPort(server)
                    let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
                    learned = try await router.mapping(from: address)
                } catch {
                    logger.warning(
                        "cannot learn the NAT mapping of the QUIC socket; retrying",
                        metadata: ["stunServer": "\(server)", "error": "\(error)"])
                }
            }
            let changed = state.withLockedValue { state -> Bool in
                guard let learned, learned != state.mapping else { return false }
                state.mapping = learned
                return true
            }
            if changed, let learned {
                logger.info("NAT mapping of the QUIC socket learned", metadata: ["mapping": "\(learned)"])
                hooks.mappingChanged(learned)
            }
            do {
                try await Task.sleep(for: learned == nil ? Self.mappingRetry : Self.mappingPeriod)
            } catch {
                return
            }
        }
    }

    // MARK: Events in

    /// A peer's announced `punch` endpoints (none: it cannot be punched; forgotten).
    func peer(_ name: String, announces candidates: [PunchCandidate]) {
        let candidates = Array(candidates.filter(allowed).prefix(PunchStateMachine.maxCandidates))
        state.withLockedValue { state in
            if candidates.isEmpty {
                state.peers[name] = nil
            } else if state.peers[name] != nil {
                state.peers[name]!.announced = candidates
            } else {
                state.peers[name] = Peer(
                    machine: PunchStateMachine(
                        role: PunchStateMachine.Role(local: ownName, peer: name), configuration: configuration),
                    announced: candidates)
            }
        }
    }

    /// A rendezvous from a peer that is up (verified by the directory).
    func rendezvous(from name: String, _ rendezvous: Rendezvous) {
        let offered = rendezvous.candidates.compactMap { candidate -> PunchCandidate? in
            guard let address = IPAddress(bytes: candidate.address) else { return nil }
            return PunchCandidate(address: address.normalized.description, port: candidate.port)
        }.filter(allowed)
        let now = self.now
        let actions = state.withLockedValue { state -> [PunchStateMachine.Action] in
            guard !state.stopped, let peer = state.peers[name] else { return [] }
            // What the peer announces, and one address more (its socket's own, for a peer on
            // the same LAN): a rendezvous cannot aim this site's probes at a list of its choice.
            let extra = offered.first { !peer.announced.contains($0) }
            let candidates = offered.filter(peer.announced.contains) + (extra.map { [$0] } ?? [])
            switch peer.machine.state {
            case .asking, .probing: break
            case .idle, .linked, .backingOff:
                guard state.activeRounds < Self.maxActiveRounds else { return [] }
            }
            return state.peers[name]!.machine.rendezvous(
                token: rendezvous.token, candidates: candidates, answer: rendezvous.answer, now: now)
        }
        if actions.isEmpty {
            logger.debug("rendezvous not taken", metadata: ["peer": "\(name)", "answer": "\(rendezvous.answer)"])
        }
        perform(actions, for: name)
    }

    private func probeArrived(_ probe: PunchProbe, from source: SocketAddress) {
        guard let address = source.ipAddress, let port = source.port, let port16 = UInt16(exactly: port) else { return }
        let candidate = PunchCandidate(address: address, port: port16)
        guard allowed(candidate) else {
            strangers.increment()
            return
        }
        let now = self.now
        let taken = state.withLockedValue { state -> (String, [PunchStateMachine.Action])? in
            for (name, peer) in state.peers where peer.machine.token == probe.token {
                guard
                    let actions = state.peers[name]!.machine.probeArrived(
                        probe.kind, token: probe.token, from: candidate, now: now)
                else { return nil }
                return (name, actions)
            }
            return nil
        }
        guard let (name, actions) = taken else {
            strangers.increment()
            return
        }
        perform(actions, for: name)
    }

    private func tickAll() {
        let now = self.now
        // A round under way is ticked every time; the others are looked at now and then
        // (whether a link is needed costs the manager's lock).
        let names = state.withLockedValue { state -> [String] in
            state.ticks &+= 1
            guard !state.stopped else { return [] }
            let askAll = state.ticks % Self.needsEvery == 0
            return state.peers.compactMap { name, peer in
                switch peer.machine.state {
                case .asking, .probing: name
                case .idle, .linked, .backingOff: askAll ? name : nil
                }
            }
        }
        for name in names {
            let needed = hooks.needsLink(name)
            let actions = state.withLockedValue { state -> [PunchStateMachine.Action] in
                guard state.peers[name] != nil else { return [] }
                var actions: [PunchStateMachine.Action] = []
                if !needed {
                    // Nothing to punch (a direct link is up, or no tunnel is wanted): failures
                    // are forgotten, and a round under way (the peer's, perhaps) goes on.
                    switch state.peers[name]!.machine.state {
                    case .idle, .backingOff: state.peers[name]!.machine.linkUp()
                    case .asking, .probing, .linked: break
                    }
                    return state.peers[name]!.machine.tick(now: now)
                }
                if state.peers[name]!.machine.state == .linked {
                    actions += state.peers[name]!.machine.linkDown(now: now)
                }
                if state.mapping != nil, state.peers[name]!.machine.canStart(now: now),
                    state.activeRounds < Self.maxActiveRounds
                {
                    actions += state.peers[name]!.machine.start(token: Self.newToken(), now: now)
                }
                actions += state.peers[name]!.machine.tick(now: now)
                return actions
            }
            perform(actions, for: name)
        }
    }

    // MARK: Actions out

    private func perform(_ actions: [PunchStateMachine.Action], for name: String) {
        guard !actions.isEmpty else { return }
        let (token, mapping) = state.withLockedValue { ($0.peers[name]?.machine.token, $0.mapping) }
        for action in actions {
            switch action {
            case .sendRendezvous(let token, let answer):
                if !answer { rounds.increment() }
                hooks.send(
                    Rendezvous(to: name, token: token, answer: answer, candidates: ownCandidates(mapping)))
            case .probe(let targets, let kind):
                guard let token else { continue }
                for target in targets {
                    guard let address = try? SocketAddress(ipAddress: target.address, port: Int(target.port)) else {
                        continue
                    }
                    router.send(PunchProbe(kind: kind, token: token), to: address)
                }
            case .dial(let target):
                guard let address = try? SocketAddress(ipAddress: target.address, port: Int(target.port)) else {
                    continue
                }
                logger.info(
                    "a probe got through; dialing a punched QUIC link",
                    metadata: ["peer": "\(name)", "to": "\(target)"])
                dial(name, address)
            case .failed(let reason, let retryAt):
                let first = state.withLockedValue { state -> Bool in
                    defer { state.peers[name]?.lastFailure = reason }
                    return state.peers[name]?.lastFailure == nil
                }
                let metadata: Logger.Metadata = [
                    "peer": "\(name)", "reason": "\(reason)", "retryIn": "\(retryAt - self.now)",
                ]
                // The first failure of a streak is a notice; the rest are for debugging.
                if first {
                    logger.notice(
                        "hole punching failed; retrying later (a relay carries the tunnel meanwhile, if the mesh has one)",
                        metadata: metadata)
                } else {
                    logger.debug("hole punching failed again", metadata: metadata)
                }
            case .wake:
                break  // the ticks come every `tickInterval` anyway
            }
        }
    }

    private func dial(_ name: String, _ address: SocketAddress) {
        hooks.dial(name, address).whenComplete { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let channel):
                self.punched.increment()
                self.logger.info("punched link up", metadata: ["peer": "\(name)", "remote": "\(address)"])
                self.state.withLockedValue { state in
                    state.peers[name]?.machine.linkUp()
                    state.peers[name]?.lastFailure = nil
                }
                channel.closeFuture.whenComplete { [weak self] _ in
                    guard let self else { return }
                    let now = self.now
                    let actions = self.state.withLockedValue { $0.peers[name]?.machine.linkDown(now: now) ?? [] }
                    self.perform(actions, for: name)
                }
            case .failure(let error):
                let now = self.now
                self.logger.info(
                    "the punched QUIC link did not open", metadata: ["peer": "\(name)", "error": "\(error)"])
                let actions = self.state.withLockedValue { $0.peers[name]?.machine.linkDown(now: now) ?? [] }
                self.perform(actions, for: name)
            }
        }
    }

    /// What this site offers in a rendezvous: its public mapping, and the socket's own address
    /// when it is bound to one (a peer on the same LAN reaches that directly).
    private func ownCandidates(_ mapping: PunchCandidate?) -> [Rendezvous.Candidate] {
        var candidates: [PunchCandidate] = []
        if let mapping { candidates.append(mapping) }
        if let local = router.sideband.localAddress, let text = local.ipAddress, let port = local.port,
            let address = IPAddress(text), !address.isUnspecified, let port16 = UInt16(exactly: port)
        {
            let own = PunchCandidate(address: address.description, port: port16)
            if own != mapping { candidates.append(own) }
        }
        return candidates.compactMap { candidate in
            IPAddress(candidate.address).map { Rendezvous.Candidate(address: $0.bytes, port: candidate.port) }
        }
    }

    /// A peer's address is probed and dialed only where any announced endpoint could be.
    private func allowed(_ candidate: PunchCandidate) -> Bool {
        policy.refusal(address: candidate.address, port: Int(candidate.port)) == nil
    }

    private static func newToken() -> [UInt8] {
        (0..<PunchProbe.tokenLength).map { _ in UInt8.random(in: 0...255) }
    }
}
