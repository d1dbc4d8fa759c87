import CNGTCP2
import NIOCore

/// A link's outbound stream bytes until the peer acknowledges them: ngtcp2 keeps pointers to
/// what it sent (to retransmit it) and never copies, so the bytes must stay put from the
/// moment they are queued until their acknowledgement. The buffers the link wrote are kept as
/// they are (their storage retained, never written again), not copied.
struct QUICSendBuffer {
    private struct Chunk {
        let base: UnsafeRawPointer
        let count: Int
        /// Keeps `base` alive and in place: the written buffer's storage.
        let storage: Unmanaged<AnyObject>
        /// Stream offset of the first byte.
        let start: UInt64
        var end: UInt64 { start + UInt64(count) }
    }

    private var chunks = CircularBuffer<Chunk>()
    /// Chunks at the front given to ngtcp2 in full (kept until acknowledged): `unsent` starts
    /// after them instead of walking every chunk in flight for every packet.
    private var sentChunks = 0
    /// Everything below is acknowledged (and released).
    private(set) var ackedOffset: UInt64 = 0
    /// Everything below was given to ngtcp2.
    private(set) var sentOffset: UInt64 = 0
    /// Everything below was queued.
    private(set) var endOffset: UInt64 = 0

    var unsentBytes: Int { Int(endOffset - sentOffset) }
    /// Queued and not yet acknowledged: what writability is measured on.
    var bufferedBytes: Int { Int(endOffset - ackedOffset) }
    /// Buffers held (sent and unsent).
    var chunkCount: Int { chunks.count }

    mutating func append(_ buffer: ByteBuffer) {
        guard buffer.readableBytes > 0 else { return }
        let chunk = buffer.withUnsafeReadableBytesWithStorageManagement { bytes, storage in
            Chunk(
                base: UnsafeRawPointer(bytes.baseAddress!), count: bytes.count, storage: storage.retain(),
                start: endOffset)
        }
        chunks.append(chunk)
        endOffset += UInt64(chunk.count)
    }

    /// Fills `vectors` with unsent bytes in order; returns how many it filled.
    func unsent(into vectors: UnsafeMutablePointer<ngtcp2_vec>, capacity: Int) -> Int {
        var filled = 0
        var index = chunks.index(chunks.startIndex, offsetBy: sentChunks)
        while filled < capacity, index != chunks.endIndex {
            let chunk = chunks[index]
            let skip = sentOffset > chunk.start ? Int(sentOffset - chunk.start) : 0
            vectors[filled] = ngtcp2_vec(
                base: UnsafeMutablePointer(mutating: (chunk.base + skip).assumingMemoryBound(to: UInt8.self)),
                len: chunk.count - skip)
            filled += 1
            index = chunks.index(after: index)
        }
        return filled
    }

    mutating func sent(_ count: Int) {
        sentOffset = min(endOffset, sentOffset + UInt64(count))
        while sentChunks < chunks.count {
            guard chunks[chunks.index(chunks.startIndex, offsetBy: sentChunks)].end <= sentOffset else { break }
            sentChunks += 1
        }
    }

    /// The peer has every byte below `offset`.
    mutating func acknowledge(upTo offset: UInt64) {
        ackedOffset = min(sentOffset, max(ackedOffset, offset))
        while let first = chunks.first, first.end <= ackedOffset {
            first.storage.release()
            chunks.removeFirst()
            // Acknowledged bytes were sent: the chunk was counted.
            sentChunks -= 1
        }
    }

    /// Releases every buffer; the connection is gone.
    mutating func release() {
        for chunk in chunks { chunk.storage.release() }
        chunks.removeAll()
        sentChunks = 0
        ackedOffset = endOffset
        sentOffset = endOffset
    }
}
