import NIOCore
import NIOSSL
import WeftIdentity

/// TLS for links: TLS 1.3 only, both sides present their site certificate, and each side
/// accepts the other only if the certificate's fingerprint is one it has pinned.
///
/// There is no certificate authority: trust comes from fingerprints announced over the
/// message channel (or pinned directly), never from "any certificate will do".
public struct LinkTLS: Sendable {
    /// ALPN name of the tunnel protocol, so a link never mistakes another TLS service for a peer.
    public static let applicationProtocol = "weft/1"

    /// Decides whether a peer's certificate is acceptable.
    public typealias PeerPolicy = @Sendable (CertificateFingerprint) -> Bool

    private let serverContext: NIOSSLContext
    private let clientContext: NIOSSLContext

    public init(identity: SiteIdentity) throws {
        let chain = [
            NIOSSLCertificateSource.certificate(try NIOSSLCertificate(bytes: identity.certificateDER, format: .der))
        ]
        let key = NIOSSLPrivateKeySource.privateKey(
            try NIOSSLPrivateKey(bytes: Array(identity.privateKeyPEM.utf8), format: .pem)
        )
        var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateChain = chain
        client.privateKey = key
        Self.harden(&server)
        Self.harden(&client)
        self.serverContext = try NIOSSLContext(configuration: server)
        self.clientContext = try NIOSSLContext(configuration: client)
    }

    private static func harden(_ configuration: inout TLSConfiguration) {
        configuration.minimumTLSVersion = .tlsv13
        // With a custom callback this makes the server request (and require) a client certificate;
        // the callback below does the actual check.
        configuration.certificateVerification = .noHostnameVerification
        // No CA at all: the peer's certificate is pinned by the callback, and a machine
        // without a CA bundle (no ca-certificates) must still make links.
        configuration.trustRoots = .certificates([])
        configuration.applicationProtocols = [applicationProtocol]
    }

    /// A handler for an accepted connection; `policy` says which peers may connect.
    public func makeServerHandler(policy: @escaping PeerPolicy) -> NIOSSLServerHandler {
        NIOSSLServerHandler(context: serverContext, customVerificationCallback: Self.verifier(policy))
    }

    /// A handler for a dialed connection to a peer whose fingerprint is `expected`.
    public func makeClientHandler(expecting expected: CertificateFingerprint) throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(
            context: clientContext,
            serverHostname: nil,
            customVerificationCallback: Self.verifier { $0 == expected }
        )
    }

    /// Hashes the leaf certificate and asks the policy; anything else fails the handshake.
    static func verifier(_ policy: @escaping PeerPolicy) -> NIOSSLCustomVerificationCallback {
        { certificates, promise in
            guard let leaf = certificates.first, let der = try? leaf.toDERBytes() else {
                promise.succeed(.failed)
                return
            }
            promise.succeed(policy(CertificateFingerprint(derCertificate: der)) ? .certificateVerified : .failed)
        }
    }
}
