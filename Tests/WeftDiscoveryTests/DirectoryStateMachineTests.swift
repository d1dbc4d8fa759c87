import Testing
import WeftDiscovery
import WeftIdentity
import WeftWire

@Suite("directory state machine: up, changed, down, and every refusal, on an injected clock", .timeLimit(.minutes(10)))
struct DirectoryStateMachineTests {
    let me: FakeSite
    var peer: FakeSite
    var machine: DirectoryStateMachine
    let t0: UInt64 = 1_800_000_000_000

    init() throws {
        me = try FakeSite(name: "me")
        peer = try FakeSite(name: "peer")
        machine = DirectoryStateMachine(configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint))
    }

    func at(_ seconds: Int) -> DirectoryStateMachine.Now {
        .init(wallMillis: t0 + UInt64(seconds) * 1000, uptime: .seconds(seconds))
    }

    func events(_ actions: [DirectoryStateMachine.Action]) -> [DirectoryEvent] {
        actions.compactMap { if case .emit(let event) = $0 { event } else { nil } }
    }

    func drops(_ actions: [DirectoryStateMachine.Action]) -> [DropReason] {
        actions.compactMap { if case .drop(let reason, _, _) = $0 { reason } else { nil } }
    }

    @Test("first announcement: up and pinned")
    mutating func up() throws {
        let actions = machine.receive(try peer.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        #expect(events(actions).count == 1)
        guard case .up(let info) = events(actions).first else {
            Issue.record("not up")
            return
        }
        #expect(info.siteName == "peer" && info.fingerprint == peer.identity.fingerprint)
        #expect(actions.contains(.pin(siteName: "peer", fingerprint: peer.identity.fingerprint)))
        #expect(machine.peersUp.keys.sorted() == ["peer"])
    }

    @Test("a refresh or a reconnect is silent; new apps or a restart are a change")
    mutating func changes() throws {
        _ = machine.receive(try peer.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        #expect(machine.receive(try peer.verifiedAnnouncement(at: t0 + 1000), retained: false, now: at(1)).isEmpty)
        peer.apps = ["web", "redis"]
        let changed = machine.receive(try peer.verifiedAnnouncement(at: t0 + 2000), retained: false, now: at(2))
        #expect(events(changed).count == 1)
        if case .changed(let info)? = events(changed).first { #expect(info.announcement.apps == ["web", "redis"]) }
        peer.session = Array(repeating: 2, count: 16)
        let reconnected = machine.receive(try peer.verifiedAnnouncement(at: t0 + 3000), retained: false, now: at(3))
        #expect(events(reconnected).isEmpty)
        #expect(reconnected.isEmpty)
        peer.instance = 43
        #expect(
            events(machine.receive(try peer.verifiedAnnouncement(at: t0 + 4000), retained: false, now: at(4))).count
                == 1)
    }

    @Test("an older announcement never overrides a newer one")
    mutating func ordering() throws {
        _ = machine.receive(try peer.verifiedAnnouncement(at: t0 + 5000), retained: false, now: at(5))
        peer.apps = ["old"]
        #expect(machine.receive(try peer.verifiedAnnouncement(at: t0 + 1000), retained: true, now: at(5)).isEmpty)
        #expect(machine.peersUp["peer"]?.announcement.apps == ["web"])
    }

    @Test("a clean goodbye takes the peer down at once")
    mutating func goodbye() throws {
        _ = machine.receive(try peer.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        let actions = machine.receive(try peer.verifiedGoodbye(.stopped, at: t0 + 1000), retained: false, now: at(1))
        #expect(events(actions) == [.down(siteName: "peer", reason: .stopped)])
        #expect(machine.peersUp.isEmpty)
        // And it comes back up with its next announcement.
        #expect(
            events(machine.receive(try peer.verifiedAnnouncement(at: t0 + 2000), retained: false, now: at(2))).count
                == 1)
    }

    @Test("a last will sealed long ago still counts, for the current session only")
    mutating func lastWill() throws {
        let oldWill = try peer.verifiedGoodbye(.lastWill, at: t0)
        _ = machine.receive(try peer.verifiedAnnouncement(at: t0 + 600_000), retained: false, now: at(600))
        let actions = machine.receive(oldWill, retained: false, now: at(601))
        #expect(events(actions) == [.down(siteName: "peer", reason: .vanished)])

        // A will from an earlier session cannot take down the site after it reconnected.
        peer.session = Array(repeating: 9, count: 16)
        _ = machine.receive(try peer.verifiedAnnouncement(at: t0 + 700_000), retained: false, now: at(700))
        peer.session = Array(repeating: 1, count: 16)
        let stale = machine.receive(try peer.verifiedGoodbye(.lastWill, at: t0), retained: false, now: at(701))
        #expect(events(stale).isEmpty)
        #expect(drops(stale) == [.staleSession])
        #expect(machine.peersUp["peer"] != nil)
    }

    @Test("stale, future, replayed and impostor messages are dropped and counted")
    mutating func refusals() throws {
        let fresh = try peer.verifiedAnnouncement(at: t0)
        #expect(
            drops(machine.receive(try peer.verifiedAnnouncement(at: t0 - 121_000), retained: false, now: at(0))) == [
                .stale
            ])
        #expect(
            drops(machine.receive(try peer.verifiedAnnouncement(at: t0 + 31_000), retained: false, now: at(0))) == [
                .future
            ])
        _ = machine.receive(fresh, retained: false, now: at(0))
        #expect(drops(machine.receive(fresh, retained: false, now: at(1))) == [.replayed])
        let impostor = try FakeSite(name: "peer")
        #expect(
            drops(machine.receive(try impostor.verifiedAnnouncement(at: t0 + 1000), retained: false, now: at(1))) == [
                .impostor
            ])
        #expect(machine.dropCounts[.stale] == 1 && machine.dropCounts[.future] == 1)
        #expect(machine.dropCounts[.replayed] == 1 && machine.dropCounts[.impostor] == 1)
        #expect(machine.peersUp["peer"]?.fingerprint == peer.identity.fingerprint)
    }

    @Test("stale retained messages are dropped quietly; retained copies seen again are not replays")
    mutating func quietRetained() throws {
        let actions = machine.receive(try peer.verifiedAnnouncement(at: t0 - 500_000), retained: true, now: at(0))
        #expect(actions == [.drop(.stale, sender: "peer", quiet: true)])
        let announcement = try peer.verifiedAnnouncement(at: t0)
        _ = machine.receive(announcement, retained: false, now: at(0))
        #expect(machine.receive(announcement, retained: true, now: at(1)).isEmpty)
        #expect(machine.dropCounts[.replayed] == nil)
    }

    @Test("pins survive: a different identity for a pinned name is refused")
    func pinsFromDisk() throws {
        let peer = try FakeSite(name: "peer")
        let other = try FakeSite(name: "peer")
        var machine = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint),
            pins: ["peer": peer.identity.fingerprint]
        )
        let actions = machine.receive(try other.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        #expect(drops(actions) == [.impostor])
        let honest = machine.receive(try peer.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        #expect(events(honest).count == 1)
        #expect(!honest.contains { if case .pin = $0 { true } else { false } })
    }

    @Test("one identity speaks for one name: a pinned member claiming a second name is refused")
    mutating func secondName() throws {
        _ = machine.receive(try peer.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        let claim = try FakeSite(name: "newcomer", identity: peer.identity)
        let actions = machine.receive(try claim.verifiedAnnouncement(at: t0 + 1000), retained: false, now: at(1))
        #expect(drops(actions) == [.secondName])
        #expect(machine.pins["newcomer"] == nil && machine.peersUp["newcomer"] == nil)
        // The real newcomer, seen later, is pinned and up.
        let real = try FakeSite(name: "newcomer")
        let up = machine.receive(try real.verifiedAnnouncement(at: t0 + 2000), retained: false, now: at(2))
        #expect(events(up).count == 1 && machine.pins["newcomer"] == real.identity.fingerprint)
        // Our own identity speaking for another name is someone holding our key.
        let stolen = try FakeSite(name: "elsewhere", identity: me.identity)
        #expect(
            drops(machine.receive(try stolen.verifiedAnnouncement(at: t0 + 3000), retained: false, now: at(3)))
                == [.impostor])
    }

    @Test("names pinned on first use are capped: a member inventing names cannot grow the directory")
    func siteCap() throws {
        var machine = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint, maxSites: 3))
        let sites = try (0..<4).map { try FakeSite(name: "site-\($0)") }
        for (index, site) in sites.prefix(3).enumerated() {
            let actions = machine.receive(
                try site.verifiedAnnouncement(at: t0 + UInt64(index)), retained: false, now: at(0))
            #expect(events(actions).count == 1)
        }
        let refused = machine.receive(try sites[3].verifiedAnnouncement(at: t0 + 10), retained: false, now: at(0))
        #expect(drops(refused) == [.tooManySites])
        #expect(machine.pins.count == 3 && machine.peersUp.count == 3)
        // Known sites carry on.
        #expect(
            drops(machine.receive(try sites[0].verifiedAnnouncement(at: t0 + 20), retained: false, now: at(1))) == [])
    }

    @Test("trust: pinned believes only pinned identities; new pins and forgets take effect at once")
    func pinnedOnly() throws {
        let stranger = try FakeSite(name: "stranger")
        var machine = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint, trust: .pinned),
            pins: ["peer": peer.identity.fingerprint]
        )
        #expect(events(machine.receive(try peer.verifiedAnnouncement(at: t0), retained: false, now: at(0))).count == 1)
        let refused = machine.receive(try stranger.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        #expect(drops(refused) == [.notPinned] && !refused.contains { if case .pin = $0 { true } else { false } })
        // The operator pins the stranger and forgets the peer (SIGHUP).
        let changed = machine.replaceTrust(pins: ["stranger": stranger.identity.fingerprint], trust: .pinned)
        #expect(events(changed) == [.down(siteName: "peer", reason: .untrusted)])
        #expect(
            events(machine.receive(try stranger.verifiedAnnouncement(at: t0 + 1000), retained: false, now: at(1)))
                .count == 1)
        #expect(
            drops(machine.receive(try peer.verifiedAnnouncement(at: t0 + 1000), retained: false, now: at(1)))
                == [.notPinned])
        // Back to trust on first use: a forgotten name is learned again.
        #expect(machine.replaceTrust(pins: machine.pins, trust: .firstUse).isEmpty)
        #expect(
            events(machine.receive(try peer.verifiedAnnouncement(at: t0 + 2000), retained: false, now: at(2))).count
                == 1)
        #expect(machine.pins["peer"] == peer.identity.fingerprint)
    }

    @Test("precheck: repeats, stale and future messages are known before they are queued")
    mutating func precheck() throws {
        let first = try peer.verifiedAnnouncement(at: t0)
        #expect(machine.precheck(first.message, retained: false, now: at(0)) == nil)
        _ = machine.receive(first, retained: false, now: at(0))
        #expect(machine.precheck(first.message, retained: false, now: at(1)) == .replayed)
        // A retained copy seen again (after a reconnect) is left to the directory: quiet there.
        #expect(machine.precheck(first.message, retained: true, now: at(1)) == nil)
        let old = try peer.verifiedAnnouncement(at: t0 - 200_000)
        #expect(machine.precheck(old.message, retained: false, now: at(0)) == .stale)
        let ahead = try peer.verifiedAnnouncement(at: t0 + 60_000)
        #expect(machine.precheck(ahead.message, retained: false, now: at(0)) == .future)
        // An old last will is judged by its session, not its age.
        let will = try peer.verifiedGoodbye(.lastWill, at: t0 - 200_000)
        #expect(machine.precheck(will.message, retained: false, now: at(0)) == nil)
    }

    @Test("forgetting a site that is down still ends what it holds (its tunnel may be alive)")
    func forgetWhileDown() throws {
        var machine = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint, trust: .pinned),
            pins: ["peer": peer.identity.fingerprint])
        _ = machine.receive(try peer.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        #expect(events(machine.tick(now: at(200))) == [.down(siteName: "peer", reason: .timedOut)])
        #expect(
            events(machine.replaceTrust(pins: [:], trust: .pinned)) == [.down(siteName: "peer", reason: .untrusted)])
    }

    @Test("a pin changed to another identity takes the peer down")
    mutating func repinned() throws {
        _ = machine.receive(try peer.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        let reinstalled = try FakeSite(name: "peer")
        let actions = machine.replaceTrust(pins: ["peer": reinstalled.identity.fingerprint], trust: .firstUse)
        #expect(events(actions) == [.down(siteName: "peer", reason: .untrusted)])
        #expect(
            events(machine.receive(try reinstalled.verifiedAnnouncement(at: t0 + 1000), retained: false, now: at(1)))
                .count == 1)
    }

    @Test("our own echo is ignored; someone else using our name is an impostor")
    mutating func ownName() throws {
        #expect(machine.receive(try me.verifiedAnnouncement(at: t0), retained: false, now: at(0)).isEmpty)
        let twin = try FakeSite(name: "me")
        #expect(
            drops(machine.receive(try twin.verifiedAnnouncement(at: t0), retained: false, now: at(0))) == [.impostor])
    }

    @Test("a silent peer times out after missing its refreshes")
    mutating func timeout() throws {
        _ = machine.receive(try peer.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        #expect(machine.tick(now: at(94)).isEmpty)
        #expect(events(machine.tick(now: at(96))) == [.down(siteName: "peer", reason: .timedOut)])
        #expect(machine.tick(now: at(200)).isEmpty)
    }

    @Test("the replay cache forgets ids only once their messages would be stale anyway")
    mutating func replayCacheBound() throws {
        var small = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint, replayCacheLimit: 4)
        )
        let first = try peer.verifiedAnnouncement(at: t0)
        _ = small.receive(first, retained: false, now: at(0))
        for second in 1...10 {
            _ = small.receive(
                try peer.verifiedAnnouncement(at: t0 + UInt64(second) * 1000), retained: false, now: at(second))
        }
        // Evicted by the cap, but now stale: still refused.
        #expect(drops(small.receive(first, retained: false, now: at(200))) == [.stale])
    }
}
