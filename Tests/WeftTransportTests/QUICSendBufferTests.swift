import CNGTCP2
import NIOCore
import Testing

@testable import WeftTransport

/// The QUIC send buffer keeps the link's written buffers (no copy) until the peer acknowledges
/// them: the vectors it hands ngtcp2 must be the unsent bytes in order, whatever sizes the
/// buffers and the packets have, and stay valid and unchanged until acknowledged.
@Suite("QUIC send buffer")
struct QUICSendBufferTests {
    /// The bytes `vectors` describe, in order.
    private static func bytes(_ vectors: UnsafeMutablePointer<ngtcp2_vec>, _ count: Int) -> [UInt8] {
        (0..<count).flatMap { Array(UnsafeBufferPointer(start: vectors[$0].base, count: vectors[$0].len)) }
    }

    private static func buffer(_ bytes: ArraySlice<UInt8>) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }

    @Test("sent in packets of any size, the vectors walk the written bytes in order")
    func vectorsFollowTheBytes() {
        let vectors = UnsafeMutablePointer<ngtcp2_vec>.allocate(capacity: 4)
        defer { vectors.deallocate() }
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for (writeSize, packetSize) in [(1, 1_200), (1_000, 1_452), (3_333, 500), (10_000, 1_452), (7, 3)] {
            var send = QUICSendBuffer()
            var offset = 0
            while offset < data.count {
                let end = min(data.count, offset + writeSize)
                send.append(Self.buffer(data[offset..<end]))
                offset = end
            }
            send.append(ByteBufferAllocator().buffer(capacity: 16))  // empty: nothing queued
            #expect(send.bufferedBytes == data.count && send.unsentBytes == data.count)
            var carried: [UInt8] = []
            while send.unsentBytes > 0 {
                let filled = send.unsent(into: vectors, capacity: 4)
                #expect(filled > 0 && filled <= 4)
                // A packet takes what fits of the vectors, like ngtcp2 does.
                let taken = Array(Self.bytes(vectors, filled).prefix(packetSize))
                carried += taken
                send.sent(taken.count)
            }
            #expect(carried == data, "writes of \(writeSize) in packets of \(packetSize)")
            #expect(send.bufferedBytes == data.count)
            send.acknowledge(upTo: UInt64(data.count))
            #expect(send.bufferedBytes == 0 && send.chunkCount == 0)
        }
    }

    @Test("acknowledgements release whole buffers only, and never beyond what was sent")
    func acknowledgementsRelease() {
        let vectors = UnsafeMutablePointer<ngtcp2_vec>.allocate(capacity: 8)
        defer { vectors.deallocate() }
        var send = QUICSendBuffer()
        for index in 0..<4 { send.append(Self.buffer(ArraySlice(repeating: UInt8(index), count: 100))) }
        send.sent(250)
        send.acknowledge(upTo: 150)
        #expect(send.ackedOffset == 150 && send.chunkCount == 3)
        // The peer cannot acknowledge what was never sent.
        send.acknowledge(upTo: 400)
        #expect(send.ackedOffset == 250 && send.chunkCount == 2)
        // Going backwards changes nothing.
        send.acknowledge(upTo: 10)
        #expect(send.ackedOffset == 250)
        let filled = send.unsent(into: vectors, capacity: 8)
        #expect(Self.bytes(vectors, filled) == [UInt8](repeating: 2, count: 50) + [UInt8](repeating: 3, count: 100))
        send.release()
        #expect(send.bufferedBytes == 0 && send.unsentBytes == 0 && send.chunkCount == 0)
    }

    @Test("the writer changing its buffer afterwards does not change the queued bytes")
    func queuedBytesStayPut() {
        let vectors = UnsafeMutablePointer<ngtcp2_vec>.allocate(capacity: 2)
        defer { vectors.deallocate() }
        var send = QUICSendBuffer()
        var buffer = Self.buffer([1, 2, 3, 4])
        send.append(buffer)
        // Copy on write: the queued storage is shared, so this write goes elsewhere.
        buffer.setBytes([9, 9, 9, 9], at: buffer.readerIndex)
        buffer = ByteBuffer()
        let filled = send.unsent(into: vectors, capacity: 2)
        #expect(Self.bytes(vectors, filled) == [1, 2, 3, 4])
        send.release()
    }
}
