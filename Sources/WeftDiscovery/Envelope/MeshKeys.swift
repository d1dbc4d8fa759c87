import Crypto
import WeftIdentity

/// Keys and names derived from the mesh key. The key itself is used for nothing else.
///
/// Every derivation is HKDF-SHA256 of the stretched key (`MeshSecret`) with a fixed salt and its
/// own label, so the sealing key, the topic and the presence names are independent of each
/// other, and guessing the key costs a scrypt run per guess.
public struct MeshKeys: Sendable {
    /// ChaCha20-Poly1305 key for sealing message-channel payloads.
    public let sealingKey: SymmetricKey
    /// HMAC key that turns site names into opaque presence sub-topics.
    private let presenceKey: SymmetricKey
    /// The mesh's base topic (from config, or derived).
    public let topic: String
    /// Tells these keys from others in caches (two keys may share a configured topic).
    let cacheID: UInt64

    static let salt = Array("weft mesh key v2".utf8)

    public init(key: String, topic: String) {
        sealingKey = MeshSecret.derive(key, purpose: "discovery sealing v2")
        presenceKey = MeshSecret.derive(key, purpose: "presence topic v2")
        self.topic = topic
        cacheID = HMAC<SHA256>.authenticationCode(for: Array("cache id".utf8), using: presenceKey)
            .withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    /// Where `siteName` keeps its retained presence: `<topic>/p/<32 hex digits>`. Only holders
    /// of the key can tell which site a sub-topic belongs to.
    public func presenceTopic(for siteName: String) -> String {
        topic + "/p/" + tag(for: siteName)
    }

    /// The subscription that receives every site's presence.
    public var presenceSubscription: String { topic + "/p/+" }

    /// Where `from` sends `to` a rendezvous: `<topic>/r/<to's tag>/<from's tag>`. Each site
    /// subscribes to its own (`rendezvousSubscription`), so nobody else receives it.
    public func rendezvousTopic(to: String, from: String) -> String {
        rendezvousPrefix + tag(for: to) + "/" + tag(for: from)
    }

    public func rendezvousSubscription(for siteName: String) -> String {
        rendezvousPrefix + tag(for: siteName) + "/+"
    }

    var rendezvousPrefix: String { topic + "/r/" }

    /// Bytes of a tag.
    static let tagLength = 32

    /// 32 hex digits standing for a site name in topics.
    func tag(for siteName: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(siteName.utf8), using: presenceKey)
        return Array(mac).prefix(16).hexEncoded
    }
}
