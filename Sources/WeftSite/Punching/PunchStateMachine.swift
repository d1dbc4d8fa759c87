import WeftWire

/// Hole punching towards one peer, as a value-type state machine: fed the rendezvous messages,
/// probes and clock ticks, it returns what to do, so every rule is tested without a NAT or a
/// clock.
///
/// One round: a site asks for a rendezvous (a fresh token); the peer answers with its own
/// candidates and the same token; both then probe each other's candidates from their QUIC
/// socket every `probeInterval` for at most `window`. The side whose name sorts first
/// (`Role.dialer`) dials a QUIC connection to the first address a probe of the peer came
/// from — the path that demonstrably gets through; the other only keeps its NAT open and
/// answers. A round that ends without a link backs off (doubling up to `maxRetry`) and the
/// tunnel goes on through a relay meanwhile.
struct PunchStateMachine: Sendable {
    struct Configuration: Sendable {
        var probeInterval: Duration = .milliseconds(200)
        /// How long a round probes (and waits for the peer's answer) before it gives up.
        var window: Duration = .seconds(5)
        var firstRetry: Duration = .seconds(10)
        var maxRetry: Duration = .seconds(300)
        /// Rounds a peer asks for start at most this often.
        var minimumJoinInterval: Duration = .seconds(10)
    }

    enum Role: Sendable, Equatable {
        /// Dials the QUIC connection once a probe of the peer got through.
        case dialer
        /// Opens its NAT to the peer with probes and answers; accepts the connection.
        case opener

        init(local: String, peer: String) { self = local < peer ? .dialer : .opener }
    }

    enum Action: Sendable, Equatable {
        /// Send the peer a rendezvous message with this token and our candidates.
        case sendRendezvous(token: [UInt8], answer: Bool)
        /// Send a probe of `kind` to each of these addresses from the QUIC socket.
        case probe([PunchCandidate], kind: PunchProbe.Kind)
        /// Dial a QUIC link from the QUIC socket to this address.
        case dial(PunchCandidate)
        /// The round ended without a link; the next may start at `retryAt`.
        case failed(reason: String, retryAt: Duration)
        /// Call `tick` at this time.
        case wake(at: Duration)
    }

    enum State: Sendable, Equatable {
        case idle
        /// Asked for a rendezvous; no answer yet.
        case asking(token: [UInt8], until: Duration)
        /// `heard`: a probe of the peer's came through; `dialed`: where the dialer dialed.
        case probing(
            token: [UInt8], candidates: [PunchCandidate], until: Duration, dialed: PunchCandidate?, heard: Bool)
        /// A punched link is up.
        case linked
        /// The last round failed; the next may start at `until`.
        case backingOff(until: Duration)
    }

    /// Most candidates taken from a peer's rendezvous (more are ignored).
    static let maxCandidates = 8

    let role: Role
    let configuration: Configuration
    private(set) var state: State = .idle
    /// Rounds failed in a row (sets the backoff).
    private(set) var failures = 0
    /// The opener's rounds in a row that heard the peer but saw no link come.
    private(set) var quietRounds = 0
    /// When the last round started probing, and when probes last went out.
    private var lastRound: Duration?
    private var lastProbe: Duration = .zero

    init(role: Role, configuration: Configuration = Configuration()) {
        self.role = role
        self.configuration = configuration
    }

    /// The token of the round under way.
    var token: [UInt8]? {
        switch state {
        case .asking(let token, _), .probing(let token, _, _, _, _): token
        case .idle, .linked, .backingOff: nil
        }
    }

    /// Whether a round may start now (nothing under way, no link, backoff over).
    func canStart(now: Duration) -> Bool {
        switch state {
        case .idle: true
        case .backingOff(let until): now >= until
        case .asking, .probing, .linked: false
        }
    }

    /// Starts a round with a fresh `token` (16 random bytes).
    mutating func start(token: [UInt8], now: Duration) -> [Action] {
        guard canStart(now: now) else { return [] }
        let until = now + configuration.window
        state = .asking(token: token, until: until)
        return [.sendRendezvous(token: token, answer: false), .wake(at: until)]
    }

    /// The peer's rendezvous message (already verified: signed by the peer, addressed to us,
    /// fresh and not a repeat).
    mutating func rendezvous(token: [UInt8], candidates: [PunchCandidate], answer: Bool, now: Duration) -> [Action] {
        let candidates = Array(candidates.prefix(Self.maxCandidates))
        // Nothing to probe (all refused here, or none given): ignored, whatever the state.
        guard !candidates.isEmpty else { return [] }
        if answer {
            // Only the answer to the round we asked for.
            guard case .asking(let asked, _) = state, asked == token else { return [] }
            return probe(token: token, candidates: candidates, now: now, answering: false)
        }
        switch state {
        case .linked:
            // The peer lost the link we still think up (or is punching anew): join its round.
            guard mayJoin(now: now) else { return [] }
            return probe(token: token, candidates: candidates, now: now, answering: true)
        case .asking(let asked, _):
            // Both asked at once: the dialer's round goes on, the opener joins it. The dialer
            // asks once more: its first request may have reached the broker before the opener
            // subscribed (the opener plainly listens now); a repeat is ignored once probing.
            guard role == .opener else { return [.sendRendezvous(token: asked, answer: false)] }
            return probe(token: token, candidates: candidates, now: now, answering: true)
        case .probing:
            // One round at a time: a member cannot keep this site probing addresses of its
            // choosing faster than a round per window.
            return []
        case .idle, .backingOff:
            // The peer's round (our backoff is for rounds we start), at most one per
            // `minimumJoinInterval`: a member cannot keep this site probing without pause.
            guard mayJoin(now: now) else { return [] }
            return probe(token: token, candidates: candidates, now: now, answering: true)
        }
    }

    /// Whether a round the peer asks for may start now.
    private func mayJoin(now: Duration) -> Bool {
        lastRound.map { now - $0 >= configuration.minimumJoinInterval } ?? true
    }

    private mutating func probe(token: [UInt8], candidates: [PunchCandidate], now: Duration, answering: Bool)
        -> [Action]
    {
        let until = now + configuration.window
        state = .probing(token: token, candidates: candidates, until: until, dialed: nil, heard: false)
        lastRound = now
        lastProbe = now
        var actions: [Action] = []
        if answering { actions.append(.sendRendezvous(token: token, answer: true)) }
        actions.append(.probe(candidates, kind: .probe))
        actions.append(.wake(at: min(until, now + configuration.probeInterval)))
        return actions
    }

    /// A probe with this round's token arrived from `source`. Returns nil for one that is not
    /// for this round (a stranger, an old round): the caller counts it and does nothing else.
    ///
    /// Only a source at one of the round's candidate addresses counts (its port may differ: a
    /// NAT may map per destination). The token travels sealed with the mesh key, so another
    /// member may read it; from its own address it can then neither steer the dial nor get
    /// answers sent to it.
    mutating func probeArrived(_ kind: PunchProbe.Kind, token: [UInt8], from source: PunchCandidate, now: Duration)
        -> [Action]?
    {
        guard case .probing(let current, let candidates, let until, let dialed, _) = state, current == token,
            candidates.contains(where: { $0.sameHost(as: source) })
        else {
            return nil
        }
        var actions: [Action] = []
        if kind == .probe { actions.append(.probe([source], kind: .answer)) }
        var dialing = dialed
        if role == .dialer, dialed == nil {
            dialing = source
            actions.append(.dial(source))
        }
        state = .probing(token: token, candidates: candidates, until: until, dialed: dialing, heard: true)
        return actions
    }

    mutating func tick(now: Duration) -> [Action] {
        switch state {
        case .asking(_, let until):
            guard now >= until else { return [.wake(at: until)] }
            return fail("the peer did not answer the rendezvous within \(configuration.window)", now: now)
        case .probing(_, let candidates, let until, let dialed, let heard):
            guard now >= until else {
                // Probes go out every `probeInterval`, however often the caller ticks.
                let next = lastProbe + configuration.probeInterval
                guard now >= next else { return [.wake(at: min(until, next))] }
                lastProbe = now
                // The address that got through stays open too, candidate or not (a NAT that maps
                // per destination shows a port of its own).
                let targets = dialed.map { candidates.contains($0) ? candidates : candidates + [$0] } ?? candidates
                return [.probe(targets, kind: .probe), .wake(at: min(until, now + configuration.probeInterval))]
            }
            // The window is over. A dial under way decides the round (`linkUp`/`linkDown`); an
            // opener that heard the peer did its part (the link, if any, is the dialer's to make)
            // and starts no round of its own for `firstRetry` (the dialer's may come sooner).
            if dialed != nil { return [] }
            if heard, role == .opener {
                // Not a failure (the dialer's link may still come), but rounds that are heard
                // and never link (the dial keeps failing) slow down like failed ones.
                quietRounds += 1
                state = .backingOff(until: now + backoff(after: quietRounds))
                return []
            }
            return fail("no probe got through within \(configuration.window)", now: now)
        case .idle, .linked, .backingOff:
            return []
        }
    }

    /// A QUIC link to the peer came up from the punched socket (or the tunnel has a direct link
    /// anyway): no round is needed, and failures are forgotten.
    mutating func linkUp() {
        state = .linked
        failures = 0
        quietRounds = 0
    }

    /// The punched link is gone, or the round's dial failed. After a link, the next round may
    /// start at once; a failed dial fails the round.
    mutating func linkDown(now: Duration) -> [Action] {
        switch state {
        case .linked:
            state = .idle
            return []
        case .probing(_, _, _, .some, _):
            // The dial failed: the round failed.
            return fail("the QUIC connection through the punched path did not open", now: now)
        default:
            return []
        }
    }

    private mutating func fail(_ reason: String, now: Duration) -> [Action] {
        failures += 1
        let retryAt = now + backoff(after: failures)
        state = .backingOff(until: retryAt)
        return [.failed(reason: reason, retryAt: retryAt)]
    }

    /// `firstRetry` after the first of `rounds` rounds in a row, doubling up to `maxRetry`.
    private func backoff(after rounds: Int) -> Duration {
        var delay = configuration.firstRetry
        for _ in 1..<max(1, min(rounds, 16)) where delay < configuration.maxRetry { delay = delay * 2 }
        return min(delay, configuration.maxRetry)
    }
}

/// An address a site may be reached at for hole punching: its STUN-mapped public address, or
/// a local one. IP literals only.
struct PunchCandidate: Hashable, Sendable, CustomStringConvertible {
    var address: String
    var port: UInt16

    var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }

    /// The same IP address, whatever the port (an IPv4-mapped IPv6 address is its IPv4 one).
    func sameHost(as other: PunchCandidate) -> Bool {
        guard let mine = IPAddress(address), let theirs = IPAddress(other.address) else {
            return address == other.address
        }
        return mine.normalized == theirs.normalized
    }
}
