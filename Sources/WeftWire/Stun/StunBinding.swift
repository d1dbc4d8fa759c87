import NIOCore

/// A STUN binding request and the address its answer reports (RFC 5389): enough to learn the
/// address a site's traffic leaves from, nothing more.
///
/// The parser takes only a success response to the request it sent (same transaction id,
/// magic cookie), walks the attributes within hard bounds, and prefers XOR-MAPPED-ADDRESS over
/// the older MAPPED-ADDRESS.
public enum StunBinding {
    public static let magicCookie: UInt32 = 0x2112_A442
    public static let headerLength = 20
    /// A binding response larger than this is not one this client asked for.
    public static let maxMessageLength = 1024

    static let bindingRequest: UInt16 = 0x0001
    static let bindingSuccess: UInt16 = 0x0101
    static let mappedAddress: UInt16 = 0x0001
    static let xorMappedAddress: UInt16 = 0x0020

    /// The address and port a STUN server saw.
    public struct Mapped: Hashable, Sendable {
        /// 4 or 16 bytes, network order.
        public var address: [UInt8]
        public var port: UInt16

        public init(address: [UInt8], port: UInt16) {
            self.address = address
            self.port = port
        }
    }

    /// A binding request with this 12-byte transaction id.
    public static func request(transactionID: [UInt8]) -> ByteBuffer {
        precondition(transactionID.count == 12)
        var buffer = ByteBuffer()
        buffer.writeInteger(bindingRequest)
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(magicCookie)
        buffer.writeBytes(transactionID)
        return buffer
    }

    /// The mapped address in a success response to `transactionID`.
    public static func parseResponse(_ bytes: ByteBuffer, transactionID: [UInt8]) throws(WireError) -> Mapped {
        var buffer = bytes
        guard buffer.readableBytes <= maxMessageLength else { throw WireError(.limitExceeded, field: "stun message") }
        let type = try buffer.readWireInteger(UInt16.self, field: "stun type")
        let length = Int(try buffer.readWireInteger(UInt16.self, field: "stun length"))
        let cookie = try buffer.readWireInteger(UInt32.self, field: "stun cookie")
        let id = try buffer.readWireBytes(length: 12, field: "stun transaction")
        guard type == bindingSuccess else { throw WireError(.invalidValue, field: "stun type") }
        guard cookie == magicCookie else { throw WireError(.invalidValue, field: "stun cookie") }
        guard id == transactionID else { throw WireError(.invalidValue, field: "stun transaction") }
        guard length == buffer.readableBytes, length % 4 == 0 else {
            throw WireError(.invalidValue, field: "stun length")
        }
        var fallback: Mapped?
        while buffer.readableBytes > 0 {
            let attribute = try buffer.readWireInteger(UInt16.self, field: "stun attribute")
            let attributeLength = Int(try buffer.readWireInteger(UInt16.self, field: "stun attribute length"))
            guard var value = buffer.readSlice(length: attributeLength) else {
                throw WireError(.truncated, field: "stun attribute")
            }
            let padding = (4 - attributeLength % 4) % 4
            guard buffer.readSlice(length: padding) != nil else { throw WireError(.truncated, field: "stun padding") }
            switch attribute {
            case xorMappedAddress:
                var mapped = try address(&value)
                mapped.port ^= UInt16(magicCookie >> 16)
                let mask = withUnsafeBytes(of: magicCookie.bigEndian, Array.init) + transactionID
                for index in mapped.address.indices { mapped.address[index] ^= mask[index] }
                return mapped
            case mappedAddress:
                fallback = try address(&value)
            default:
                continue
            }
        }
        guard let fallback else { throw WireError(.truncated, field: "stun mapped address") }
        return fallback
    }

    private static func address(_ value: inout ByteBuffer) throws(WireError) -> Mapped {
        _ = try value.readWireInteger(UInt8.self, field: "stun address reserved")
        let family = try value.readWireInteger(UInt8.self, field: "stun address family")
        let port = try value.readWireInteger(UInt16.self, field: "stun port")
        let length: Int
        switch family {
        case 0x01: length = 4
        case 0x02: length = 16
        default: throw WireError(.invalidValue, field: "stun address family")
        }
        let address = try value.readWireBytes(length: length, field: "stun address")
        guard value.readableBytes == 0 else { throw WireError(.trailingBytes, field: "stun address") }
        return Mapped(address: address, port: port)
    }
}
