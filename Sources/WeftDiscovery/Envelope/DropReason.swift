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
    /// A message id seen before.
    public static let replayed = DropReason("replayed")
    /// Signed by another identity than the one pinned for that site name.
    public static let impostor = DropReason("impostor")
    /// A goodbye for a broker session that is not the site's current one.
    public static let staleSession = DropReason("stale session")

    public static let all: [DropReason] = [
        .oversized, .undecryptable, .malformed, .badSignature, .stale, .future, .replayed, .impostor, .staleSession,
    ]

    public var description: String { name }
}
