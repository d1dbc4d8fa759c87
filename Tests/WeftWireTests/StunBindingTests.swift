import NIOCore
import Testing
import WeftWire

@Suite("STUN binding: request and response (RFC 5389)", .timeLimit(.minutes(10)))
struct StunBindingTests {
    /// A binding success response captured from coturn 4.6.1 on loopback: XOR-MAPPED-ADDRESS,
    /// MAPPED-ADDRESS, RESPONSE-ORIGIN and SOFTWARE.
    static let coturnResponse: [UInt8] = hex(
        "0101003c2112a442e3dc78251a7ee1949dde2dd9002000080001be295e12a4430001000800019f3b7f000001802b0008000187dc7f00000180220014436f7475726e2d342e362e312027476f72737427"
    )
    static let coturnTransaction: [UInt8] = hex("e3dc78251a7ee1949dde2dd9")

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    @Test("a request is a 20-byte header with the magic cookie and the transaction id")
    func request() {
        let id: [UInt8] = Array(1...12)
        let bytes = StunBinding.request(transactionID: id)
        #expect(Array(bytes.readableBytesView) == [0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42] + id)
    }

    @Test("coturn's answer gives 127.0.0.1 and the port it saw")
    func coturn() throws {
        let mapped = try StunBinding.parseResponse(
            ByteBuffer(bytes: Self.coturnResponse), transactionID: Self.coturnTransaction)
        #expect(mapped == StunBinding.Mapped(address: [127, 0, 0, 1], port: 0x9f3b))
    }

    @Test("every strict prefix, another transaction, a bad cookie or type is refused")
    func refusals() {
        for length in 0..<Self.coturnResponse.count {
            #expect(throws: WireError.self) {
                try StunBinding.parseResponse(
                    ByteBuffer(bytes: Self.coturnResponse.prefix(length)), transactionID: Self.coturnTransaction)
            }
        }
        #expect(throws: WireError.self) {
            try StunBinding.parseResponse(
                ByteBuffer(bytes: Self.coturnResponse), transactionID: Array(repeating: 0, count: 12))
        }
        for (index, value) in [(4, UInt8(0)), (0, UInt8(0x00)), (1, UInt8(0x11))] {
            var bytes = Self.coturnResponse
            bytes[index] = value
            #expect(throws: WireError.self) {
                try StunBinding.parseResponse(ByteBuffer(bytes: bytes), transactionID: Self.coturnTransaction)
            }
        }
        // Oversized messages are refused before they are walked.
        #expect(throws: WireError.self) {
            try StunBinding.parseResponse(
                ByteBuffer(bytes: [UInt8](repeating: 0, count: 2000)), transactionID: Self.coturnTransaction)
        }
    }

    @Test("IPv6 XOR-MAPPED-ADDRESS and a MAPPED-ADDRESS-only answer")
    func otherForms() throws {
        let id: [UInt8] = Array(repeating: 7, count: 12)
        let address: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]
        let mask: [UInt8] = [0x21, 0x12, 0xa4, 0x42] + id
        var body = ByteBuffer()
        body.writeInteger(UInt16(0x0020))
        body.writeInteger(UInt16(20))
        body.writeBytes([0, 2])
        body.writeInteger(UInt16(3478) ^ 0x2112)
        body.writeBytes(zip(address, mask).map { $0 ^ $1 })
        var message = ByteBuffer()
        message.writeInteger(UInt16(0x0101))
        message.writeInteger(UInt16(body.readableBytes))
        message.writeInteger(StunBinding.magicCookie)
        message.writeBytes(id)
        message.writeImmutableBuffer(body)
        #expect(try StunBinding.parseResponse(message, transactionID: id) == .init(address: address, port: 3478))

        var plain = ByteBuffer()
        plain.writeInteger(UInt16(0x0101))
        plain.writeInteger(UInt16(12))
        plain.writeInteger(StunBinding.magicCookie)
        plain.writeBytes(id)
        plain.writeInteger(UInt16(0x0001))
        plain.writeInteger(UInt16(8))
        plain.writeBytes([0, 1, 0x13, 0x88, 198, 18, 0, 9])
        #expect(try StunBinding.parseResponse(plain, transactionID: id) == .init(address: [198, 18, 0, 9], port: 5000))
    }
}
