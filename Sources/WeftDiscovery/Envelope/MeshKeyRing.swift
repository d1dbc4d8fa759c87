/// The mesh key in force and the keys being rotated out (`crypto.previousKeys`).
///
/// While a rotation runs, a site reads under every key of its ring and also announces under
/// every one: sites that already have the new key hear it under that key, sites still on the
/// old key under the old one. So the mesh never splits, whatever order its sites are changed
/// in, as long as every site gets the new key before any drops the old one. The last will (one
/// per MQTT connection) is sealed under the current key only.
public struct MeshKeyRing: Sendable {
    /// Keys a ring keeps besides the current one: each costs a decryption try per message
    /// from a stranger, and a rotation needs one.
    public static let maxPreviousKeys = 4

    public let current: MeshKeys
    public let previous: [MeshKeys]

    public init(current: MeshKeys, previous: [MeshKeys] = []) {
        self.current = current
        self.previous = Array(previous.prefix(Self.maxPreviousKeys))
    }

    /// Every key, the current one first.
    public var all: [MeshKeys] { [current] + previous }

    /// What to subscribe to, each once (keys on one configured topic share a subscription).
    public var subscriptions: [String] {
        var seen: Set<String> = []
        return all.map(\.presenceSubscription).filter { seen.insert($0).inserted }
    }

    /// Opens a payload under whichever key sealed it. One that opens under none of the keys
    /// for its topic is undecryptable; one that opens is judged under that key alone.
    public func open(
        _ payload: [UInt8], topic: String, keyCache: PublicKeyCache? = nil, precheck: EnvelopeSealer.Precheck? = nil
    ) -> Result<VerifiedDiscoveryMessage, DropReason> {
        var result: Result<VerifiedDiscoveryMessage, DropReason> = .failure(.undecryptable)
        for keys in all where topic.hasPrefix(keys.topic + "/p/") || topic.hasPrefix(keys.rendezvousPrefix) {
            result = EnvelopeSealer(keys: keys).open(payload, topic: topic, keyCache: keyCache, precheck: precheck)
            if case .failure(.undecryptable) = result { continue }
            return result
        }
        return result
    }
}
