import NIOCore

/// Puts one stream's bytes back in order.
///
/// Segments may arrive on any link, out of order, and more than once (a frame re-sent after a
/// link loss may also have arrived on the lost link). Bytes before the delivery point are
/// duplicates and are dropped; overlapping segments are trimmed; whatever becomes contiguous
/// is handed out in order. How many bytes are held out of order is bounded by the stream's
/// credit (the engine's check); what they cost is bounded here:
///
/// - A held piece never pins more memory than about twice its bytes: a small slice of a large
///   read buffer is copied out instead of keeping the whole buffer alive.
/// - Bytes that continue a held piece are appended to it (up to 64 KiB a piece), so an honest
///   stream holds a few pieces per gap between links, whatever its frame sizes. Gaps are capped (`maxPieces`): a peer
///   that scatters single bytes across the window gets `tooManyPieces`, not a million entries.
/// - Held pieces are found by binary search: an insert costs O(log n) comparisons.
public struct ReassemblyBuffer: Sendable {
    /// Separate held pieces (gaps) at most, by default.
    public static let defaultMaxPieces = 4096
    /// A held piece grows by appending up to this size; then a new one starts. Bytes are handed
    /// out in pieces of about this size at most, so a receiver never gets megabytes in one call
    /// (a loop busy with one huge chunk misses its links' pings).
    public static let maxJoinedPiece = 64 << 10

    /// Offset of the next byte to deliver.
    public private(set) var deliveredOffset: UInt64 = 0
    /// The stream's end, once a segment with fin has arrived.
    public private(set) var finalOffset: UInt64?
    /// Held pieces' start offsets, ascending; `pieces[i]` starts at `starts[i]`. Pieces never
    /// overlap.
    private var starts: [UInt64] = []
    private var pieces: [ByteBuffer] = []
    /// The highest end of any segment received.
    private var highestEnd: UInt64 = 0
    /// Bytes held out of order.
    public private(set) var bufferedBytes = 0
    /// Separate pieces allowed.
    public let maxPieces: Int

    public init(maxPieces: Int = ReassemblyBuffer.defaultMaxPieces) {
        self.maxPieces = maxPieces
    }

    public enum InsertError: Error, Hashable, Sendable {
        /// Data beyond the stream's end, or two different ends.
        case finalOffsetViolation
        /// More separate out-of-order pieces than `maxPieces`.
        case tooManyPieces
    }

    /// Whether every byte up to the end has been delivered.
    public var isComplete: Bool { finalOffset == deliveredOffset }

    /// Separate pieces held now.
    public var heldPieces: Int { starts.count }

    /// Adds a segment; returns the bytes that are now in order (possibly none).
    public mutating func insert(offset: UInt64, data: ByteBuffer, fin: Bool) throws(InsertError) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        try insert(offset: offset, data: data, fin: fin, into: &out)
        return out
    }

    /// Adds a segment; appends the bytes that are now in order (possibly none) to `out`, so a
    /// caller that keeps one array for every frame allocates nothing here.
    public mutating func insert(
        offset: UInt64, data: ByteBuffer, fin: Bool, into out: inout [ByteBuffer]
    ) throws(InsertError) {
        let end = offset + UInt64(data.readableBytes)
        if fin {
            if let finalOffset, finalOffset != end { throw .finalOffsetViolation }
            // An end below bytes already received (delivered or held) contradicts them.
            if end < highestEnd { throw .finalOffsetViolation }
            finalOffset = end
        }
        if let finalOffset, end > finalOffset { throw .finalOffsetViolation }
        highestEnd = max(highestEnd, end)
        guard end > deliveredOffset else { return }
        var segment = data
        var start = offset
        if start < deliveredOffset {
            segment.moveReaderIndex(forwardBy: Int(deliveredOffset - start))
            start = deliveredOffset
        }
        if start == deliveredOffset {
            out.append(segment)  // not empty: it ends past `deliveredOffset`
            deliveredOffset = end
            drainContiguous(into: &out)
            return
        }
        try storeOutOfOrder(start: start, segment)
    }

    /// Index of the first held piece starting after `offset`.
    private func firstIndex(startingAfter offset: UInt64) -> Int {
        var low = 0
        var high = starts.count
        while low < high {
            let middle = (low + high) / 2
            if starts[middle] <= offset { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private func end(of index: Int) -> UInt64 { starts[index] + UInt64(pieces[index].readableBytes) }

    private mutating func storeOutOfOrder(start: UInt64, _ segment: ByteBuffer) throws(InsertError) {
        // The parts of the segment not held yet: walk the held pieces it overlaps, from the
        // last one that starts at or before it.
        let end = start + UInt64(segment.readableBytes)
        var cursor = start
        var gaps: [(UInt64, UInt64)] = []
        var index = max(0, firstIndex(startingAfter: start) - 1)
        while index < starts.count, cursor < end {
            let heldStart = starts[index]
            let heldEnd = self.end(of: index)
            index += 1
            if heldEnd <= cursor { continue }
            if heldStart >= end { break }
            if heldStart > cursor { gaps.append((cursor, heldStart)) }
            cursor = max(cursor, heldEnd)
        }
        if cursor < end { gaps.append((cursor, end)) }
        for (gapStart, gapEnd) in gaps {
            var piece = segment.getSlice(
                at: segment.readerIndex + Int(gapStart - start), length: Int(gapEnd - gapStart))!
            let at = firstIndex(startingAfter: gapStart)
            bufferedBytes += piece.readableBytes
            if at > 0, self.end(of: at - 1) == gapStart,
                pieces[at - 1].readableBytes + piece.readableBytes <= Self.maxJoinedPiece
            {
                // It continues a held piece: append (the piece owns its storage from then on).
                pieces[at - 1].writeBuffer(&piece)
                continue
            }
            guard starts.count < maxPieces else {
                bufferedBytes -= piece.readableBytes
                throw .tooManyPieces
            }
            starts.insert(gapStart, at: at)
            pieces.insert(Self.owned(piece), at: at)
        }
    }

    /// `piece` itself when it is most of the storage it shares, else a copy of its bytes: a
    /// held byte must not keep a whole read buffer alive.
    private static func owned(_ piece: ByteBuffer) -> ByteBuffer {
        guard piece.readableBytes * 2 < piece.storageCapacity else { return piece }
        var copy = ByteBufferAllocator().buffer(capacity: piece.readableBytes)
        copy.writeImmutableBuffer(piece)
        return copy
    }

    private mutating func drainContiguous(into out: inout [ByteBuffer]) {
        var taken = 0
        while taken < starts.count, starts[taken] <= deliveredOffset {
            var held = pieces[taken]
            let first = starts[taken]
            taken += 1
            bufferedBytes -= held.readableBytes
            let heldEnd = first + UInt64(held.readableBytes)
            guard heldEnd > deliveredOffset else { continue }
            held.moveReaderIndex(forwardBy: Int(deliveredOffset - first))
            out.append(held)
            deliveredOffset = heldEnd
        }
        if taken > 0 {
            starts.removeFirst(taken)
            pieces.removeFirst(taken)
        }
    }
}
