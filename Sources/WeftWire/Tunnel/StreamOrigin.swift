import NIOCore

/// Where a stream's client came from: its address and port, and the address and port it
/// connected to at the opening site. Carried in the stream's open (when the peer takes it) so
/// an app behind the far site can be told the client's real address (HAProxy's PROXY
/// protocol), where it would otherwise see only weft's own connection.
///
/// Both addresses are of one family, as in the TCP connection they come from. A client on a
/// Unix socket has no origin.
public struct StreamOrigin: Hashable, Sendable {
    public enum Family: UInt8, Hashable, Sendable {
        case ipv4 = 4
        case ipv6 = 6

        /// Bytes of one address of the family.
        public var addressLength: Int { self == .ipv4 ? 4 : 16 }
    }

    public let family: Family
    /// The client's address, network order (4 or 16 bytes, as `family` says).
    public let sourceAddress: [UInt8]
    public let sourcePort: UInt16
    /// The address the client connected to at the opening site.
    public let destinationAddress: [UInt8]
    public let destinationPort: UInt16

    /// Nil when an address's length does not fit the family.
    public init?(
        family: Family, sourceAddress: [UInt8], sourcePort: UInt16, destinationAddress: [UInt8],
        destinationPort: UInt16
    ) {
        guard sourceAddress.count == family.addressLength, destinationAddress.count == family.addressLength else {
            return nil
        }
        self.family = family
        self.sourceAddress = sourceAddress
        self.sourcePort = sourcePort
        self.destinationAddress = destinationAddress
        self.destinationPort = destinationPort
    }

    /// Bytes on the wire: `u8 family (4 or 6), source address, destination address, u16 source
    /// port, u16 destination port` (the order of a PROXY v2 address block).
    public var encodedLength: Int { 1 + 2 * family.addressLength + 4 }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(family.rawValue)
        buffer.writeBytes(sourceAddress)
        buffer.writeBytes(destinationAddress)
        buffer.writeInteger(sourcePort)
        buffer.writeInteger(destinationPort)
    }

    public static func read(from buffer: inout ByteBuffer) throws(WireError) -> StreamOrigin {
        let raw = try buffer.readWireInteger(UInt8.self, field: "origin family")
        guard let family = Family(rawValue: raw) else { throw WireError(.invalidValue, field: "origin family") }
        let source = try buffer.readWireBytes(length: family.addressLength, field: "origin source")
        let destination = try buffer.readWireBytes(length: family.addressLength, field: "origin destination")
        let sourcePort = try buffer.readWireInteger(UInt16.self, field: "origin source port")
        let destinationPort = try buffer.readWireInteger(UInt16.self, field: "origin destination port")
        // The lengths come from the family, so this cannot fail.
        return StreamOrigin(
            family: family, sourceAddress: source, sourcePort: sourcePort, destinationAddress: destination,
            destinationPort: destinationPort)!
    }
}
