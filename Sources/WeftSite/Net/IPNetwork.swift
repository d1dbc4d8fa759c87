/// An address block, `10.0.2.0/24` or `fd00::/8`; a bare address is a block of one.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    /// The first address, host bits cleared.
    public let base: IPAddress
    public let prefixLength: Int

    /// Parses `ADDRESS` or `ADDRESS/PREFIX`. Host bits set after the prefix are an error, so a
    /// typo like `10.0.2.7/24` is not silently read as `10.0.2.0/24`.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let maxLength = address.bytes.count * 8
        var length = maxLength
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), parts[1].allSatisfy(\.isASCII), parsed >= 0, parsed <= maxLength
            else { return nil }
            length = parsed
        }
        let masked = Self.mask(address.bytes, length)
        guard masked == address.bytes else { return nil }
        self.base = address
        self.prefixLength = length
    }

    /// Whether `address` (compared in normalised form) lies inside this block.
    public func contains(_ address: IPAddress) -> Bool {
        let candidate = address.normalized
        let network = base.normalized
        guard candidate.family == network.family else { return false }
        let length = network.family == base.family ? prefixLength : max(0, prefixLength - 96)
        return Self.mask(candidate.bytes, length) == Self.mask(network.bytes, length)
    }

    public var description: String {
        prefixLength == base.bytes.count * 8 ? base.description : "\(base)/\(prefixLength)"
    }

    private static func mask(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = max(0, min(8, length - index * 8))
            return bits == 8 ? byte : byte & ~(UInt8(0xff) >> bits)
        }
    }
}
