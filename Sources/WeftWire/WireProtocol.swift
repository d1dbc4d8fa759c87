/// Versions of the tunnel protocol. Every handshake carries one; peers refuse what they do not
/// speak, so the format can change without silent misreads.
public enum WireProtocol {
    /// The version this build speaks.
    public static let version: UInt16 = 1
}
