import Foundation
import Testing
import WeftDiscovery
import WeftIdentity
import WeftWire

/// The tests' wall clock starts here.
private let t0: UInt64 = 1_800_000_000_000

private func at(_ seconds: Int) -> DirectoryStateMachine.Now {
    .init(wallMillis: t0 + UInt64(seconds) * 1000, uptime: .seconds(seconds))
}

/// `site`'s announcement, stamped `seconds` after t0, fed to `machine`.
private func receive(_ site: FakeSite, _ machine: inout DirectoryStateMachine, at seconds: Int) throws
    -> [DirectoryStateMachine.Action]
{
    machine.receive(try site.verifiedAnnouncement(at: t0 + UInt64(seconds) * 1000), retained: false, now: at(seconds))
}

private func drops(_ actions: [DirectoryStateMachine.Action]) -> [DropReason] {
    actions.compactMap { if case .drop(let reason, _, _) = $0 { reason } else { nil } }
}

@Suite("revocation in the directory: here, by a revoker, ignored from anyone else", .timeLimit(.minutes(10)))
struct RevocationTests {
    let me: FakeSite
    var hq: FakeSite
    var member: FakeSite
    var rogue: FakeSite

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

    func events(_ actions: [DirectoryStateMachine.Action]) -> [DirectoryEvent] {
        actions.compactMap { if case .emit(let event) = $0 { event } else { nil } }
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

@Suite("identity rotation in the directory: re-pinned only on the old identity's word", .timeLimit(.minutes(10)))
struct IdentityRotationDirectoryTests {
    let me: FakeSite

    init() throws {
        me = try FakeSite(name: "me")
    }

    @Test("the pinned identity endorses its successor: re-pinned, the peer changes, the old identity is refused")
    func endorsedRotation() throws {
        var machine = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint))
        let old = try FakeSite(name: "berlin")
        _ = try receive(old, &machine, at: 0)
        let nextIdentity = try SiteIdentity.generate()
        var next = try FakeSite(name: "berlin", identity: nextIdentity)
        next.endorsement = try IdentityEndorsement(siteName: "berlin", from: old.identity, to: nextIdentity)
        let actions = try receive(next, &machine, at: 1)
        #expect(
            actions.contains(
                .repinned(siteName: "berlin", from: old.identity.fingerprint, to: nextIdentity.fingerprint)))
        #expect(actions.contains(.pin(siteName: "berlin", fingerprint: nextIdentity.fingerprint)))
        #expect(
            actions.contains {
                if case .emit(.changed(let info)) = $0 { info.fingerprint == nextIdentity.fingerprint } else { false }
            })
        #expect(machine.pins["berlin"] == nextIdentity.fingerprint)
        #expect(drops(try receive(old, &machine, at: 2)) == [.impostor], "the retired identity")
        // Its fingerprint no longer holds a name: a site could pin it under another only by first use.
        #expect(try receive(next, &machine, at: 3).isEmpty, "a refresh of the new identity is silent")
    }

    @Test("no endorsement, one for another name, one by another identity, or one by a revoked identity: impostor")
    func refusedRotations() throws {
        let old = try FakeSite(name: "berlin")
        let other = try FakeSite(name: "paris")
        let nextIdentity = try SiteIdentity.generate()
        func attempt(_ endorsement: IdentityEndorsement?, revoked: [CertificateFingerprint: Revocation] = [:]) throws
            -> [DropReason]
        {
            var machine = DirectoryStateMachine(
                configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint), revoked: revoked)
            _ = try receive(old, &machine, at: 0)
            var next = try FakeSite(name: "berlin", identity: nextIdentity)
            next.endorsement = endorsement
            return drops(try receive(next, &machine, at: 1))
        }
        #expect(try attempt(nil) == [.impostor])
        #expect(
            try attempt(IdentityEndorsement(siteName: "paris", from: old.identity, to: nextIdentity)) == [.impostor])
        #expect(
            try attempt(IdentityEndorsement(siteName: "berlin", from: other.identity, to: nextIdentity)) == [.impostor])
        let good = try IdentityEndorsement(siteName: "berlin", from: old.identity, to: nextIdentity)
        #expect(try attempt(good).isEmpty)
        // A stolen old key is answered by revoking it: then its word counts for nothing.
        var machine = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint))
        _ = try receive(old, &machine, at: 0)
        _ = machine.replaceRevocations([old.identity.fingerprint: Revocation(siteName: "berlin")], revokers: [])
        var next = try FakeSite(name: "berlin", identity: nextIdentity)
        next.endorsement = good
        #expect(drops(try receive(next, &machine, at: 1)) == [.impostor])
    }

    @Test("a peer whose certificate expires while it is up goes down: its links and tunnel go with it")
    func expiresWhileUp() throws {
        var machine = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint))
        // Valid until 5 s after t0.
        let identity = try SiteIdentity.generate(
            now: Date(timeIntervalSince1970: Double(t0) / 1000 - 3600), lifetime: 3605)
        let site = try FakeSite(name: "berlin", identity: identity)
        #expect(try receive(site, &machine, at: 0).contains { if case .emit(.up) = $0 { true } else { false } })
        let actions = try receive(site, &machine, at: 10)
        #expect(drops(actions) == [.expired])
        #expect(actions.contains(.emit(.down(siteName: "berlin", reason: .expired))))
        #expect(machine.peersUp.isEmpty)
    }

    @Test("an expired certificate is refused; the site's own endorsement still moves its pin once it rotates")
    func expired() throws {
        var machine = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint))
        let lapsed = try SiteIdentity.generate(
            now: Date(timeIntervalSince1970: Double(t0) / 1000 - 86_400 * 10), lifetime: 86_400)
        let old = try FakeSite(name: "berlin", identity: lapsed)
        #expect(drops(try receive(old, &machine, at: 0)) == [.expired])
        // Pinned before it lapsed (from the trust file), it rotates with the lapsed key's endorsement.
        machine = DirectoryStateMachine(
            configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint),
            pins: ["berlin": lapsed.fingerprint])
        let nextIdentity = try SiteIdentity.generate()
        var next = try FakeSite(name: "berlin", identity: nextIdentity)
        next.endorsement = try IdentityEndorsement(siteName: "berlin", from: lapsed, to: nextIdentity)
        #expect(drops(try receive(next, &machine, at: 1)).isEmpty)
        #expect(machine.pins["berlin"] == nextIdentity.fingerprint)
    }
}
