import Testing
import WeftDiscovery
import WeftIdentity
import WeftWire

/// Rendezvous messages (hole punching): sealed on the addressee's rendezvous topic by the
/// sender, believed only from a site that is up, addressed to this site, fresh and new.
@Suite("rendezvous messages: topics, senders, addressees, repeats", .timeLimit(.minutes(10)))
struct RendezvousDirectoryTests {
    let me: FakeSite
    var peer: FakeSite
    var stranger: FakeSite
    var machine: DirectoryStateMachine
    let t0: UInt64 = 1_800_000_000_000

    init() throws {
        me = try FakeSite(name: "me")
        peer = try FakeSite(name: "peer")
        stranger = try FakeSite(name: "stranger")
        machine = DirectoryStateMachine(configuration: .init(ownName: "me", ownFingerprint: me.identity.fingerprint))
    }

    func at(_ seconds: Int) -> DirectoryStateMachine.Now {
        .init(wallMillis: t0 + UInt64(seconds) * 1000, uptime: .seconds(seconds))
    }

    func body(to: String = "me", answer: Bool = false) -> [UInt8] {
        Rendezvous(
            to: to, token: Array(repeating: 4, count: 16), answer: answer,
            candidates: [.init(address: [198, 18, 1, 1], port: 4500)]
        ).serialized()
    }

    /// `from`'s rendezvous for `to`, sealed on the rendezvous topic `topic` (the right one by default).
    func sealed(_ from: FakeSite, to: String = "me", body: [UInt8], at millis: UInt64, topic: String? = nil) throws
        -> (payload: [UInt8], topic: String)
    {
        let topic = topic ?? from.keys.rendezvousTopic(to: to, from: from.name)
        let payload = try EnvelopeSealer(keys: from.keys).seal(
            from.message(.rendezvous, body: body, at: millis), identity: from.identity, topic: topic)
        return (payload, topic)
    }

    @Test("from a site that is up, to this site: one event; repeats, misaddressed and unknown senders are dropped")
    mutating func accepted() throws {
        _ = machine.receive(try peer.verifiedAnnouncement(at: t0), retained: false, now: at(0))
        let (payload, topic) = try sealed(peer, body: body(), at: t0 + 1000)
        let verified = try EnvelopeSealer(keys: peer.keys).open(payload, topic: topic).get()
        let actions = machine.receive(verified, retained: false, now: at(1))
        #expect(actions == [.emit(.rendezvous(from: "peer", try Rendezvous(parsing: body())))])
        // The same message again.
        #expect(machine.receive(verified, retained: false, now: at(1)).contains { $0.isDrop(.replayed) })
        // Sealed for this site's topic, but naming another addressee inside.
        let other = try sealed(peer, body: body(to: "someone"), at: t0 + 2000)
        let misaddressed = try EnvelopeSealer(keys: peer.keys).open(other.payload, topic: other.topic).get()
        #expect(machine.receive(misaddressed, retained: false, now: at(2)).contains { $0.isDrop(.unsolicited) })
        // A member that never announced itself here: not pinned, not believed.
        let unknown = try sealed(stranger, body: body(), at: t0 + 3000)
        let fromStranger = try EnvelopeSealer(keys: stranger.keys).open(unknown.payload, topic: unknown.topic).get()
        let refused = machine.receive(fromStranger, retained: false, now: at(3))
        #expect(refused.contains { $0.isDrop(.unsolicited) })
        #expect(!refused.contains { if case .pin = $0 { true } else { false } })
        // Stale.
        let old = try sealed(peer, body: body(), at: t0)
        let stale = try EnvelopeSealer(keys: peer.keys).open(old.payload, topic: old.topic).get()
        #expect(machine.receive(stale, retained: false, now: at(500)).contains { $0.isDrop(.stale) })
    }

    @Test("a rendezvous opens only on a rendezvous topic ending with its sender's tag")
    func topics() throws {
        // On another sender's rendezvous topic: a member speaking for another site.
        let forged = try sealed(
            peer, body: body(), at: t0, topic: peer.keys.rendezvousTopic(to: "me", from: "stranger"))
        #expect(EnvelopeSealer(keys: peer.keys).open(forged.payload, topic: forged.topic).failure == .wrongTopic)
        // On the sender's presence topic.
        let presence = try sealed(peer, body: body(), at: t0, topic: peer.keys.presenceTopic(for: "peer"))
        #expect(EnvelopeSealer(keys: peer.keys).open(presence.payload, topic: presence.topic).failure == .wrongTopic)
        // An announcement may not ride on a rendezvous topic either.
        let topic = peer.keys.rendezvousTopic(to: "me", from: "peer")
        let announcement = try EnvelopeSealer(keys: peer.keys).seal(
            peer.message(.announcement, body: peer.announcement().serialized(), at: t0), identity: peer.identity,
            topic: topic)
        #expect(EnvelopeSealer(keys: peer.keys).open(announcement, topic: topic).failure == .wrongTopic)
        // The subscription covers exactly this site's rendezvous topics.
        #expect(peer.keys.rendezvousSubscription(for: "me").dropLast() == topic.dropLast(32))
        // A mesh topic in any script: tags are compared as bytes.
        let wide = try FakeSite(name: "peer", identity: peer.identity, topic: "网格/站点")
        let sealedWide = try sealed(wide, body: body(), at: t0)
        #expect((try? EnvelopeSealer(keys: wide.keys).open(sealedWide.payload, topic: sealedWide.topic).get()) != nil)
        // The ring opens it too.
        let good = try sealed(peer, body: body(), at: t0)
        let ring = MeshKeyRing(current: peer.keys)
        #expect((try? ring.open(good.payload, topic: good.topic).get()) != nil)
    }
}

extension DirectoryStateMachine.Action {
    func isDrop(_ reason: DropReason) -> Bool {
        if case .drop(let dropped, _, _) = self { dropped == reason } else { false }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { error } else { nil }
    }
}
