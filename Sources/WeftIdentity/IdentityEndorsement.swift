import Crypto
import X509

/// A retired identity's signed word that a new identity now speaks for the same site.
///
/// `weft identity --rotate` makes one with the old key before it is dropped; the site carries
/// it in its announcements, and a peer that pinned the old identity re-pins the new one only
/// when the old identity's key signed exactly this site name and this new fingerprint. Nothing
/// else moves a pin but the operator.
public struct IdentityEndorsement: Sendable, Hashable {
    static let label = Array("weft identity rotation v1".utf8)

    /// The retired identity's certificate (DER): its hash is what peers pinned, its key signed.
    public var previousCertificate: [UInt8]
    /// P-256 ECDSA over the label, the site name and the new certificate's fingerprint.
    public var signature: [UInt8]

    public init(previousCertificate: [UInt8], signature: [UInt8]) {
        self.previousCertificate = previousCertificate
        self.signature = signature
    }

    /// `previous` signs that `next` speaks for `siteName` from now on.
    public init(siteName: String, from previous: SiteIdentity, to next: SiteIdentity) throws {
        let signature = try previous.privateKey.signature(for: Self.signedBytes(siteName, next.fingerprint))
        self.init(previousCertificate: previous.certificateDER, signature: Array(signature.rawRepresentation))
    }

    /// The fingerprint of the identity that signed.
    public var previousFingerprint: CertificateFingerprint {
        CertificateFingerprint(derCertificate: previousCertificate)
    }

    /// Whether the identity pinned as `pinned` signed that `fingerprint` speaks for `siteName`.
    public func endorses(
        _ fingerprint: CertificateFingerprint, for siteName: String, replacing pinned: CertificateFingerprint
    ) -> Bool {
        guard previousFingerprint == pinned,
            let certificate = try? Certificate(derEncoded: previousCertificate),
            let key = P256.Signing.PublicKey(certificate.publicKey),
            let signature = try? P256.Signing.ECDSASignature(rawRepresentation: self.signature)
        else { return false }
        return key.isValidSignature(signature, for: Self.signedBytes(siteName, fingerprint))
    }

    static func signedBytes(_ siteName: String, _ fingerprint: CertificateFingerprint) -> [UInt8] {
        let name = Array(siteName.utf8)
        return label + [UInt8(truncatingIfNeeded: name.count >> 8), UInt8(truncatingIfNeeded: name.count)] + name
            + fingerprint.bytes
    }
}
