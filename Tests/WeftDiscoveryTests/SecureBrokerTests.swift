import Crypto
import Foundation
import SwiftASN1
import Testing
import WeftDiscovery
import WeftTestSupport
import X509

/// A throwaway CA and a server certificate for `localhost` and 127.0.0.1, written as PEM.
struct TestPKI {
    let directory: String
    var caFile: String { directory + "/ca.pem" }
    var certFile: String { directory + "/server.pem" }
    var keyFile: String { directory + "/server.key" }

    init() throws {
        directory = NSTemporaryDirectory() + "weft-pki-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("weft test CA") }
        let ca = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(86_400),
            issuer: caName,
            subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(caKey)
        )
        let serverKey = P256.Signing.PrivateKey()
        let server = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(serverKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(86_400),
            issuer: caName,
            subject: try DistinguishedName { CommonName("localhost") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([
                    .dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                ])
            },
            issuerPrivateKey: .init(caKey)
        )
        try ca.serializeAsPEM().pemString.write(toFile: caFile, atomically: true, encoding: .utf8)
        try server.serializeAsPEM().pemString.write(toFile: certFile, atomically: true, encoding: .utf8)
        try serverKey.pemRepresentation.write(toFile: keyFile, atomically: true, encoding: .utf8)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite(
    "discovery over mqtts:// and a password-protected broker",
    .serialized,
    .enabled(if: MosquittoBroker.isAvailable, "mosquitto is not installed (apt-get install mosquitto)"),
    .timeLimit(.minutes(10))
)
struct SecureBrokerTests {
    /// A password file made by mosquitto's own tool.
    func passwordFile(in directory: String, user: String, password: String) async throws -> String {
        let file = directory + "/passwords"
        let tool = try ChildProcess("/usr/bin/mosquitto_passwd", ["-c", "-b", file, user, password])
        #expect(await tool.exited(within: .seconds(60)))
        #expect(tool.exitCode == 0)
        return file
    }

    @Test("mqtts:// with a CA file and a password: sites meet; a wrong password never gets in")
    func tlsAndPassword() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let passwords = try await passwordFile(in: pki.directory, user: "weft", password: "broker-secret")
        let broker = try MosquittoBroker(
            extraConfig: """
                cafile \(pki.caFile)
                certfile \(pki.certFile)
                keyfile \(pki.keyFile)
                password_file \(passwords)
                """,
            allowAnonymous: false
        )
        func site(_ name: String, password: String) throws -> TestSite {
            try TestSite(
                name,
                broker: broker,
                host: "localhost",
                useTLS: true,
                caFile: pki.caFile,
                username: "weft",
                password: password
            )
        }
        let a = try site("tls-a", password: "broker-secret")
        let b = try site("tls-b", password: "broker-secret")
        let intruder = try site("tls-intruder", password: "wrong")
        a.start()
        b.start()
        intruder.start()
        let met = await waitUntil(.seconds(60)) { a.peerNames == ["tls-b"] && b.peerNames == ["tls-a"] }
        #expect(met != nil, "\(a.peerNames) \(b.peerNames)\n\(broker.log)")
        // The intruder did reach the broker and was turned away (not merely slow to start).
        let refused = await waitUntil(.seconds(60)) { broker.log.contains("not authorised") }
        #expect(refused != nil, "the intruder was never refused:\n\(broker.log)")
        #expect(intruder.peerNames.isEmpty)
        #expect(!a.peerNames.contains("tls-intruder"))
        for site in [a, b, intruder] { await site.stop() }
    }

    @Test("a plain mqtt:// client cannot use a TLS-only listener")
    func plainAgainstTLS() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let broker = try MosquittoBroker(
            extraConfig: "cafile \(pki.caFile)\ncertfile \(pki.certFile)\nkeyfile \(pki.keyFile)"
        )
        let a = try TestSite("plain-a", broker: broker)
        let b = try TestSite("tls-b", broker: broker, host: "localhost", useTLS: true, caFile: pki.caFile)
        a.start()
        b.start()
        // Both reached the broker: b connected over TLS, a's plain bytes failed the TLS handshake.
        let tried = await waitUntil(.seconds(60)) {
            // mosquitto words a failed TLS handshake as "Client connection from … failed" or
            // "OpenSSL Error[0]"; both name the cause: plain bytes where TLS was expected.
            broker.log.contains("New client connected") && broker.log.contains("wrong version number")
        }
        #expect(tried != nil, "\(broker.log)")
        #expect(a.peerNames.isEmpty && b.peerNames.isEmpty)
        await a.stop()
        await b.stop()
    }
}

@Suite(
    "discovery over a password-protected plain broker",
    .enabled(if: MosquittoBroker.isAvailable, "mosquitto is not installed (apt-get install mosquitto)"),
    .timeLimit(.minutes(10))
)
struct PasswordBrokerTests {
    @Test("username and password over mqtt://: sites meet; anonymous and wrong passwords stay out")
    func passwordOnly() async throws {
        let directory = NSTemporaryDirectory() + "weft-passwd-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/passwords"
        let tool = try ChildProcess("/usr/bin/mosquitto_passwd", ["-c", "-b", file, "weft", "plain-secret"])
        #expect(await tool.exited(within: .seconds(60)))
        let broker = try MosquittoBroker(extraConfig: "password_file \(file)", allowAnonymous: false)
        let a = try TestSite("pw-a", broker: broker, username: "weft", password: "plain-secret")
        let b = try TestSite("pw-b", broker: broker, username: "weft", password: "plain-secret")
        let anonymous = try TestSite("pw-anonymous", broker: broker)
        let wrong = try TestSite("pw-wrong", broker: broker, username: "weft", password: "guess")
        for site in [a, b, anonymous, wrong] { site.start() }
        let met = await waitUntil(.seconds(60)) { a.peerNames == ["pw-b"] && b.peerNames == ["pw-a"] }
        #expect(met != nil)
        // Both outsiders did reach the broker and were turned away.
        let refused = await waitUntil(.seconds(60)) {
            broker.log.components(separatedBy: "not authorised").count - 1 >= 2
        }
        #expect(refused != nil, "\(broker.log)")
        #expect(anonymous.peerNames.isEmpty && wrong.peerNames.isEmpty)
        #expect(a.peerNames == ["pw-b"])
        for site in [a, b, anonymous, wrong] { await site.stop() }
    }
}
