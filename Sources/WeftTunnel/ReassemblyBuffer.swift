import NIOCore

/// Puts one stream's bytes back in order.
///
/// Segments may arrive on any link, out of order, and more than once (a frame re-sent after a
/// link loss may also have arrived on the lost link). Bytes before the delivery point are
/// duplicates and are dropped; overlapping segments are trimmed; whatever becomes contiguous
/// is handed out in order. The bytes held out of order are bounded by the caller's limit.
public struct ReassemblyBuffer: Sendable {
    /// Offset of the next byte to deliver.
    public private(set) var deliveredOffset: UInt64 = 0
    /// The stream's end, once a segment with fin has arrived.
    public private(set) var finalOffset: UInt64?
    /// Segments waiting for a gap before them, by start offset, never overlapping.
    private var pending: [UInt64: ByteBuffer] = [:]
    private var pendingOffsets: [UInt64] = []
    /// The highest end of any segment received.
    private var highestEnd: UInt64 = 0
    /// Bytes held in `pending`.
    public private(set) var bufferedBytes = 0

    public init() {}

    public enum InsertError: Error, Hashable, Sendable {
        /// Data beyond the stream's end, or two different ends.
        case finalOffsetViolation
    }

    /// Whether every byte up to the end has been delivered.
    public var isComplete: Bool { finalOffset == deliveredOffset }

    /// Adds a segment; returns the bytes that are now in order (possibly none).
    public mutating func insert(offset: UInt64, data: ByteBuffer, fin: Bool) throws(InsertError) -> [ByteBuffer] {
        let end = offset + UInt64(data.readableBytes)
        if fin {
            if let finalOffset, finalOffset != end { throw .finalOffsetViolation }
            // An end below bytes already received (delivered or held) contradicts them.
            if end < highestEnd { throw .finalOffsetViolation }
            finalOffset = end
        }
        if let finalOffset, end > finalOffset { throw .finalOffsetViolation }
        highestEnd = max(highestEnd, end)
        guard end > deliveredOffset else { return [] }
        var segment = data
        var start = offset
        if start < deliveredOffset {
            segment.moveReaderIndex(forwardBy: Int(deliveredOffset - start))
            start = deliveredOffset
        }
        if start == deliveredOffset {
            var out = [segment]
            deliveredOffset = end
            drainContiguous(into: &out)
            return out.filter { $0.readableBytes > 0 }
        }
        storeOutOfOrder(start: start, segment)
        return []
    }

    private mutating func storeOutOfOrder(start: UInt64, _ segment: ByteBuffer) {
        // Keep only the parts not already held: walk the held segments in order.
        var cursor = start
        let end = start + UInt64(segment.readableBytes)
        var pieces: [(UInt64, ByteBuffer)] = []
        for heldStart in pendingOffsets {
            guard cursor < end else { break }
            let heldEnd = heldStart + UInt64(pending[heldStart]!.readableBytes)
            if heldEnd <= cursor { continue }
            if heldStart >= end { break }
            if heldStart > cursor {
                pieces.append((cursor, slice(segment, from: cursor - start, length: heldStart - cursor)))
            }
            cursor = max(cursor, heldEnd)
        }
        if cursor < end {
            pieces.append((cursor, slice(segment, from: cursor - start, length: end - cursor)))
        }
        for (pieceStart, piece) in pieces where piece.readableBytes > 0 {
            pending[pieceStart] = piece
            bufferedBytes += piece.readableBytes
            let index = pendingOffsets.firstIndex { $0 > pieceStart } ?? pendingOffsets.endIndex
            pendingOffsets.insert(pieceStart, at: index)
        }
    }

    private mutating func drainContiguous(into out: inout [ByteBuffer]) {
        while let first = pendingOffsets.first, first <= deliveredOffset {
            pendingOffsets.removeFirst()
            var held = pending.removeValue(forKey: first)!
            bufferedBytes -= held.readableBytes
            let heldEnd = first + UInt64(held.readableBytes)
            guard heldEnd > deliveredOffset else { continue }
            held.moveReaderIndex(forwardBy: Int(deliveredOffset - first))
            out.append(held)
            deliveredOffset = heldEnd
        }
    }

    private func slice(_ buffer: ByteBuffer, from: UInt64, length: UInt64) -> ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex + Int(from), length: Int(length))!
    }
}
