import NIOCore
import WeftWire

/// Frames from the links: parsing, acks, stream opens, data, resets, and the credit they use.
extension TunnelEngine {
    mutating func ingest(_ bytes: ByteBuffer, on id: LinkID, now: Duration) {
        let known: Bool? = withLink(id) { link in
            link.lastReceive = now
            link.suspect = false
            link.parser.append(bytes)
            return true
        }
        guard known != nil else { return }
        var reliableSeen = false
        while true {
            let frame: TunnelFrame?
            do {
                frame = try withLink(id) { try $0.parser.nextFrame() } ?? nil
            } catch {
                breakLink(id, reason: TunnelFailure(.malformedFrame, "malformed frame: \(error)"), now: now)
                return
            }
            guard let frame else { break }
            if frame.isReliable {
                withLink(id) { $0.receivedReliable += 1 }
                reliableSeen = true
            }
            handle(frame, on: id, now: now)
            guard links[id] != nil else { return }
        }
        // Acks wait a little for a frame going back (a request's answer) to ride with, so a
        // request and its answer cost one packet each way, not two; bulk data is acked at once.
        guard reliableSeen, let index = links.index(forKey: id),
            links.values[index].receivedReliable > links.values[index].acknowledged
        else { return }
        links.values[index].receivedSinceAck += bytes.readableBytes
        if links.values[index].receivedSinceAck >= options.ackBytes, links.values[index].writable {
            sendAck(on: id)
        } else if links.values[index].ackDueAt == nil {
            links.values[index].ackDueAt = now + options.ackDelay
        }
    }

    mutating func sendAck(on id: LinkID) {
        guard
            let count = withLink(
                id,
                { link in
                    link.acknowledged = link.receivedReliable
                    link.receivedSinceAck = 0
                    link.ackDueAt = nil
                    return link.receivedReliable
                })
        else { return }
        write(.ack(count), on: id)
    }

    mutating func handle(_ frame: TunnelFrame, on link: LinkID, now: Duration) {
        switch frame {
        case .hello, .welcome, .refuse:
            breakLink(link, reason: TunnelFailure(.protocolViolation, "handshake frame after the handshake"), now: now)
        case .ack(let count):
            guard let index = links.index(forKey: link), count <= links.values[index].sentReliable else {
                breakLink(link, reason: TunnelFailure(.protocolViolation, "ack for frames never sent"), now: now)
                return
            }
            withLink(link) { state in
                // Frames acknowledged: the peer reads this link, however slowly, so a full link
                // that makes progress is not stalled. (A peer cannot fake this for long: it can
                // only acknowledge frames sent, and a full link is sent none.)
                if state.acknowledge(upTo: count, now: now), state.fullSince != nil { state.fullSince = now }
            }
        case .ping(let value):
            // A full link's pings go unanswered: a peer that pings and never reads would
            // otherwise pile pongs up here.
            if links[link]?.writable == true { write(.pong(value), on: link) }
        case .pong:
            break
        case .linkPolicy(let policy):
            guard links[link] != nil else { return }
            withLink(link) { $0.peerBlocked = policy.blocked }
            // Data queued for it goes out on the others (or, unblocked, it can take some again).
            pump(now: now)
        case .goodbye(let goodbye):
            removeLink(link, now: now)
            actions.append(
                .closeLink(link, reason: TunnelFailure(.peerGoodbye, "peer said goodbye: \(goodbye.message)")))
            if goodbye.tunnel { failTunnel(reason: TunnelFailure(.peerStopped, "peer stopped: \(goodbye.message)")) }
        case .streamOpen(let open):
            receiveOpen(open, now: now)
        case .streamData(let data):
            receiveData(data, on: link, now: now)
        case .streamReset(let reset):
            receiveReset(reset, on: link, now: now)
        case .windowUpdate(let update) where update.streamID == 0:
            guard update.limit > tunnelPeerLimit else { return }
            tunnelPeerLimit = update.limit
            if tunnelBlocked {
                tunnelBlocked = false
                for id in streams.keys.sorted() where sendableBytes(streams[id]!) > 0 { markReady(id) }
            }
        case .windowUpdate(let update):
            let id = StreamID(update.streamID)
            guard var stream = streams[id] else { return }
            if update.limit > stream.peerLimit {
                stream.peerLimit = update.limit
                streams[id] = stream
                markReady(id)
            }
        }
    }

    func isRemote(_ id: StreamID) -> Bool {
        (id.rawValue % 2 == 1) != options.opensOddStreams
    }

    /// Whether a remote stream id has been seen before (and so, if not open, is closed).
    func isOldRemote(_ id: StreamID) -> Bool {
        id.rawValue <= highestRemoteStream && !missingRemote.contains(id.rawValue)
    }

    mutating func noteRemote(_ id: StreamID) {
        guard isRemote(id) else { return }
        guard id.rawValue > highestRemoteStream else {
            missingRemote.remove(id.rawValue)
            return
        }
        // The ids skipped over may still arrive (bounded: a peer that skips more gets them closed).
        // Counted in 64 bits: the peer picks the id, up to UInt32.max.
        var skipped: UInt64 =
            highestRemoteStream == 0 ? (options.opensOddStreams ? 2 : 1) : UInt64(highestRemoteStream) + 2
        while skipped < UInt64(id.rawValue) && missingRemote.count < options.configuration.maxStreams {
            missingRemote.insert(UInt32(skipped))
            skipped += 2
        }
        highestRemoteStream = id.rawValue
    }

    mutating func receiveOpen(_ open: StreamOpen, now: Duration) {
        let id = StreamID(open.streamID)
        guard isRemote(id) else { return }
        if var stream = streams[id] {
            guard !stream.openSeen else { return }  // a duplicate
            stream.receiving = .open
            stream.peerLimit = max(stream.peerLimit, UInt64(open.initialWindow))
            streams[id] = stream
            actions.append(
                .incomingStream(
                    id, appName: open.appName, target: open.target, origin: open.origin, datagrams: open.datagrams))
            for chunk in earlyData.removeValue(forKey: id) ?? [] { actions.append(.deliver(id, chunk)) }
            checkRemoteFin(id, now: now)
            return
        }
        guard !isOldRemote(id) else { return }  // closed already
        noteRemote(id)
        guard streams.count < options.configuration.maxStreams else {
            refuse(id, message: "too many streams")
            return
        }
        streams[id] = newStream(peerLimit: UInt64(open.initialWindow), openSeen: true, now: now)
        actions.append(
            .incomingStream(
                id, appName: open.appName, target: open.target, origin: open.origin, datagrams: open.datagrams))
    }

    mutating func receiveData(_ data: StreamData, on link: LinkID, now: Duration) {
        let id = StreamID(data.streamID)
        let end = data.offset + UInt64(data.data.readableBytes)
        if let counted = resetStreams[id] {
            // Late bytes of a stream reset here: count them, and credit them back at once.
            guard count(from: counted, to: end, on: link, now: now) else { return }
            tunnelCredit.consumed += max(end, counted) - counted
            resetStreams[id] = data.fin ? nil : max(end, counted)
            updateTunnelWindow(now: now)
            return
        }
        if streams[id] == nil {
            guard isRemote(id), !isOldRemote(id) else { return }
            noteRemote(id)
            guard streams.count < options.configuration.maxStreams else {
                guard count(from: 0, to: end, on: link, now: now) else { return }
                tunnelCredit.consumed += end
                refuse(id, message: "too many streams", counted: end)
                return
            }
            // Data overtook its open on another link: hold it until the open arrives.
            streams[id] = newStream(
                peerLimit: UInt64(options.configuration.initialStreamWindow), openSeen: false, now: now)
        }
        guard let receivedEnd = streams[id]?.receivedEnd else { return }
        guard count(from: receivedEnd, to: end, on: link, now: now) else { return }
        // Taken out while it changes: a copy left in the dictionary would share the held
        // pieces' storage, and appending to a shared piece copies it whole, on every frame.
        var stream = streams.removeValue(forKey: id)!
        stream.receivedEnd = max(stream.receivedEnd, end)
        guard end <= stream.credit.limit else {
            resetLocally(id, stream, code: .protocolError, message: "flow control")
            actions.append(.streamReset(id, code: .protocolError, message: "the peer sent beyond its credit"))
            updateTunnelWindow(now: now)
            return
        }
        let piecesBefore = stream.reassembly.heldPieces
        defer { scratchChunks.removeAll(keepingCapacity: true) }  // empty again for the next frame
        do {
            try stream.reassembly.insert(offset: data.offset, data: data.data, fin: data.fin, into: &scratchChunks)
        } catch {
            heldPieces += stream.reassembly.heldPieces - piecesBefore
            let (local, reported) =
                error == .tooManyPieces
                ? (
                    "out-of-order pieces",
                    "the peer scattered the stream over more than \(stream.reassembly.maxPieces) pieces"
                )
                : ("stream end", "the peer changed the stream's end")
            resetLocally(id, stream, code: .protocolError, message: local)
            actions.append(.streamReset(id, code: .protocolError, message: reported))
            updateTunnelWindow(now: now)
            return
        }
        heldPieces += stream.reassembly.heldPieces - piecesBefore
        guard heldPieces <= options.configuration.maxOutOfOrderPiecesPerTunnel else {
            let limit = options.configuration.maxOutOfOrderPiecesPerTunnel
            resetLocally(id, stream, code: .limitReached, message: "out-of-order pieces in the tunnel")
            actions.append(
                .streamReset(
                    id, code: .limitReached,
                    message: "the peer's streams held more than \(limit) out-of-order pieces together"))
            updateTunnelWindow(now: now)
            return
        }
        streams[id] = stream
        if stream.openSeen {
            for chunk in scratchChunks { actions.append(.deliver(id, chunk)) }
        } else {
            earlyData[id, default: []] += scratchChunks
        }
        checkRemoteFin(id, now: now)
    }

    /// Counts stream bytes up to `end` (from `counted`) against the tunnel window; a peer that
    /// goes beyond it loses the link.
    /// `end` is the peer's (the parser keeps it at most `WireProtocol.maxStreamOffset`): the
    /// check subtracts, it never adds to a value the peer chose.
    mutating func count(from counted: UInt64, to end: UInt64, on link: LinkID, now: Duration) -> Bool {
        guard end > counted else { return true }
        guard end - counted <= tunnelCredit.limit - min(tunnelReceived, tunnelCredit.limit) else {
            breakLink(
                link, reason: TunnelFailure(.protocolViolation, "the peer sent beyond the tunnel's credit"), now: now)
            return false
        }
        tunnelReceived += end - counted
        return true
    }

    mutating func receiveReset(_ reset: StreamReset, on link: LinkID, now: Duration) {
        let id = StreamID(reset.streamID)
        if let stream = streams.removeValue(forKey: id) {
            heldPieces -= stream.reassembly.heldPieces
            earlyData[id] = nil
            creditBlocked.remove(id)
            actions.append(.streamReset(id, code: reset.code, message: reset.message))
            let final = max(reset.finalSize, stream.receivedEnd)
            guard count(from: stream.receivedEnd, to: final, on: link, now: now) else { return }
            tunnelCredit.consumed += final - stream.consumed
            // The answer: our final size, so the peer can settle its count too.
            queue.append(
                .streamReset(StreamReset(streamID: id.rawValue, code: .cancelled, finalSize: stream.nextOffset)))
        } else if let counted = resetStreams.removeValue(forKey: id) {
            // The answer to our reset.
            let final = max(reset.finalSize, counted)
            guard count(from: counted, to: final, on: link, now: now) else { return }
            tunnelCredit.consumed += final - counted
        } else if isRemote(id) && !isOldRemote(id) {
            // Opened and reset before anything else of it arrived: settle it now.
            noteRemote(id)
            guard count(from: 0, to: reset.finalSize, on: link, now: now) else { return }
            tunnelCredit.consumed += reset.finalSize
            queue.append(.streamReset(StreamReset(streamID: id.rawValue, code: .cancelled, finalSize: 0)))
        }
        updateTunnelWindow(now: now)
    }

    /// Refuses a remote stream we keep no state for.
    mutating func refuse(_ id: StreamID, message: String, counted: UInt64 = 0) {
        if resetStreams.count < options.configuration.maxStreams { resetStreams[id] = counted }
        queue.append(.streamReset(StreamReset(streamID: id.rawValue, code: .limitReached, message: message)))
    }

    /// Forgets a stream and tells the peer, releasing its tunnel credit; until the peer answers
    /// with its final size, late bytes are counted against the stream's tombstone.
    mutating func resetLocally(_ id: StreamID, _ stream: StreamState, code: StreamReset.Code, message: String) {
        streams[id] = nil
        heldPieces -= stream.reassembly.heldPieces
        creditBlocked.remove(id)
        earlyData[id] = nil
        tunnelCredit.consumed += stream.receivedEnd - stream.consumed
        if stream.reassembly.finalOffset == nil, resetStreams.count < options.configuration.maxStreams {
            resetStreams[id] = stream.receivedEnd
        }
        queue.append(
            .streamReset(StreamReset(streamID: id.rawValue, code: code, finalSize: stream.nextOffset, message: message))
        )
    }

    /// Grants the peer more tunnel credit when half the window is used, growing the window when
    /// the readers keep up (the same rule as per stream).
    mutating func updateTunnelWindow(now: Duration) {
        // The links' RTT is looked at only when the window is due (most calls stop here).
        guard tunnelCredit.isDue, let limit = tunnelCredit.update(now: now, rtt: shortestRTT) else { return }
        queue.append(.windowUpdate(WindowUpdate(streamID: 0, limit: limit)))
    }

    mutating func checkRemoteFin(_ id: StreamID, now: Duration) {
        guard var stream = streams[id], stream.receiving == .open, stream.reassembly.isComplete else { return }
        stream.receiving = .finished
        streams[id] = stream
        actions.append(.remoteFinished(id))
        closeIfDone(id, now: now)
    }

    mutating func closeIfDone(_ id: StreamID, now: Duration) {
        guard let stream = streams[id], stream.isDone else { return }
        streams[id] = nil
        heldPieces -= stream.reassembly.heldPieces
        creditBlocked.remove(id)
        // Bytes delivered and not yet taken are the driver's now; their credit goes back.
        tunnelCredit.consumed += stream.receivedEnd - stream.consumed
        actions.append(.streamClosed(id))
        updateTunnelWindow(now: now)
    }
}
