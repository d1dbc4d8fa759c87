/// Why a message-channel message was not believed. Each has a counter and a log line.
public struct DropReason: Error, Hashable, Sendable, CustomStringConvertible {
    private let name: String
    private init(_ name: String) { self.name = name }

    /// Larger than any honest message.
    public static let oversized = DropReason("oversized")
    /// Did not open with the mesh key (wrong key, flipped bit, garbage).
    public static let undecryptable = DropReason("undecryptable")
    /// Opened, but the content is malformed.
    public static let malformed = DropReason("malformed")
    /// The signature does not verify with the certificate carried in the message.
    public static let badSignature = DropReason("bad signature")
    /// Older than the freshness window.
    public static let stale = DropReason("stale")
    /// From further in the future than clock skew allows.
    public static let future = DropReason("from the future")
    /// A message id seen before, through the same broker.
    public static let replayed = DropReason("replayed")
    /// A message id seen before through another broker: the copy that bridged or clustered
    /// brokers deliver, or a rendezvous sent on every broker. Expected, so dropped quietly.
    public static let duplicate = DropReason("duplicate")
    /// Signed by another identity than the one pinned for that site name.
    public static let impostor = DropReason("impostor")
    /// A goodbye for a broker session that is not the site's current one.
    public static let staleSession = DropReason("stale session")
    /// Not published on the presence topic of the site it names: a member speaking for another.
    public static let wrongTopic = DropReason("wrong topic")
    /// Signed by an identity already pinned for another site name (one name per certificate).
    public static let secondName = DropReason("second name")
    /// An identity nobody pinned, while `crypto.trust` is `pinned`.
    public static let notPinned = DropReason("not pinned")
    /// A new site name while the directory already tracks as many as it allows.
    public static let tooManySites = DropReason("too many sites")
    /// Signed by a revoked identity (`weft trust revoke`, or a site in `crypto.revokers`).
    public static let revoked = DropReason("revoked")
    /// Signed by a certificate past its notValidAfter: the site must rotate its identity.
    public static let expired = DropReason("expired certificate")
    /// Over its sender's share of the queue (`IntakeBudget`): a flood.
    public static let flooded = DropReason("flooded")
    /// A rendezvous from a site that is not up here, or addressed to another site.
    public static let unsolicited = DropReason("unsolicited")

    public static let all: [DropReason] = [
        .oversized, .undecryptable, .malformed, .badSignature, .stale, .future, .replayed, .duplicate, .impostor,
        .staleSession,
        .wrongTopic, .secondName, .notPinned, .tooManySites, .revoked, .expired, .flooded,
        .unsolicited,
    ]

    public var description: String { name }
}
