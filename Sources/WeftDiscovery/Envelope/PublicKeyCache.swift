import Crypto
import Synchronization
import WeftIdentity

/// What a sender's certificate says, extracted once: its public key and when it expires.
struct CertificateSigner: Sendable {
    var key: P256.Signing.PublicKey
    /// The certificate's notValidAfter, in milliseconds since 1970.
    var notValidAfterMillis: UInt64
}

/// Public keys already extracted from certificates, so a sender's certificate is parsed once,
/// not once per message; and each site's presence topic, so it is derived once per key, not
/// once per message. Bounded: when full it starts over, which costs only re-parsing.
public final class PublicKeyCache: Sendable {
    private let entries = Mutex<[CertificateFingerprint: CertificateSigner]>([:])
    /// By the name's bytes, not the `String`: string equality is Unicode canonical equivalence,
    /// and two spellings of one name have different presence topics.
    private struct TopicKey: Hashable {
        var keys: UInt64
        var meshTopic: String
        var siteName: [UInt8]
    }
    private let topics = Mutex<[TopicKey: String]>([:])
    private let limit: Int

    public init(limit: Int = 4096) {
        self.limit = limit
    }

    func signer(for certificate: CertificateFingerprint) -> CertificateSigner? {
        entries.withLock { $0[certificate] }
    }

    /// `keys.presenceTopic(for: siteName)`, derived once.
    func presenceTopic(_ keys: MeshKeys, _ siteName: String) -> String {
        let key = TopicKey(keys: keys.cacheID, meshTopic: keys.topic, siteName: Array(siteName.utf8))
        if let topic = topics.withLock({ $0[key] }) { return topic }
        let topic = keys.presenceTopic(for: siteName)
        topics.withLock { table in
            if table.count >= limit { table.removeAll(keepingCapacity: true) }
            table[key] = topic
        }
        return topic
    }

    func store(_ signer: CertificateSigner, for certificate: CertificateFingerprint) {
        entries.withLock { table in
            if table.count >= limit { table.removeAll(keepingCapacity: true) }
            table[certificate] = signer
        }
    }
}
