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
/// not once per message. Bounded: when full it starts over, which costs only re-parsing.
public final class PublicKeyCache: Sendable {
    private let entries = Mutex<[CertificateFingerprint: CertificateSigner]>([:])
    private let limit: Int

    public init(limit: Int = 4096) {
        self.limit = limit
    }

    func signer(for certificate: CertificateFingerprint) -> CertificateSigner? {
        entries.withLock { $0[certificate] }
    }

    func store(_ signer: CertificateSigner, for certificate: CertificateFingerprint) {
        entries.withLock { table in
            if table.count >= limit { table.removeAll(keepingCapacity: true) }
            table[certificate] = signer
        }
    }
}
