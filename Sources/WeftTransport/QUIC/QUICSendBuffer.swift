import CNGTCP2
import NIOCore

/// A link's outbound stream bytes until the peer acknowledges them: ngtcp2 keeps pointers to
/// what it sent (to retransmit it) and never copies, so bytes stay put in fixed chunks from
/// the moment they are queued until their acknowledgement frees them.
struct QUICSendBuffer {
    private struct Chunk {
        let base: UnsafeMutableRawPointer
        let capacity: Int
        var count: Int
        /// Stream offset of the first byte.
        let start: UInt64
        var end: UInt64 { start + UInt64(count) }
    }

    static let chunkSize = 64 * 1024

    private var chunks = CircularBuffer<Chunk>()
    /// Chunks at the front given to ngtcp2 in full (kept until acknowledged): `unsent` starts
    /// after them instead of walking up to 64 MiB of them for every packet.
    private var sentChunks = 0
    /// Everything below is acknowledged (and freed).
    private(set) var ackedOffset: UInt64 = 0
    /// Everything below was given to ngtcp2.
    private(set) var sentOffset: UInt64 = 0
    /// Everything below was queued.
    private(set) var endOffset: UInt64 = 0

    var unsentBytes: Int { Int(endOffset - sentOffset) }
    /// Queued and not yet acknowledged: what writability is measured on.
    var bufferedBytes: Int { Int(endOffset - ackedOffset) }

    mutating func append(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                if chunks.isEmpty || chunks.last!.count == chunks.last!.capacity {
                    let base = UnsafeMutableRawPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
                    chunks.append(Chunk(base: base, capacity: Self.chunkSize, count: 0, start: endOffset))
                }
                let last = chunks.index(before: chunks.endIndex)
                let taken = min(bytes.count - offset, chunks[last].capacity - chunks[last].count)
                (chunks[last].base + chunks[last].count).copyMemory(from: bytes.baseAddress! + offset, byteCount: taken)
                chunks[last].count += taken
                endOffset += UInt64(taken)
                offset += taken
            }
        }
    }

    /// Fills `vectors` with unsent bytes in order; returns how many it filled.
    func unsent(into vectors: UnsafeMutablePointer<ngtcp2_vec>, capacity: Int) -> Int {
        var filled = 0
        for chunk in chunks.dropFirst(sentChunks) where chunk.end > sentOffset {
            guard filled < capacity else { break }
            let skip = sentOffset > chunk.start ? Int(sentOffset - chunk.start) : 0
            vectors[filled] = ngtcp2_vec(
                base: (chunk.base + skip).assumingMemoryBound(to: UInt8.self), len: chunk.count - skip)
            filled += 1
        }
        return filled
    }

    mutating func sent(_ count: Int) {
        sentOffset = min(endOffset, sentOffset + UInt64(count))
        // Only full chunks: the last one may still take appended bytes.
        while sentChunks < chunks.count {
            let chunk = chunks[chunks.index(chunks.startIndex, offsetBy: sentChunks)]
            guard chunk.count == chunk.capacity, chunk.end <= sentOffset else { break }
            sentChunks += 1
        }
    }

    /// The peer has every byte below `offset`.
    mutating func acknowledge(upTo offset: UInt64) {
        ackedOffset = min(sentOffset, max(ackedOffset, offset))
        while let first = chunks.first, first.end <= ackedOffset {
            first.base.deallocate()
            chunks.removeFirst()
            // The counted chunks are a prefix: the first one goes with it (a last chunk that
            // was never full may be acknowledged without having been counted).
            if sentChunks > 0 { sentChunks -= 1 }
        }
    }

    /// Frees every chunk; the connection is gone.
    mutating func release() {
        for chunk in chunks { chunk.base.deallocate() }
        chunks.removeAll()
        sentChunks = 0
        ackedOffset = endOffset
        sentOffset = endOffset
    }
}
