import NIOCore
import WeftWire

/// Acks due, silence, missed ack deadlines (suspicion) and pings; links removed and the tunnel
/// failed.
extension TunnelEngine {
    mutating func checkLinks(now: Duration) {
        var ids = scratchLinks
        scratchLinks = []
        defer { scratchLinks = ids }
        ids.removeAll(keepingCapacity: true)
        ids.append(contentsOf: links.keys)
        ids.sort()
        for id in ids {
            guard let link = links[id] else { continue }
            if let due = link.ackDueAt, due <= now, link.writable { sendAck(on: id) }
            if now - link.lastReceive >= options.silenceLimit {
                breakLink(id, reason: TunnelFailure(.silent, "silent for \(now - link.lastReceive)"), now: now)
                continue
            }
            if let since = link.fullSince, now - since >= options.stallLimit {
                breakLink(
                    id, reason: TunnelFailure(.stalled, "the peer read nothing for \(now - since)"), now: now)
                continue
            }
            if let oldest = link.unacked.first, !link.suspect,
                now - oldest.sentAt >= link.ackDeadline(minimum: options.minimumAckDeadline)
            {
                suspect(id, now: now)
            }
            if now - link.lastSend >= options.pingInterval, link.writable, links[id] != nil {
                write(.ping(nextPing), on: id)
                nextPing += 1
                withLink(id) { $0.lastSend = now }
            }
        }
    }

    /// The link missed its deadline: stop scheduling on it until it shows life, ping it, and send
    /// its unacknowledged frames again on another link if there is one (else when one comes up).
    mutating func suspect(_ id: LinkID, now: Duration) {
        withLink(id) { $0.suspect = true }
        if links.values.contains(where: { !$0.suspect }) { requeue(id) }
        guard links[id]?.writable == true else { return }
        write(.ping(nextPing), on: id)
        nextPing += 1
        withLink(id) { $0.lastSend = now }
    }

    mutating func requeue(_ id: LinkID) {
        guard let link = links[id] else { return }
        // Newest first, each to the front: the queue then holds them oldest first.
        for frame in link.unacked.reversed() where frame.sequence >= link.requeuedBelow {
            queue.prepend(frame.frame)
            resentBytes += frame.bytes
        }
        withLink(id) { $0.requeuedBelow = link.sentReliable }
    }

    mutating func breakLink(_ id: LinkID, reason: TunnelFailure, now: Duration) {
        removeLink(id, now: now)
        actions.append(.closeLink(id, reason: reason))
    }

    mutating func removeLink(_ id: LinkID, now: Duration) {
        guard links[id] != nil else { return }
        requeue(id)
        links[id] = nil
        output[id] = nil
        if links.isEmpty { noLinkSince = now }
    }

    mutating func failTunnel(reason: TunnelFailure) {
        guard !failed else { return }
        failed = true
        for id in streams.keys.sorted() {
            actions.append(.streamReset(id, code: .tunnelLost, message: reason.message))
        }
        streams.removeAll()
        heldPieces = 0
        earlyData.removeAll()
        resetStreams.removeAll()
        queue.removeAll()
        for id in links.keys.sorted() { actions.append(.closeLink(id, reason: reason)) }
        links.removeAll()
        actions.append(.tunnelFailed(reason: reason))
    }
}
