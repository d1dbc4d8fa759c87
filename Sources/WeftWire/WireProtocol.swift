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
