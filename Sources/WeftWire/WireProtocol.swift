/// Versions of the tunnel protocol. Every handshake carries one; peers refuse what they do not
/// speak, so the format can change without silent misreads.
public enum WireProtocol {
    /// The version this build speaks.
    public static let version: UInt16 = 1
}

extension WireProtocol {
    /// Tunnel-wide credit each side has before the peer's first tunnel window update: enough to
    /// start streams at once, small enough that a node never holds much for a peer it has not
    /// heard from.
    public static let initialTunnelCredit: UInt64 = 4 << 20
}

extension WireProtocol {
    /// The largest stream offset, final size or credit limit a frame may carry (QUIC's bound,
    /// 2^62): far beyond any real stream, and low enough that sums and differences of two such
    /// values never overflow 64 bits. The parser refuses more, so the engine never sees it.
    public static let maxStreamOffset: UInt64 = 1 << 62
}
