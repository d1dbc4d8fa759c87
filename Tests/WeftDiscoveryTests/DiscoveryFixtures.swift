import Foundation
import WeftDiscovery
import WeftIdentity
import WeftWire

/// Builds messages as a site would.
struct FakeSite {
    let name: String
    let identity: SiteIdentity
    let keys: MeshKeys
    var session: [UInt8] = Array(repeating: 1, count: 16)
    var instance: UInt64 = 42
    var apps = ["web"]
    /// Identities it announces as revoked.
    var revoked: [CertificateFingerprint] = []
    /// After a rotation: the previous identity's endorsement of this one.
    var endorsement: IdentityEndorsement?

    /// Where it publishes: its own presence topic unless a test says otherwise.
    var topicOverride: String?

    init(
        name: String, identity: SiteIdentity? = nil, key: String = "mesh-key-for-tests",
        topic: String = "weft-test/mesh"
    ) throws {
        self.name = name
        self.identity = try identity ?? SiteIdentity.generate()
        self.keys = MeshKeys(key: key, topic: topic)
    }

    var topic: String { topicOverride ?? keys.presenceTopic(for: name) }

    func announcement() -> SiteAnnouncement {
        SiteAnnouncement(
            protocolVersion: 1,
            capabilities: 0,
            instance: instance,
            session: session,
            siteID: identity.siteID,
            softwareVersion: "test",
            refreshSeconds: 30,
            endpoints: [.init(linkType: .tls, address: "198.18.0.1", port: 47101)],
            apps: apps,
            revoked: revoked.map(\.bytes),
            previousCertificate: endorsement?.previousCertificate ?? [],
            previousSignature: endorsement?.signature ?? []
        )
    }

    func message(_ kind: DiscoveryMessage.Kind, body: [UInt8], at millis: UInt64, id: [UInt8]? = nil)
        -> DiscoveryMessage
    {
        DiscoveryMessage(
            kind: kind,
            timestampMillis: millis,
            messageID: id ?? (0..<16).map { _ in UInt8.random(in: 0...255) },
            senderName: name,
            senderCertificate: identity.certificateDER,
            body: body
        )
    }

    func sealedAnnouncement(at millis: UInt64) throws -> [UInt8] {
        try EnvelopeSealer(keys: keys).seal(
            message(.announcement, body: announcement().serialized(), at: millis),
            identity: identity,
            topic: topic
        )
    }

    func verified(_ kind: DiscoveryMessage.Kind, body: [UInt8], at millis: UInt64, id: [UInt8]? = nil) throws
        -> VerifiedDiscoveryMessage
    {
        let sealed = try EnvelopeSealer(keys: keys).seal(
            message(kind, body: body, at: millis, id: id),
            identity: identity,
            topic: topic
        )
        return try EnvelopeSealer(keys: keys).open(sealed, topic: topic).get()
    }

    func verifiedAnnouncement(at millis: UInt64, id: [UInt8]? = nil) throws -> VerifiedDiscoveryMessage {
        try verified(.announcement, body: announcement().serialized(), at: millis, id: id)
    }

    func verifiedGoodbye(_ reason: SiteGoodbye.Reason, at millis: UInt64) throws -> VerifiedDiscoveryMessage {
        try verified(.goodbye, body: SiteGoodbye(session: session, reason: reason).serialized(), at: millis)
    }
}

func wallNow() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
