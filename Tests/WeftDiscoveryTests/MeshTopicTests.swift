import Crypto
import CryptoExtras
import Testing
import WeftDiscovery

@Suite("mesh topic and libmosquitto", .timeLimit(.minutes(10)))
struct MeshTopicTests {
    @Test("topics that would break sub-topics or leak wildcards are refused")
    func problems() {
        #expect(MeshTopic.problem(with: "kungze/wovenet/your-own-private-topic") == nil)
        #expect(MeshTopic.problem(with: MeshTopic.derived(fromKey: "01234567")) == nil)
        for bad in ["", "a/+/b", "a/#", "mesh/", "$SYS/x", String(repeating: "t", count: 201)] {
            #expect(MeshTopic.problem(with: bad) != nil, "\(bad)")
        }
    }

    @Test("the derived topic and the sealing key come from the scrypt-stretched key, never from the key alone")
    func stretched() throws {
        let key = "01234567"
        // The stretch, recomputed here from its definition: scrypt N = 2^15, r = 8, p = 1.
        let secret = try KDF.Scrypt.deriveKey(
            from: Array(key.utf8), salt: Array("weft mesh key v2 (scrypt)".utf8), outputByteCount: 32,
            rounds: 1 << 15, blockSize: 8, parallelism: 1)
        #expect(MeshSecret.stretched(key) == secret)
        #expect(MeshSecret.rounds * MeshSecret.blockSize * 128 == 32 << 20, "32 MiB per guess")
        let topic = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: secret, salt: Array("weft mesh key v2".utf8), info: Array("mqtt topic v2".utf8),
            outputByteCount: 16)
        #expect(MeshTopic.derived(fromKey: key) == "weft/" + topic.withUnsafeBytes { Array($0) }.hex)
        // The key alone (the old HKDF-only derivation) gives neither the topic nor the sealing key.
        let unstretched = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Array(key.utf8)), salt: Array("weft mesh key v2".utf8),
            info: Array("discovery sealing v2".utf8), outputByteCount: 32)
        #expect(MeshKeys(key: key, topic: "t").sealingKey != unstretched)
        let sealing = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: secret, salt: Array("weft mesh key v2".utf8), info: Array("discovery sealing v2".utf8),
            outputByteCount: 32)
        #expect(MeshKeys(key: key, topic: "t").sealingKey == sealing)
        #expect(MeshTopic.derived(fromKey: key) != MeshTopic.derived(fromKey: key + "8"))
    }

    @Test("libmosquitto 2 is linked")
    func libraryVersion() {
        #expect(Mosquitto.libraryVersion.hasPrefix("2."))
    }
}

extension Array where Element == UInt8 {
    fileprivate var hex: String { map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
}
