import Testing
import WeftDiscovery
import WeftWire

@Suite("a ring of mesh keys: the current key and those being rotated out", .timeLimit(.minutes(10)))
struct MeshKeyRingTests {
    @Test("a message under the current or a previous key opens, each on its own topic; one under another key does not")
    func opensUnderEveryKey() throws {
        let old = try FakeSite(name: "a", key: "the-old-mesh-key")
        let new = try FakeSite(name: "a", identity: old.identity, key: "the-new-mesh-key")
        let stranger = try FakeSite(name: "a", identity: old.identity, key: "a-third-mesh-key")
        let ring = MeshKeyRing(current: new.keys, previous: [old.keys])
        for site in [old, new] {
            let opened = try ring.open(try site.sealedAnnouncement(at: 1000), topic: site.topic).get()
            #expect(opened.message.senderName == "a")
            #expect(opened.fingerprint == old.identity.fingerprint)
        }
        #expect(throws: DropReason.undecryptable) {
            try ring.open(try stranger.sealedAnnouncement(at: 1000), topic: stranger.topic).get()
        }
        // A key that is dropped from the ring no longer opens.
        #expect(throws: DropReason.undecryptable) {
            try MeshKeyRing(current: new.keys).open(try old.sealedAnnouncement(at: 1000), topic: old.topic).get()
        }
    }

    @Test("the topic rule holds under every key: a message under the old key moved to another site's topic is refused")
    func topicBoundUnderPreviousKey() throws {
        var old = try FakeSite(name: "member", key: "the-old-mesh-key")
        let new = try FakeSite(name: "member", identity: old.identity, key: "the-new-mesh-key")
        old.topicOverride = old.keys.presenceTopic(for: "victim")
        let ring = MeshKeyRing(current: new.keys, previous: [old.keys])
        #expect(throws: DropReason.wrongTopic) {
            try ring.open(try old.sealedAnnouncement(at: 1000), topic: old.topic).get()
        }
    }

    @Test("keys on one configured topic share a subscription; derived topics get one each; at most four previous keys")
    func subscriptions() {
        let shared = MeshKeyRing(
            current: MeshKeys(key: "the-new-mesh-key", topic: "mesh"),
            previous: [MeshKeys(key: "the-old-mesh-key", topic: "mesh")])
        #expect(shared.subscriptions == ["mesh/p/+"])
        let derived = MeshKeyRing(
            current: MeshKeys(key: "the-new-mesh-key", topic: "weft/new"),
            previous: [MeshKeys(key: "the-old-mesh-key", topic: "weft/old")])
        #expect(derived.subscriptions == ["weft/new/p/+", "weft/old/p/+"])
        let many = MeshKeyRing(
            current: MeshKeys(key: "the-new-mesh-key", topic: "mesh"),
            previous: (0..<9).map { MeshKeys(key: "old-mesh-key-\($0)", topic: "mesh") })
        #expect(many.previous.count == MeshKeyRing.maxPreviousKeys)
    }
}
