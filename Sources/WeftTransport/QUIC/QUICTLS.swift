import CNGTCP2
import WeftIdentity

/// GnuTLS for QUIC links: TLS 1.3 (QUIC's only version), ALPN `weft/1`, the site certificate on
/// both sides, and the peer pinned to its fingerprint in GnuTLS's verify callback. There is no
/// CA, as for TLS links (`LinkTLS`): the announced fingerprint is the only trust.
final class QUICTLS: @unchecked Sendable {
    // Immutable once made; GnuTLS credentials may be shared by sessions on any thread.
    let credentials: gnutls_certificate_credentials_t

    /// TLS 1.3's AEADs, and the groups a site's P-256 key and its peers use.
    static let priority =
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
        + "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE"

    init(identity: SiteIdentity) throws {
        var made: gnutls_certificate_credentials_t?
        try Self.check(gnutls_certificate_allocate_credentials(&made), "allocating credentials")
        guard let made else { throw LinkError(.transport, "GnuTLS gave no credentials") }
        credentials = made
        var certificate = Array(try identity.certificatePEM.utf8)
        var key = Array(identity.privateKeyPEM.utf8)
        let loaded = certificate.withUnsafeMutableBufferPointer { certificateBytes in
            key.withUnsafeMutableBufferPointer { keyBytes in
                var certificateDatum = gnutls_datum_t(
                    data: certificateBytes.baseAddress, size: UInt32(certificateBytes.count))
                var keyDatum = gnutls_datum_t(data: keyBytes.baseAddress, size: UInt32(keyBytes.count))
                return gnutls_certificate_set_x509_key_mem(made, &certificateDatum, &keyDatum, GNUTLS_X509_FMT_PEM)
            }
        }
        try Self.check(loaded, "loading the site certificate")
        gnutls_certificate_set_verify_function(made, quicVerifyPeer)
    }

    deinit {
        gnutls_certificate_free_credentials(credentials)
    }

    /// A session for one connection; `reference` (the connection's `ngtcp2_crypto_conn_ref`) is
    /// how ngtcp2's crypto helper and the verify callback find the connection.
    func makeSession(server: Bool, reference: UnsafeMutableRawPointer) throws -> gnutls_session_t {
        var made: gnutls_session_t?
        let flags = (server ? GNUTLS_SERVER.rawValue : GNUTLS_CLIENT.rawValue) | GNUTLS_NO_END_OF_EARLY_DATA.rawValue
        try Self.check(gnutls_init(&made, UInt32(flags)), "starting a session")
        guard let session = made else { throw LinkError(.transport, "GnuTLS gave no session") }
        do {
            if server {
                try Self.check(ngtcp2_crypto_gnutls_configure_server_session(session), "configuring QUIC")
                gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE)
                gnutls_certificate_send_x509_rdn_sequence(session, 1)
            } else {
                try Self.check(ngtcp2_crypto_gnutls_configure_client_session(session), "configuring QUIC")
            }
            try Self.check(gnutls_priority_set_direct(session, Self.priority, nil), "setting priorities")
            try Self.check(
                gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, UnsafeMutableRawPointer(credentials)),
                "setting credentials")
            var name = Array(LinkTLS.applicationProtocol.utf8)
            let alpn = name.withUnsafeMutableBufferPointer { bytes in
                var datum = gnutls_datum_t(data: bytes.baseAddress, size: UInt32(bytes.count))
                return gnutls_alpn_set_protocols(session, &datum, 1, UInt32(GNUTLS_ALPN_MANDATORY.rawValue))
            }
            try Self.check(alpn, "setting ALPN")
            gnutls_session_set_ptr(session, reference)
            return session
        } catch {
            gnutls_deinit(session)
            throw error
        }
    }

    static func check(_ code: Int32, _ what: String) throws {
        guard code >= 0 else {
            throw LinkError(.transport, "GnuTLS failed \(what): \(String(cString: gnutls_strerror(code)))")
        }
    }
}

/// GnuTLS's verify callback (both sides): the leaf certificate's fingerprint must be one the
/// connection accepts. TLS 1.3's CertificateVerify proves the peer holds its key.
private func quicVerifyPeer(_ session: gnutls_session_t?) -> Int32 {
    guard let session, let reference = gnutls_session_get_ptr(session) else { return GNUTLS_E_CERTIFICATE_ERROR }
    let connectionReference = reference.assumingMemoryBound(to: ngtcp2_crypto_conn_ref.self)
    guard let owner = connectionReference.pointee.user_data else { return GNUTLS_E_CERTIFICATE_ERROR }
    let connection = Unmanaged<QUICConnection>.fromOpaque(owner).takeUnretainedValue()
    var count: UInt32 = 0
    guard let certificates = gnutls_certificate_get_peers(session, &count), count > 0,
        let data = certificates[0].data
    else {
        return GNUTLS_E_CERTIFICATE_ERROR
    }
    let der = UnsafeBufferPointer(start: data, count: Int(certificates[0].size))
    return connection.verifyPeer(CertificateFingerprint(derCertificate: der)) ? 0 : GNUTLS_E_CERTIFICATE_ERROR
}
