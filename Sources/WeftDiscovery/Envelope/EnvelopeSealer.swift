import Crypto
import Foundation
import SwiftASN1
import WeftIdentity
import WeftWire
import X509

/// A message that opened with the mesh key and whose signature verifies against the
/// certificate it carries. Freshness, repeats and pinning are the directory's to judge.
public struct VerifiedDiscoveryMessage: Sendable, Hashable {
    public var message: DiscoveryMessage
    /// SHA-256 of the sender's certificate.
    public var fingerprint: CertificateFingerprint
    /// When the sender's certificate expires, in milliseconds since 1970.
    public var notValidAfterMillis: UInt64

    public init(message: DiscoveryMessage, fingerprint: CertificateFingerprint, notValidAfterMillis: UInt64 = .max) {
        self.message = message
        self.fingerprint = fingerprint
        self.notValidAfterMillis = notValidAfterMillis
    }
}

/// Seals and opens message-channel payloads.
///
/// Payload: `u8 version (1) | 12-byte nonce | ChaCha20-Poly1305 ciphertext | 16-byte tag`.
/// The additional data binds the payload to the exact topic it was published on, so it cannot
/// be moved to another site's topic, and a message is only believed on the presence topic of
/// the site it names (a rendezvous: on a rendezvous topic that ends with that site's tag), so
/// a member cannot speak for another site on its own topic. Inside is a `DiscoveryMessage` signed with the sender's
/// P-256 site key over a domain label, the topic and the message bytes.
public struct EnvelopeSealer: Sendable {
    public static let version: UInt8 = 1
    static let overhead = 1 + 12 + 16
    static let signatureLabel = Array("weft discovery signature v1".utf8)
    static let sealingLabel = Array("weft discovery v1".utf8)

    /// Payloads above this are dropped without decrypting.
    public static let maxPayloadBytes = DiscoveryMessage.Limits.plaintext + overhead

    public let keys: MeshKeys

    public init(keys: MeshKeys) {
        self.keys = keys
    }

    /// Signs `message` with `identity` and seals it for `topic`.
    public func seal(_ message: DiscoveryMessage, identity: SiteIdentity, topic: String) throws -> [UInt8] {
        let serializer = DiscoveryMessageSerializer()
        let signedBytes = serializer.serialize(message)
        let signature = try identity.privateKey.signature(for: Self.signatureInput(topic: topic, signedBytes))
        let plaintext = serializer.serialize(signedBytes: signedBytes, signature: Array(signature.rawRepresentation))
        let box = try ChaChaPoly.seal(
            plaintext, using: keys.sealingKey, authenticating: Self.sealingLabel + Array(topic.utf8))
        return [Self.version] + Array(box.combined)
    }

    /// Checks a message may pass before its signature is verified; a reason drops it.
    public typealias Precheck = (DiscoveryMessage, CertificateFingerprint) -> DropReason?

    /// Opens and verifies a payload received on `topic`. A cache saves parsing the same
    /// certificate for every message of the same sender. `precheck` sees the message after it
    /// opened and before its signature is checked: a repeat, a stale or a revoked sender is
    /// dropped for a lookup, not a P-256 verification (a member replaying messages costs little).
    public func open(
        _ payload: [UInt8], topic: String, keyCache: PublicKeyCache? = nil, precheck: Precheck? = nil
    ) -> Result<VerifiedDiscoveryMessage, DropReason> {
        guard payload.count <= Self.maxPayloadBytes else { return .failure(.oversized) }
        guard payload.count > Self.overhead, payload[0] == Self.version else { return .failure(.undecryptable) }
        let plaintext: [UInt8]
        do {
            let box = try ChaChaPoly.SealedBox(combined: payload[1...])
            plaintext = Array(
                try ChaChaPoly.open(box, using: keys.sealingKey, authenticating: Self.sealingLabel + Array(topic.utf8))
            )
        } catch {
            return .failure(.undecryptable)
        }
        let signed: SignedDiscoveryMessage
        do {
            signed = try DiscoveryMessageParser().parseSigned(plaintext)
        } catch {
            return .failure(.malformed)
        }
        // Before the signature: checking costs one HMAC, verifying a signature far more.
        let presence =
            keyCache?.presenceTopic(keys, signed.message.senderName)
            ?? keys.presenceTopic(for: signed.message.senderName)
        if signed.message.kind == .rendezvous {
            // `<topic>/r/<addressee>/<sender>`: only the sender's own rendezvous topics. Bytes,
            // not characters: a mesh topic may hold any UTF-8.
            let tag = [UInt8(ascii: "/")] + Array(presence.utf8.suffix(MeshKeys.tagLength))
            let prefix = keys.rendezvousPrefix.utf8
            guard topic.utf8.count == prefix.count + 2 * MeshKeys.tagLength + 1, topic.utf8.starts(with: prefix),
                topic.utf8.suffix(MeshKeys.tagLength + 1).elementsEqual(tag)
            else { return .failure(.wrongTopic) }
        } else {
            guard topic == presence else { return .failure(.wrongTopic) }
        }
        // The digest names the certificate in the cache: hashing 32 bytes, not the whole DER.
        let fingerprint = CertificateFingerprint(derCertificate: signed.message.senderCertificate)
        if let precheck, let reason = precheck(signed.message, fingerprint) { return .failure(reason) }
        let cached = keyCache?.signer(for: fingerprint)
        guard let signer = cached ?? Self.signer(of: signed.message.senderCertificate) else {
            return .failure(.malformed)
        }
        if cached == nil { keyCache?.store(signer, for: fingerprint) }
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signed.signature),
            signer.key.isValidSignature(signature, for: Self.signatureInput(topic: topic, signed.signedBytes))
        else { return .failure(.badSignature) }
        return .success(
            VerifiedDiscoveryMessage(
                message: signed.message, fingerprint: fingerprint, notValidAfterMillis: signer.notValidAfterMillis)
        )
    }

    static func signer(of certificateDER: [UInt8]) -> CertificateSigner? {
        guard let certificate = try? Certificate(derEncoded: certificateDER),
            let key = P256.Signing.PublicKey(certificate.publicKey)
        else { return nil }
        let seconds = certificate.notValidAfter.timeIntervalSince1970
        let millis = seconds >= Double(UInt64.max / 1000) ? UInt64.max : UInt64(max(0, seconds) * 1000)
        return CertificateSigner(key: key, notValidAfterMillis: millis)
    }

    static func signatureInput(topic: String, _ signedBytes: [UInt8]) -> [UInt8] {
        var input = signatureLabel
        input.append(UInt8(truncatingIfNeeded: topic.utf8.count >> 8))
        input.append(UInt8(truncatingIfNeeded: topic.utf8.count))
        input += Array(topic.utf8)
        input += signedBytes
        return input
    }
}
