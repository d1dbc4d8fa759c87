import Crypto
import Foundation
import SwiftASN1
import X509

/// A site's long-lived key pair and the self-signed certificate that carries it.
///
/// Links present the certificate in mutual TLS and discovery messages are signed with the key;
/// peers pin the certificate's fingerprint, so the identity must survive restarts unchanged.
public struct SiteIdentity: Sendable {
    /// The P-256 signing key.
    public let privateKey: P256.Signing.PrivateKey
    /// The self-signed certificate over `privateKey`'s public key.
    public let certificate: Certificate
    /// The certificate in DER form, as sent in TLS.
    public let certificateDER: [UInt8]
    /// SHA-256 over `certificateDER`.
    public let fingerprint: CertificateFingerprint
    /// A random identifier for this site, kept in the certificate's common name.
    public let siteID: String

    /// How long a new identity's certificate is valid: two years. The site warns from
    /// `renewalWarning` before the end; `weft identity --rotate` makes the next one.
    public static let lifetime: TimeInterval = 2 * 365 * 86_400
    public static let renewalWarning: TimeInterval = 60 * 86_400

    /// When the certificate stops being valid; peers refuse it after that.
    public var notValidAfter: Date { certificate.notValidAfter }

    /// Makes a fresh identity: new key, new certificate valid for `lifetime`.
    public static func generate(now: Date = Date(), lifetime: TimeInterval = Self.lifetime) throws -> SiteIdentity {
        let key = P256.Signing.PrivateKey()
        let siteID = (0..<16).map { _ in UInt8.random(in: 0...255) }.hexEncoded
        let name = try DistinguishedName {
            OrganizationName("weft")
            CommonName("weft-site-\(siteID)")
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(lifetime),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return try SiteIdentity(privateKey: key, certificate: certificate)
    }

    /// Pairs a key and a certificate, checking that they belong together.
    public init(privateKey: P256.Signing.PrivateKey, certificate: Certificate) throws {
        guard certificate.publicKey == Certificate.PublicKey(privateKey.publicKey) else {
            throw IdentityError(
                code: .mismatch,
                message: "the certificate does not match the private key"
            )
        }
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        self.privateKey = privateKey
        self.certificate = certificate
        self.certificateDER = serializer.serializedBytes
        self.fingerprint = CertificateFingerprint(derCertificate: serializer.serializedBytes)
        self.siteID = Self.siteID(of: certificate) ?? fingerprint.bytes.prefix(16).hexEncoded
    }

    /// The certificate as PEM text.
    public var certificatePEM: String {
        get throws { try certificate.serializeAsPEM().pemString }
    }

    /// The private key as PKCS#8 PEM text.
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    private static func siteID(of certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                let text = String(describing: attribute.value)
                if text.hasPrefix("weft-site-") { return String(text.dropFirst("weft-site-".count)) }
            }
        }
        return nil
    }
}
