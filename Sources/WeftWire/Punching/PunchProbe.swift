import NIOCore

/// One hole-punching datagram, sent from a site's QUIC socket to a peer's candidate address:
/// it opens this side's NAT towards the peer and shows the peer which address of ours gets
/// through. The token comes from the sealed rendezvous message, so a probe from anybody else
/// is dropped unread.
///
/// `00 'w' 'f' 't' | u8 version | u8 kind | 16 token` — 22 bytes. Its first byte has no QUIC
/// fixed bit, and bytes 4–7 are not STUN's magic cookie, so neither mistakes it.
public struct PunchProbe: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// Sent to each candidate while punching.
        case probe = 1
        /// Sent back to where a probe came from.
        case answer = 2
    }

    public static let prefix: [UInt8] = [0x00, 0x77, 0x66, 0x74]
    public static let version: UInt8 = 1
    public static let tokenLength = 16
    public static let length = prefix.count + 2 + tokenLength

    public var kind: Kind
    public var token: [UInt8]

    public init(kind: Kind, token: [UInt8]) {
        precondition(token.count == Self.tokenLength, "a punch token is \(Self.tokenLength) bytes")
        self.kind = kind
        self.token = token
    }

    public func serialized(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: Self.length)
        buffer.writeBytes(Self.prefix)
        buffer.writeInteger(Self.version)
        buffer.writeInteger(kind.rawValue)
        buffer.writeBytes(token)
        return buffer
    }

    /// Parses exactly one probe; anything else (another length, prefix, version or kind) throws.
    public init(parsing datagram: ByteBuffer) throws(WireError) {
        guard datagram.readableBytes == Self.length else {
            throw WireError(.invalidValue, field: "punch probe length")
        }
        var buffer = datagram
        guard try buffer.readWireBytes(length: Self.prefix.count, field: "punch probe prefix") == Self.prefix else {
            throw WireError(.invalidValue, field: "punch probe prefix")
        }
        guard try buffer.readWireInteger(UInt8.self, field: "punch probe version") == Self.version else {
            throw WireError(.invalidValue, field: "punch probe version")
        }
        guard let kind = Kind(rawValue: try buffer.readWireInteger(UInt8.self, field: "punch probe kind")) else {
            throw WireError(.invalidValue, field: "punch probe kind")
        }
        self.kind = kind
        self.token = try buffer.readWireBytes(length: Self.tokenLength, field: "punch token")
    }
}
