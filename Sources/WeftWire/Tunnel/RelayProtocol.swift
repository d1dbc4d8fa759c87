/// How a link is relayed through a third site: two reserved app names on ordinary streams.
///
/// Site A, with no direct way to B, opens a stream to `request` on its tunnel to a relay R,
/// with B's site name as the target. R, if it relays, opens a stream to `delivery` on its
/// tunnel to B, with A's name as the target, and splices the two. A and B then run the link's
/// TLS (their own certificates, pinned) and weft's link handshake inside that byte stream, so R
/// sees only ciphertext. Refusals are stream resets (`relayNotOffered`, `relayNoPath`,
/// `relayLoop`, `limitReached`).
public enum RelayProtocol {
    /// The app name a relay answers: "carry this stream to the site named by the target".
    public static let request = "weft.relay"
    /// The app name a relayed link arrives under at its far end; the target names the site that
    /// asked for it (checked again by the link's TLS and handshake).
    public static let delivery = "weft.relayed"
    /// App names starting with this are weft's own (speed test, relays): no config may expose one.
    public static let reservedPrefix = "weft."
}
