import NIOCore
import Testing
import WeftWire

@Suite("datagram framing: whole, split, drip-fed, and a length over the limit", .timeLimit(.minutes(10)))
struct DatagramFrameTests {
    static let datagrams: [[UInt8]] = [
        [], [0x42], Array(repeating: 7, count: 1420), (0..<512).map { UInt8($0 & 0xff) },
        Array(repeating: 0xff, count: DatagramFrameParser.maxDatagram),
    ]

    func framed(_ datagrams: [[UInt8]]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for datagram in datagrams {
            #expect(DatagramFrameSerializer().serialize(ByteBuffer(bytes: datagram), into: &buffer))
        }
        return buffer
    }

    func parse(_ bytes: ByteBuffer, pieces: Int) throws -> [[UInt8]] {
        var parser = DatagramFrameParser()
        var out: [[UInt8]] = []
        var bytes = bytes
        let size = max(1, (bytes.readableBytes + pieces - 1) / pieces)
        while bytes.readableBytes > 0 {
            parser.append(bytes.readSlice(length: min(size, bytes.readableBytes))!)
            while let datagram = try parser.next() { out.append(Array(datagram.readableBytesView)) }
        }
        #expect(parser.pendingBytes == 0)
        return out
    }

    @Test("every datagram comes back as it was, whatever pieces the stream arrives in")
    func roundTrip() throws {
        let bytes = framed(Self.datagrams)
        #expect(bytes.readableBytes == Self.datagrams.reduce(0) { $0 + 2 + $1.count })
        for pieces in [1, 2, 3, 7, 1000] {
            #expect(try parse(bytes, pieces: pieces) == Self.datagrams)
        }
    }

    @Test("drip-fed a byte at a time, nothing comes out early")
    func dripFed() throws {
        let bytes = framed([[1, 2, 3], [4]])
        var parser = DatagramFrameParser()
        var out: [[UInt8]] = []
        for (index, byte) in bytes.readableBytesView.enumerated() {
            parser.append(ByteBuffer(bytes: [byte]))
            if let datagram = try parser.next() {
                out.append(Array(datagram.readableBytesView))
                #expect(index == 4 || index == 7, "a datagram after byte \(index)")
            }
        }
        #expect(out == [[1, 2, 3], [4]])
    }

    @Test("a length over the limit is refused before its bytes arrive; the serializer writes nothing too large")
    func limits() throws {
        var parser = DatagramFrameParser(limit: 1500)
        parser.append(ByteBuffer(bytes: [0x05, 0xdd]))  // 1501
        #expect(throws: WireError.self) { try parser.next() }
        var exact = DatagramFrameParser(limit: 1500)
        exact.append(framed([Array(repeating: 1, count: 1500)]))
        #expect(try exact.next()?.readableBytes == 1500)
        // The largest u16 is over any UDP datagram: refused at the default limit too.
        var wire = DatagramFrameParser()
        wire.append(ByteBuffer(bytes: [0xff, 0xff]))
        #expect(throws: WireError.self) { try wire.next() }
        var buffer = ByteBuffer()
        #expect(
            !DatagramFrameSerializer().serialize(
                ByteBuffer(repeating: 0, count: DatagramFrameParser.maxDatagram + 1), into: &buffer))
        #expect(buffer.readableBytes == 0)
    }
}
