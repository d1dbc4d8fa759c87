import Testing
import WeftDiscovery
import WeftIdentity
import WeftWire

/// The directory's rules for a site heard through more than one broker: a session per broker
/// connection, copies through another broker taken once and not counted as replays.
@Suite("directory state machine with several brokers: sessions per broker, duplicates", .timeLimit(.minutes(10)))
struct MultiBrokerDirectoryTests {
    let me: FakeSite
    var onFirst: FakeSite
    var onSecond: FakeSite
    var machine: DirectoryStateMachine
    let t0: UInt64 = 1_800_000_000_000

    init() throws {
        me = try FakeSite(name: "me")
        // One site, one identity, announcing on two brokers: a session on each.
        onFirst = try FakeSite(name: "peer")
        onSecond = try FakeSite(name: "peer", identity: onFirst.identity)
        onSecond.session = Array(repeating: 2, count: 16)
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

    /// Heard on both brokers, in the order the brokers delivered: the second is silent.
    mutating func upOnBoth(at seconds: Int = 0) throws {
        let first = machine.receive(
            try onFirst.verifiedAnnouncement(at: t0 + UInt64(seconds) * 1000 + 1), retained: false, via: 0,
            now: at(seconds))
        #expect(events(first).count == 1)
        // Published a moment earlier on the other broker, delivered later: older, still alive.
        let second = machine.receive(
            try onSecond.verifiedAnnouncement(at: t0 + UInt64(seconds) * 1000), retained: false, via: 1,
            now: at(seconds))
        #expect(second.isEmpty)
    }

    @Test("a last will ends the session of its broker only; the last session's will takes the site down")
    mutating func willPerBroker() throws {
        try upOnBoth()
        let firstWill = machine.receive(
            try onFirst.verifiedGoodbye(.lastWill, at: t0), retained: false, via: 0, now: at(1))
        #expect(firstWill.isEmpty)
        #expect(machine.peersUp["peer"] != nil)
        let secondWill = machine.receive(
            try onSecond.verifiedGoodbye(.lastWill, at: t0), retained: false, via: 1, now: at(2))
        #expect(events(secondWill) == [.down(siteName: "peer", reason: .vanished)])
    }

    @Test("a clean stop said on one broker takes the site down at once; the copy on the other is quiet")
    mutating func stopOnOne() throws {
        try upOnBoth()
        let stopped = machine.receive(
            try onSecond.verifiedGoodbye(.stopped, at: t0 + 2000), retained: false, via: 1, now: at(2))
        #expect(events(stopped) == [.down(siteName: "peer", reason: .stopped)])
        let other = machine.receive(
            try onFirst.verifiedGoodbye(.stopped, at: t0 + 2000), retained: false, via: 0, now: at(2))
        #expect(events(other).isEmpty)
        #expect(drops(other) == [.staleSession])
    }

    @Test("a broker that went away takes its session along by timeout; the site stays up on the other")
    mutating func sessionTimesOut() throws {
        try upOnBoth()
        // Only the second broker carries refreshes from now on.
        for second in stride(from: 30, through: 180, by: 30) {
            _ = machine.receive(
                try onSecond.verifiedAnnouncement(at: t0 + UInt64(second) * 1000), retained: false, via: 1,
                now: at(second))
            #expect(machine.tick(now: at(second)).isEmpty)
        }
        // The first session timed out long ago: its will now ends nothing.
        let lateWill = machine.receive(
            try onFirst.verifiedGoodbye(.lastWill, at: t0), retained: false, via: 0, now: at(181))
        #expect(drops(lateWill) == [.staleSession])
        #expect(machine.peersUp["peer"] != nil)
        #expect(events(machine.tick(now: at(280))) == [.down(siteName: "peer", reason: .timedOut)])
    }

    @Test("the same message through a second broker is a duplicate, dropped quietly; again through either, a replay")
    mutating func duplicates() throws {
        let message = try onFirst.verifiedAnnouncement(at: t0)
        #expect(events(machine.receive(message, retained: false, via: 0, now: at(0))).count == 1)
        #expect(machine.precheck(message.message, retained: false, via: 1, now: at(0)) == .duplicate)
        #expect(machine.precheck(message.message, retained: false, via: 0, now: at(0)) == .replayed)
        let copy = machine.receive(message, retained: false, via: 1, now: at(0))
        #expect(copy == [.drop(.duplicate, sender: "peer", quiet: true)])
        #expect(drops(machine.receive(message, retained: false, via: 1, now: at(1))) == [.replayed])
        #expect(drops(machine.receive(message, retained: false, via: 0, now: at(1))) == [.replayed])
        #expect(machine.dropCounts[.duplicate] == 1)
        #expect(machine.dropCounts[.replayed] == 2)
        // Refused before the queue, a duplicate is quiet too.
        #expect(machine.refused(.duplicate) == [.drop(.duplicate, sender: nil, quiet: true)])
    }

    @Test("a member inventing sessions grows nothing: the oldest sessions go beyond the cap")
    mutating func sessionCap() throws {
        var small = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint, maxSessionsPerPeer: 3))
        var peer = onFirst
        for index in 0..<10 {
            peer.session = Array(repeating: UInt8(index + 10), count: 16)
            _ = small.receive(
                try peer.verifiedAnnouncement(at: t0 + UInt64(index) * 1000), retained: false, now: at(index))
        }
        // Sessions 0…6 were pushed out: their wills end nothing.
        peer.session = Array(repeating: 10, count: 16)
        #expect(
            drops(small.receive(try peer.verifiedGoodbye(.lastWill, at: t0), retained: false, now: at(11))) == [
                .staleSession
            ])
        for index in 7..<10 {
            peer.session = Array(repeating: UInt8(index + 10), count: 16)
            let will = small.receive(try peer.verifiedGoodbye(.lastWill, at: t0), retained: false, now: at(12))
            #expect(events(will) == (index == 9 ? [.down(siteName: "peer", reason: .vanished)] : []))
        }
    }

    @Test("this site's own last will, heard back, asks for a new announcement; its own announcements do not")
    mutating func ownWill() throws {
        #expect(machine.receive(try me.verifiedAnnouncement(at: t0), retained: true, now: at(0)).isEmpty)
        #expect(
            machine.receive(try me.verifiedGoodbye(.lastWill, at: t0), retained: true, now: at(0)) == [.ownWillHeard])
        #expect(machine.receive(try me.verifiedGoodbye(.stopped, at: t0), retained: false, now: at(0)).isEmpty)
    }
}
