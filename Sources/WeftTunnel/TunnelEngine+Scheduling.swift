import NIOCore
import WeftWire

/// Which frame goes out next, on which link: queued control frames first, then stream data
/// round-robin, each on the link where it is expected to arrive first; and re-injection.
extension TunnelEngine {
    mutating func markReady(_ id: StreamID) {
        creditBlocked.remove(id)
        if readySet.insert(id).inserted { ready.append(id) }
    }

    /// Fills links with frames while any link has room.
    mutating func pump(now: Duration) {
        guard !failed else { return }
        while true {
            // The next frame: queued reliable frames first, then stream data round-robin.
            let size: Int
            var fromQueue = false
            if let first = queue.first {
                size = estimatedSize(first)
                fromQueue = true
            } else if let sizeOfNext = nextDataSize() {
                size = sizeOfNext
            } else {
                break
            }
            guard let link = chooseLink(for: size) else { break }
            let frame: TunnelFrame
            if fromQueue {
                frame = queue.removeFirst()
            } else {
                let chunk = links[link]!.preferredChunk(maximum: options.frameLimits.maxDataChunk)
                guard let built = buildDataFrame(now: now, limit: chunk) else { continue }
                frame = built
            }
            let bytes = write(frame, on: link)
            withLink(link) { $0.recordSent(frame, bytes: bytes, now: now) }
        }
        if !creditBlocked.isEmpty { reinject(now: now) }
        resumeReadingWhereDrained()
    }

    /// Opportunistic re-sending (as in Multipath TCP): a reader waits — its stream has no
    /// credit — while a link has room. The wait is usually a frame still queued on a slower
    /// link, holding back everything behind it; a copy of the oldest such frame goes out on
    /// the link with room, and the receiver keeps whichever arrives first. Each frame is
    /// copied once, and only from a link less than half as fast as the one it is copied to
    /// (or suspected): between links of about the same speed, copies would only waste room.
    mutating func reinject(now: Duration) {
        guard links.count > 1 else { return }
        while let target = chooseLink(for: Self.dataFrameOverhead + options.frameLimits.maxDataChunk),
            let targetLink = links[target]
        {
            let targetRate = targetLink.deliveryRate ?? 0
            var oldest: (link: LinkID, index: CircularBuffer<LinkState.SentFrame>.Index, sentAt: Duration)?
            for (id, link) in links where id != target && (link.suspect || (link.deliveryRate ?? 0) * 2 < targetRate) {
                // Late for its own link, too: a frame on its way at the link's usual pace is
                // not worth a copy.
                let late = link.smoothedRTT.map { $0 + link.rttVariance * 4 } ?? .milliseconds(100)
                let from = link.requeuedBelow
                guard
                    let index = link.unacked.firstIndex(where: { sent in
                        guard case .streamData = sent.frame else { return false }
                        return !sent.reinjected && sent.sequence >= from
                    })
                else { continue }
                let sentAt = link.unacked[index].sentAt
                // Not a frame that is merely on its way at the usual pace.
                guard now - sentAt >= max(late, targetLink.smoothedRTT ?? .milliseconds(1)) else { continue }
                if oldest == nil || sentAt < oldest!.sentAt { oldest = (id, index, sentAt) }
            }
            guard let oldest else { return }
            guard
                let frame = withLink(
                    oldest.link,
                    { link in
                        link.unacked[oldest.index].reinjected = true
                        return link.unacked[oldest.index].frame
                    })
            else { return }
            let bytes = write(frame, on: target)
            withLink(target) { $0.recordSent(frame, bytes: bytes, now: now) }
            resentBytes += bytes
        }
    }

    func estimatedSize(_ frame: TunnelFrame) -> Int {
        switch frame {
        case .streamData(let data): Self.dataFrameOverhead + data.data.readableBytes
        default: Self.controlFrameEstimate
        }
    }

    /// The size of the data frame `buildDataFrame` would cut now, or nil if no stream can send.
    mutating func nextDataSize() -> Int? {
        while let id = ready.first {
            guard let stream = streams[id] else {
                ready.removeFirst()
                readySet.remove(id)
                continue
            }
            let bytes = sendableBytes(stream)
            let finNow = stream.finRequested && !stream.finSent && bytes == stream.pending.readableBytes
            if bytes > 0 || finNow {
                return Self.dataFrameOverhead + bytes
            }
            // Nothing sendable (no data, or no credit): it becomes ready again on data or credit.
            if stream.pending.readableBytes > 0 && stream.peerLimit > stream.nextOffset { tunnelBlocked = true }
            if stream.pending.readableBytes > 0 { creditBlocked.insert(id) }
            ready.removeFirst()
            readySet.remove(id)
        }
        return nil
    }

    /// How many bytes of the stream the next data frame can carry: what is pending, within the
    /// peer's credit and the chunk limit.
    func sendableBytes(_ stream: StreamState) -> Int {
        let credit = stream.peerLimit > stream.nextOffset ? Int(min(stream.peerLimit - stream.nextOffset, 1 << 30)) : 0
        let tunnelCredit = tunnelPeerLimit > tunnelSent ? Int(min(tunnelPeerLimit - tunnelSent, 1 << 30)) : 0
        let bytes = min(stream.pending.readableBytes, credit, tunnelCredit, options.frameLimits.maxDataChunk)
        // A frame that ends where the app's buffer ends is a slice of it; one that spans two
        // buffers is a copy. Cut at the boundary unless that makes the frame small.
        let first = stream.pending.firstBufferBytes
        return first < bytes && first >= Self.smallestCutFrame ? first : bytes
    }

    /// Data frames are cut short at an app buffer's end only down to this size.
    static let smallestCutFrame = 8 << 10

    mutating func buildDataFrame(now: Duration, limit: Int) -> TunnelFrame? {
        // Taken out while it changes, so its queue is not copied.
        guard let id = ready.first, var stream = streams.removeValue(forKey: id) else { return nil }
        let bytes = min(sendableBytes(stream), limit)
        let chunk = stream.pending.read(length: bytes)
        let fin = stream.finRequested && stream.pending.readableBytes == 0
        let frame = TunnelFrame.streamData(
            StreamData(streamID: id.rawValue, offset: stream.nextOffset, fin: fin, data: chunk))
        stream.nextOffset += UInt64(bytes)
        tunnelSent += UInt64(bytes)
        if fin { stream.sending = .finished }
        streams[id] = stream
        // Round-robin: the stream goes to the back if it has more to send.
        ready.removeFirst()
        if stream.pending.readableBytes > 0 && stream.peerLimit > stream.nextOffset {
            ready.append(id)
        } else {
            readySet.remove(id)
        }
        closeIfDone(id, now: now)
        return frame
    }

    /// The link where a frame of `size` bytes is expected to arrive first, among links below
    /// their in-flight cap, not suspected and not full. In tiers: primary links; backup links
    /// only while no primary link is up (a full primary is still up: the data waits for it
    /// rather than spilling onto a metered path); blocked links only while nothing else is up,
    /// so a block (ours, or the peer's `linkPolicy`) can move traffic but never strand it.
    func chooseLink(for size: Int) -> LinkID? {
        var best: (LinkID, Double)?
        var primaryUp = false
        var unblockedUp = false
        for index in links.values.indices where !links.values[index].suspect && !links.values[index].anyBlocked {
            unblockedUp = true
            if !links.values[index].backup {
                primaryUp = true
                break
            }
        }
        // By index, reading fields in place: iterating the values would copy each link's state.
        for index in links.values.indices {
            guard !links.values[index].suspect, links.values[index].writable else { continue }
            if links.values[index].anyBlocked {
                guard !unblockedUp else { continue }
            } else if links.values[index].backup {
                guard !primaryUp else { continue }
            }
            let inFlight = links.values[index].inFlightBytes
            guard inFlight == 0 || inFlight + size <= links.values[index].inFlightCap(initial: options.initialInFlight)
            else { continue }
            let id = links.keys[index]
            let arrival = links.values[index].expectedArrival(bytes: size, initialRate: Self.assumedInitialRate)
            if best == nil || arrival < best!.1 || (arrival == best!.1 && id < best!.0) {
                best = (id, arrival)
            }
        }
        return best?.0
    }

    /// Resumes reading the apps of paused streams that have drained: only those are looked at
    /// (a scan of every stream on every event cost a copy of each stream's state).
    mutating func resumeReadingWhereDrained() {
        guard !pausedStreams.isEmpty else { return }
        for id in pausedStreams.sorted() {
            guard let index = streams.index(forKey: id) else {
                pausedStreams.remove(id)
                continue
            }
            guard streams.values[index].pending.readableBytes <= options.sendBufferLimit / 2 else { continue }
            streams.values[index].readingPaused = false
            pausedStreams.remove(id)
            actions.append(.resumeReading(id))
        }
    }

    /// Serializes `frame` onto the link's output; returns its size on the wire.
    ///
    /// In place: a copy of the link's output taken out of the dictionary would make every
    /// frame copy everything queued before it (copy on write). A buffer `flush` handed out
    /// stays here, read to its end: once the channel has written it (NIO let go of it), it is
    /// cleared and filled again without allocating.
    @discardableResult
    mutating func write(_ frame: TunnelFrame, on link: LinkID) -> Int {
        guard let index = output.index(forKey: link) else {
            var buffer = Self.emptyOutput
            serializer.serialize(frame, into: &buffer)
            output[link] = buffer
            return buffer.readableBytes
        }
        if output.values[index].readableBytes == 0 { output.values[index].clear() }
        let before = output.values[index].writerIndex
        serializer.serialize(frame, into: &output.values[index])
        return output.values[index].writerIndex - before
    }
}
