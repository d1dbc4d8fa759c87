import Crypto
import Testing
import WeftDiscovery
import WeftIdentity
import WeftWire

@Suite("sealed, signed message-channel envelopes", .timeLimit(.minutes(10)))
struct EnvelopeSealerTests {
    @Test("seal then open gives back the message and the sender's fingerprint")
    func roundTrip() throws {
        let site = try FakeSite(name: "site-a")
        let sealed = try site.sealedAnnouncement(at: 1000)
        let opened = try EnvelopeSealer(keys: site.keys).open(sealed, topic: site.topic).get()
        #expect(opened.message.senderName == "site-a")
        #expect(opened.fingerprint == site.identity.fingerprint)
        #expect(try SiteAnnouncement(parsing: opened.message.body) == site.announcement())
    }

    @Test("nothing readable in the sealed bytes: not the name, the apps, the address or the key")
    func opaque() throws {
        var site = try FakeSite(name: "very-visible-site-name")
        site.apps = ["secret-app-name"]
        let sealed = try site.sealedAnnouncement(at: 1000)
        let text = String(decoding: sealed, as: UTF8.self)
        for needle in ["very-visible-site-name", "secret-app-name", "198.18.0.1", "mesh-key-for-tests"] {
            #expect(!text.contains(needle))
        }
        #expect(!site.topic.contains("very-visible"))
    }

    @Test("a wrong key does not open")
    func wrongKey() throws {
        let site = try FakeSite(name: "a")
        let sealed = try site.sealedAnnouncement(at: 1000)
        let other = MeshKeys(key: "another-mesh-key", topic: "weft-test/mesh")
        #expect(throws: DropReason.undecryptable) {
            try EnvelopeSealer(keys: other).open(sealed, topic: site.topic).get()
        }
    }

    @Test("any flipped bit is refused")
    func flippedBits() throws {
        let site = try FakeSite(name: "a")
        let sealed = try site.sealedAnnouncement(at: 1000)
        for index in stride(from: 0, to: sealed.count, by: 7) {
            var copy = sealed
            copy[index] ^= 0x10
            #expect(throws: DropReason.undecryptable) {
                try EnvelopeSealer(keys: site.keys).open(copy, topic: site.topic).get()
            }
        }
    }

    @Test("a payload moved to another topic is refused")
    func topicBound() throws {
        let site = try FakeSite(name: "a")
        let sealed = try site.sealedAnnouncement(at: 1000)
        #expect(throws: DropReason.undecryptable) {
            try EnvelopeSealer(keys: site.keys).open(sealed, topic: site.keys.presenceTopic(for: "b")).get()
        }
    }

    @Test("a member speaking for another site on its own presence topic is refused")
    func wrongTopic() throws {
        var member = try FakeSite(name: "victim")
        member.topicOverride = member.keys.presenceTopic(for: "member")
        let sealed = try EnvelopeSealer(keys: member.keys).seal(
            member.message(.announcement, body: member.announcement().serialized(), at: wallNow()),
            identity: member.identity, topic: member.topic)
        #expect(EnvelopeSealer(keys: member.keys).open(sealed, topic: member.topic) == .failure(.wrongTopic))
        // On the victim's own topic the envelope opens; pinning is the directory's to judge.
        member.topicOverride = nil
        let honest = try EnvelopeSealer(keys: member.keys).seal(
            member.message(.announcement, body: member.announcement().serialized(), at: wallNow()),
            identity: member.identity, topic: member.topic)
        #expect((try? EnvelopeSealer(keys: member.keys).open(honest, topic: member.topic).get()) != nil)
    }

    @Test("garbage and oversized payloads are refused")
    func garbage() throws {
        let keys = MeshKeys(key: "mesh-key-for-tests", topic: "t")
        for payload in [[], [1], Array(repeating: 0, count: 100), (0..<5000).map { UInt8(truncatingIfNeeded: $0) }] {
            #expect(throws: DropReason.undecryptable) {
                try EnvelopeSealer(keys: keys).open(payload, topic: "t/p/x").get()
            }
        }
        #expect(throws: DropReason.oversized) {
            try EnvelopeSealer(keys: keys).open(Array(repeating: 1, count: 2 << 20), topic: "t/p/x").get()
        }
    }

    /// A payload that opens under `honest`'s keys and claims its certificate, signed by another key.
    static func forgedPayload(_ honest: FakeSite) throws -> [UInt8] {
        let forger = try SiteIdentity.generate()
        let message = honest.message(.announcement, body: honest.announcement().serialized(), at: 1000)
        let serializer = DiscoveryMessageSerializer()
        let signedBytes = serializer.serialize(message)
        var input = Array("weft discovery signature v1".utf8)
        input +=
            [UInt8(honest.topic.utf8.count >> 8), UInt8(honest.topic.utf8.count & 0xff)] + Array(honest.topic.utf8)
        input += signedBytes
        let signature = try forger.privateKey.signature(for: input)
        let plaintext = serializer.serialize(signedBytes: signedBytes, signature: Array(signature.rawRepresentation))
        let box = try ChaChaPoly.seal(
            plaintext,
            using: honest.keys.sealingKey,
            authenticating: Array("weft discovery v1".utf8) + Array(honest.topic.utf8)
        )
        return [EnvelopeSealer.version] + Array(box.combined)
    }

    @Test("a message signed by a key other than its certificate's is refused")
    func forgedSignature() throws {
        let honest = try FakeSite(name: "a")
        let payload = try Self.forgedPayload(honest)
        #expect(throws: DropReason.badSignature) {
            try EnvelopeSealer(keys: honest.keys).open(payload, topic: honest.topic).get()
        }
    }

    @Test("the precheck sees the message and its certificate's fingerprint before the signature is checked")
    func precheckFirst() throws {
        let honest = try FakeSite(name: "a")
        let payload = try Self.forgedPayload(honest)
        let sealer = EnvelopeSealer(keys: honest.keys)
        var seen: [(String, CertificateFingerprint)] = []
        // A refusal wins over the bad signature: the signature was never checked.
        #expect(throws: DropReason.replayed) {
            try sealer.open(payload, topic: honest.topic) { message, fingerprint in
                seen.append((message.senderName, fingerprint))
                return .replayed
            }.get()
        }
        #expect(seen.count == 1)
        #expect(seen.first?.0 == "a")
        #expect(seen.first?.1 == honest.identity.fingerprint)
        // Passed by the precheck, the forgery is still refused.
        #expect(throws: DropReason.badSignature) {
            try sealer.open(payload, topic: honest.topic) { _, _ in nil }.get()
        }
        // And an honest message opens through a precheck that lets it by.
        let sealed = try honest.sealedAnnouncement(at: 1000)
        #expect(try sealer.open(sealed, topic: honest.topic) { _, _ in nil }.get().message.senderName == "a")
    }

    @Test("derived names: presence topics are opaque and stable per key")
    func presenceTopics() {
        let keys = MeshKeys(key: "k1k1k1k1", topic: "base")
        #expect(keys.presenceTopic(for: "a") == MeshKeys(key: "k1k1k1k1", topic: "base").presenceTopic(for: "a"))
        #expect(keys.presenceTopic(for: "a") != MeshKeys(key: "k2k2k2k2", topic: "base").presenceTopic(for: "a"))
        #expect(keys.presenceTopic(for: "a") != keys.presenceTopic(for: "b"))
        #expect(keys.presenceTopic(for: "a").hasPrefix("base/p/"))
        #expect(keys.presenceSubscription == "base/p/+")
    }
}
