import NIOCore

/// The signed content of one message-channel message, before sealing.
///
/// Every message names its sender and carries the sender's certificate, so a receiver can
/// check the signature and the pinned fingerprint before it believes anything in `body`.
public struct DiscoveryMessage: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// A site's presence: a `SiteAnnouncement` in `body`.
        case announcement = 1
        /// A site is leaving: a `SiteGoodbye` in `body`.
        case goodbye = 2
        /// A hole-punching rendezvous for one site: a `Rendezvous` in `body`, on that site's
        /// rendezvous topic, never retained.
        case rendezvous = 3
    }

    /// Hard limits, checked by the parser before anything is allocated.
    public enum Limits {
        public static let siteName = 255
        public static let certificate = 4096
        public static let body = 48 * 1024
        public static let signature = 256
        /// The whole plaintext; sealed payloads larger than this plus the AEAD overhead are dropped unread.
        public static let plaintext = 64 * 1024
    }

    public static let messageIDLength = 16

    public var kind: Kind
    /// Milliseconds since 1970 at the sender.
    public var timestampMillis: UInt64
    /// Random, unique per message: receivers drop repeats.
    public var messageID: [UInt8]
    public var senderName: String
    /// The sender's certificate, DER.
    public var senderCertificate: [UInt8]
    public var body: [UInt8]

    public init(
        kind: Kind,
        timestampMillis: UInt64,
        messageID: [UInt8],
        senderName: String,
        senderCertificate: [UInt8],
        body: [UInt8]
    ) {
        self.kind = kind
        self.timestampMillis = timestampMillis
        self.messageID = messageID
        self.senderName = senderName
        self.senderCertificate = senderCertificate
        self.body = body
    }
}

/// A `DiscoveryMessage` and the sender's signature over it.
public struct SignedDiscoveryMessage: Hashable, Sendable {
    public var message: DiscoveryMessage
    /// The exact bytes that were signed (the serialized message).
    public var signedBytes: [UInt8]
    public var signature: [UInt8]

    public init(message: DiscoveryMessage, signedBytes: [UInt8], signature: [UInt8]) {
        self.message = message
        self.signedBytes = signedBytes
        self.signature = signature
    }
}
