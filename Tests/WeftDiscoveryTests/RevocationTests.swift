import Testing
import WeftDiscovery
import WeftIdentity
import WeftWire

@Suite("revocation in the directory: here, by a revoker, ignored from anyone else", .timeLimit(.minutes(10)))
struct RevocationTests {
    let me: FakeSite
    var hq: FakeSite
    var member: FakeSite
    var rogue: FakeSite
    let t0: UInt64 = 1_800_000_000_000

    init() throws {
        me = try FakeSite(name: "me")
        hq = try FakeSite(name: "hq")
        member = try FakeSite(name: "member")
        rogue = try FakeSite(name: "rogue")
    }

    func machine(revokers: Set<String> = ["hq"], revoked: [CertificateFingerprint: Revocation] = [:])
        -> DirectoryStateMachine
    {
        DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint, revokers: revokers),
            revoked: revoked)
    }

    func at(_ seconds: Int) -> DirectoryStateMachine.Now {
        .init(wallMillis: t0 + UInt64(seconds) * 1000, uptime: .seconds(seconds))
    }

    func receive(_ site: FakeSite, _ machine: inout DirectoryStateMachine, at seconds: Int) throws
        -> [DirectoryStateMachine.Action]
    {
        machine.receive(
            try site.verifiedAnnouncement(at: t0 + UInt64(seconds) * 1000), retained: false, now: at(seconds))
    }

    func events(_ actions: [DirectoryStateMachine.Action]) -> [DirectoryEvent] {
        actions.compactMap { if case .emit(let event) = $0 { event } else { nil } }
    }

    func drops(_ actions: [DirectoryStateMachine.Action]) -> [DropReason] {
        actions.compactMap { if case .drop(let reason, _, _) = $0 { reason } else { nil } }
    }

    @Test("revoked here: a peer that is up goes down at once, and nothing it signs is believed, under any name")
    func revokedHere() throws {
        var machine = machine()
        _ = try receive(member, &machine, at: 0)
        let fingerprint = member.identity.fingerprint
        let actions = machine.replaceRevocations([fingerprint: Revocation(siteName: "member")], revokers: ["hq"])
        #expect(events(actions) == [.down(siteName: "member", reason: .revoked)])
        #expect(machine.revokedHere == [fingerprint])
        #expect(drops(try receive(member, &machine, at: 1)) == [.revoked])
        // The same identity under a new name is the same identity.
        let renamed = try FakeSite(name: "member-renamed", identity: member.identity)
        #expect(drops(try receive(renamed, &machine, at: 2)) == [.revoked])
        #expect(machine.peersUp.isEmpty)
        // Lifted: believed again.
        _ = machine.replaceRevocations([:], revokers: ["hq"])
        #expect(events(try receive(member, &machine, at: 3)) == [.up(machine.peersUp["member"]!)])
    }

    @Test("a revoker's announcement revokes at once and lifts when it no longer lists the identity")
    mutating func byRevoker() throws {
        var machine = machine()
        _ = try receive(member, &machine, at: 0)
        _ = try receive(hq, &machine, at: 0)
        hq.revoked = [member.identity.fingerprint]
        let actions = try receive(hq, &machine, at: 1)
        #expect(events(actions) == [.changed(machine.peersUp["hq"]!), .down(siteName: "member", reason: .revoked)])
        #expect(actions.contains(.saveRevocations(lifted: false)))
        #expect(machine.revoked[member.identity.fingerprint] == Revocation(siteName: "member", revokedBy: "hq"))
        #expect(machine.revokedHere.isEmpty, "learned revocations are not announced again")
        #expect(drops(try receive(member, &machine, at: 2)) == [.revoked])
        hq.revoked = []
        let lifted = try receive(hq, &machine, at: 3)
        #expect(lifted.contains(.saveRevocations(lifted: true)))
        #expect(machine.revoked.isEmpty)
        #expect(events(try receive(member, &machine, at: 4)).count == 1)
    }

    @Test("a member that is not a revoker cannot revoke anyone: logged once per change, nothing applied")
    mutating func notARevoker() throws {
        var machine = machine()
        _ = try receive(member, &machine, at: 0)
        rogue.revoked = [member.identity.fingerprint]
        let first = try receive(rogue, &machine, at: 0)
        #expect(first.contains(.ignoredRevocations(by: "rogue", count: 1)))
        #expect(events(first).count == 1, "only rogue's own up: \(first)")
        #expect(machine.revoked.isEmpty && machine.peersUp.keys.sorted() == ["member", "rogue"])
        let again = try receive(rogue, &machine, at: 1)
        #expect(!again.contains { if case .ignoredRevocations = $0 { true } else { false } })
    }

    @Test("a revoker cannot revoke this site or itself; this site is told once that it was revoked")
    mutating func notUsNorItself() throws {
        var machine = machine()
        hq.revoked = [me.identity.fingerprint, hq.identity.fingerprint]
        let actions = try receive(hq, &machine, at: 0)
        #expect(actions.contains(.revokedHere(by: "hq")))
        #expect(machine.revoked.isEmpty && machine.peersUp.keys.sorted() == ["hq"])
        #expect(!(try receive(hq, &machine, at: 1)).contains(.revokedHere(by: "hq")))
    }

    @Test("what a site revoked is lifted when it is no longer a revoker; a new revoker's list applies at once")
    mutating func revokersChange() throws {
        let fingerprint = member.identity.fingerprint
        var machine = machine(revokers: [], revoked: [fingerprint: Revocation(siteName: "member", revokedBy: "hq")])
        #expect(machine.revoked.isEmpty, "hq is not a revoker: its revocation is not loaded")
        _ = try receive(member, &machine, at: 0)
        hq.revoked = [fingerprint]
        _ = try receive(hq, &machine, at: 0)
        #expect(machine.peersUp.keys.sorted() == ["hq", "member"])
        let actions = machine.replaceRevocations([:], revokers: ["hq"])
        #expect(events(actions) == [.down(siteName: "member", reason: .revoked)])
        #expect(machine.revoked[fingerprint]?.revokedBy == "hq")
        let dropped = machine.replaceRevocations(machine.revoked, revokers: [])
        #expect(machine.revoked.isEmpty && dropped.contains(.saveRevocations(lifted: true)))
    }
}
