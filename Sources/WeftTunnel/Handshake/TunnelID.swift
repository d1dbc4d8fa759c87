/// Names one tunnel between two site incarnations.
///
/// Both sides derive it from the same facts — the two site names and the two incarnations — so
/// a link from either direction joins the same tunnel, and a site that restarted (a new
/// incarnation) can never be handed a link, or data, meant for the tunnel of its previous life.
public struct TunnelID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// The incarnation of the site whose name sorts first, then the other's, big-endian.
    public init(localSite: String, localIncarnation: UInt64, peerSite: String, peerIncarnation: UInt64) {
        let (first, second) =
            localSite < peerSite ? (localIncarnation, peerIncarnation) : (peerIncarnation, localIncarnation)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for value in [first, second] {
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: value >> shift))
            }
        }
        self.bytes = bytes
    }

    public var description: String {
        bytes.prefix(4).map { String($0, radix: 16).leftPadded(to: 2) }.joined() + "…"
            + bytes[8..<12].map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
