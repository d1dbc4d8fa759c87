import NIOCore
import WeftWire

/// One tunnel between two sites, as a value-type state machine.
///
/// The driver feeds it events — bytes from link L, link up/down, app data, app consumption,
/// timer — each with the current engine time, and carries out the `TunnelAction`s it returns,
/// in order (writes always come first).
/// It never touches a socket or a clock, so a simulator can drive two engines through any
/// network on a virtual clock.
///
/// Reliability: every stream-related frame is numbered per link and kept until that link's
/// cumulative ack covers it. A link that misses its ack deadline (derived from its own RTT) is
/// suspected: its unacknowledged frames are sent again on the other links at once. Receivers
/// drop duplicates by stream offset, so a frame that arrives twice does no harm.
///
/// Scheduling: each frame goes to the link where it is expected to arrive first — bytes in
/// flight over measured delivery rate, plus half the RTT — among links below their in-flight
/// cap (about twice their bandwidth-delay product). Data frames are cut only when a link can
/// take them, so the decision is made as late as possible.
///
/// Credit: each stream has a window, and all streams together have a tunnel window (stream 0),
/// both counted in stream offsets, so re-sent duplicates never count twice. A reset carries the
/// resetter's final size and is answered with the other side's, so both sides settle the tunnel
/// count for bytes that will never be read.
public struct TunnelEngine: Sendable {
    public struct Options: Sendable {
        public var configuration: TunnelConfiguration
        /// Which stream ids this side opens: odd (true) or even (false). The two sides must differ.
        public var opensOddStreams: Bool
        /// In-flight bytes per link before its rate is known.
        public var initialInFlight: Int
        /// The ack deadline never goes below this.
        public var minimumAckDeadline: Duration
        /// Idle links are pinged this often.
        public var pingInterval: Duration
        /// A link that has been silent this long (pings unanswered) is closed.
        public var silenceLimit: Duration
        /// A link whose outbound buffer stayed full this long (the peer does not read) is closed.
        public var stallLimit: Duration
        /// App bytes buffered per stream before the driver is asked to stop reading the app.
        public var sendBufferLimit: Int
        /// How long an ack may wait for a frame going the other way to ride with; a link that
        /// received `ackBytes` since its last ack is acked at once.
        public var ackDelay: Duration
        public var ackBytes: Int
        public var frameLimits: TunnelFrameLimits

        public init(
            configuration: TunnelConfiguration = .init(),
            opensOddStreams: Bool,
            initialInFlight: Int = 256 << 10,
            minimumAckDeadline: Duration = .milliseconds(100),
            pingInterval: Duration = .milliseconds(500),
            silenceLimit: Duration = .seconds(2),
            stallLimit: Duration = .seconds(10),
            sendBufferLimit: Int = 1 << 20,
            ackDelay: Duration = .milliseconds(2),
            ackBytes: Int = 4 << 10,
            frameLimits: TunnelFrameLimits = .default
        ) {
            self.configuration = configuration
            self.opensOddStreams = opensOddStreams
            self.initialInFlight = initialInFlight
            self.minimumAckDeadline = minimumAckDeadline
            self.pingInterval = pingInterval
            self.silenceLimit = silenceLimit
            self.stallLimit = stallLimit
            self.sendBufferLimit = sendBufferLimit
            self.ackDelay = ackDelay
            self.ackBytes = ackBytes
            self.frameLimits = frameLimits
        }
    }

    public let options: Options
    // The state below is internal, not private, only so the engine's files by concern
    // (`TunnelEngine+Receiving`, `+Scheduling`, `+LinkHealth`) reach it.
    var links: [LinkID: LinkState] = [:]
    var streams: [StreamID: StreamState] = [:]
    /// Early data of streams whose open has not arrived yet.
    var earlyData: [StreamID: [ByteBuffer]] = [:]
    /// Reliable frames waiting for a link: re-sends at the front, new control frames behind.
    var queue = CircularBuffer<TunnelFrame>()
    /// Streams reset here before the peer's final size was known, with the highest offset
    /// counted so far: their late bytes are counted and credited back at once.
    var resetStreams: [StreamID: UInt64] = [:]
    /// Tunnel credit: the peer accepts stream bytes (all streams' offsets together) below
    /// `tunnelPeerLimit`; we have sent `tunnelSent`. Receiving: `tunnelReceived` counted
    /// against `tunnelCredit`, whose `consumed` the apps took (or released).
    var tunnelPeerLimit = WireProtocol.initialTunnelCredit
    var tunnelSent: UInt64 = 0
    var tunnelBlocked = false
    var tunnelReceived: UInt64 = 0
    var tunnelCredit: CreditWindow
    /// Out-of-order pieces held by all streams together (see `maxOutOfOrderPiecesPerTunnel`).
    var heldPieces = 0
    var ready: [StreamID] = []
    var readySet: Set<StreamID> = []
    /// Streams with bytes to send and no credit: their reader is waiting, often for a frame
    /// still on a slow link.
    var creditBlocked: Set<StreamID> = []
    /// Streams whose app is not being read (their send buffer is full).
    var pausedStreams: Set<StreamID> = []
    /// Internal, not private: tests start it near the end of the id space.
    var nextLocalStream: UInt32
    var highestRemoteStream: UInt32 = 0
    /// Remote ids below the highest seen that have not arrived yet: opens cross on different
    /// links, so a higher id may come first.
    var missingRemote: Set<UInt32> = []
    var noLinkSince: Duration?
    var failed = false
    var nextPing: UInt64 = 1
    /// The peer reads `StreamOpen.origin` (its links said `LinkHello.streamOrigins`; every link
    /// of a tunnel ends in the same peer process).
    var peerTakesOrigins = false
    /// The peer reads `StreamOpen.datagrams` (`LinkHello.datagramStreams`).
    public internal(set) var peerTakesDatagrams = false
    var output: [LinkID: ByteBuffer] = [:]
    var actions: [TunnelAction] = []
    var lastTimer: Duration?
    /// Link ids gathered by `flush` and `checkLinks`, kept to reuse its storage.
    var scratchLinks: [LinkID] = []
    /// The bytes one data frame put in order, reused from frame to frame.
    var scratchChunks: [ByteBuffer] = []
    let serializer = TunnelFrameSerializer()
    /// What a link's output starts from; the serializer reserves what each frame needs.
    static let emptyOutput = ByteBuffer()
    /// The largest output buffer a link keeps between flushes.
    static let keptOutputCapacity = 64 << 10

    /// Bytes re-sent because a link failed or was suspected.
    public internal(set) var resentBytes = 0

    public init(options: Options, now: Duration) {
        self.options = options
        self.nextLocalStream = options.opensOddStreams ? 1 : 2
        self.noLinkSince = now
        let window = max(options.configuration.initialTunnelWindow, Int(WireProtocol.initialTunnelCredit))
        self.tunnelCredit = CreditWindow(
            size: window, maximum: options.configuration.maxTunnelWindow,
            limit: max(WireProtocol.initialTunnelCredit, UInt64(window)), now: now)
        if UInt64(window) > WireProtocol.initialTunnelCredit {
            queue.append(.windowUpdate(WindowUpdate(streamID: 0, limit: tunnelCredit.limit)))
        }
    }

    /// Changes one link in place, if it is there. Through the dictionary's `values`, which yield
    /// the value itself: `links[id]?.field = x` moves the whole `LinkState` into a temporary on
    /// every access, and for a value this size that temporary is a heap allocation.
    @inline(__always)
    @discardableResult
    mutating func withLink<Result>(_ id: LinkID, _ body: (inout LinkState) throws -> Result) rethrows -> Result? {
        guard let index = links.index(forKey: id) else { return nil }
        return try body(&links.values[index])
    }

    /// What a data frame adds to its bytes: the header, the stream id and the offset.
    static let dataFrameOverhead = TunnelFrameSerializer.headerLength + 12
    /// What a control frame is assumed to take when choosing its link.
    static let controlFrameEstimate = 64
    /// A link's delivery rate before it is measured (bytes per second): 10 MB/s.
    static let assumedInitialRate = 10e6

    public var linkIDs: [LinkID] { links.keys.sorted() }
    /// Whether the stream is open (known to the engine).
    public func isOpen(_ id: StreamID) -> Bool { streams[id] != nil }
    public var openStreams: Int { streams.count }
    /// Peer bytes this side may still be holding (received, not yet taken by an app): never
    /// more than the tunnel window it advertised.
    public var heldBytes: UInt64 { tunnelReceived - tunnelCredit.consumed }
    /// The tunnel window this side currently grants the peer.
    public var tunnelWindowSize: Int { tunnelCredit.size }
    /// Streams reset here whose peer has not yet told its final size.
    public var unsettledResets: Int { resetStreams.count }

    /// Each link's estimates, in link order.
    public var linkStatistics: [LinkStatistics] {
        links.keys.sorted().map { id in
            let link = links[id]!
            return LinkStatistics(
                id: id, smoothedRTT: link.smoothedRTT, deliveryRate: link.deliveryRate,
                inFlightBytes: link.inFlightBytes, deliveredBytes: link.delivered, suspect: link.suspect,
                backup: link.backup, blocked: link.blocked, blockedByPeer: link.peerBlocked)
        }
    }

    // MARK: links

    /// A link finished its handshake and joins the tunnel. `leftover` is what arrived behind
    /// the handshake.
    public mutating func linkUp(
        _ id: LinkID, leftover: ByteBuffer = ByteBuffer(), now: Duration, backup: Bool = false,
        peerCapabilities: UInt32 = 0
    ) -> [TunnelAction] {
        guard !failed else { return [.closeLink(id, reason: TunnelFailure(.closed, "the tunnel has ended"))] }
        // A reused id is a new connection: whatever the old one had in flight goes elsewhere.
        removeLink(id, now: now)
        // Frames stuck on suspected links can go out on this one.
        for suspected in links.keys.sorted() where links[suspected]!.suspect { requeue(suspected) }
        links[id] = LinkState(id: id, frameLimits: options.frameLimits, now: now)
        links[id]!.backup = backup
        links[id]!.peerTakesPolicy = peerCapabilities & LinkHello.linkPolicyFrames != 0
        peerTakesOrigins = peerCapabilities & LinkHello.streamOrigins != 0
        peerTakesDatagrams = peerCapabilities & LinkHello.datagramStreams != 0
        noLinkSince = nil
        if leftover.readableBytes > 0 {
            ingest(leftover, on: id, now: now)
        }
        pump(now: now)
        return flush(now: now)
    }

    /// Stops (or resumes) scheduling data on a link without closing it: an operator's choice
    /// (`POST .../block`). Acks and pings go on, so the link stays measured and alive; a
    /// blocked link still carries data when the tunnel has no other link up. False if there is
    /// no such link.
    public mutating func setBlocked(_ id: LinkID, _ blocked: Bool, now: Duration) -> (found: Bool, [TunnelAction]) {
        guard let link = links[id] else { return (false, []) }
        withLink(id) { $0.blocked = blocked }
        // The peer is told, so it stops (or resumes) sending on the link too.
        if link.peerTakesPolicy && link.blocked != blocked { write(.linkPolicy(LinkPolicy(blocked: blocked)), on: id) }
        pump(now: now)
        return (true, flush(now: now))
    }

    /// The driver lost a link (closed, reset, or it refused to write).
    public mutating func linkDown(_ id: LinkID, now: Duration) -> [TunnelAction] {
        removeLink(id, now: now)
        pump(now: now)
        return flush(now: now)
    }

    /// The link's outbound buffer filled up (`writable == false`: the driver's channel is no
    /// longer writable) or drained again. A full link gets no new frame (only a goodbye when the
    /// tunnel closes); one full for the stall limit without an acknowledgement is closed.
    public mutating func linkWritabilityChanged(_ id: LinkID, writable: Bool, now: Duration) -> [TunnelAction] {
        guard let link = links[id], link.writable != writable else { return [] }
        withLink(id) { $0.fullSince = writable ? nil : now }
        if writable, link.ackDueAt != nil { sendAck(on: id) }
        pump(now: now)
        return flush(now: now)
    }

    /// Bytes arrived on a link.
    public mutating func received(_ bytes: ByteBuffer, on id: LinkID, now: Duration) -> [TunnelAction] {
        var result: [TunnelAction] = []
        received(bytes, on: id, now: now, into: &result)
        return result
    }

    /// `received(_:on:now:)`, appending the actions to `result`. The hot calls come in this
    /// form too: a driver that lends the same array to every call allocates none per batch.
    public mutating func received(_ bytes: ByteBuffer, on id: LinkID, now: Duration, into result: inout [TunnelAction])
    {
        guard links[id] != nil else { return }
        ingest(bytes, on: id, now: now)
        pump(now: now)
        flush(now: now, into: &result)
    }

    public mutating func timerFired(now: Duration) -> [TunnelAction] {
        var result: [TunnelAction] = []
        timerFired(now: now, into: &result)
        return result
    }

    /// `timerFired(now:)`, appending the actions to `result`.
    public mutating func timerFired(now: Duration, into result: inout [TunnelAction]) {
        // A timer that fires late means this process did not run meanwhile (a loaded machine,
        // a paused VM, its loop busy with one long batch): the silence it finds is its own, and
        // the links' bytes may be waiting unread. The time it lost is not counted against the
        // links, and none is judged silent before its bytes could be read: the process may have
        // been held up well before the timer was due (a late silence deadline would otherwise
        // find exactly the limit), so each link gets a ping interval after the loop runs again.
        if let scheduled = lastTimer, now - scheduled > options.pingInterval {
            let lost = now - scheduled
            let recheck = now - options.silenceLimit + options.pingInterval
            for index in links.values.indices {
                let credited = min(now, links.values[index].lastReceive + lost)
                links.values[index].lastReceive = max(credited, recheck)
                if let since = links.values[index].fullSince { links.values[index].fullSince = min(now, since + lost) }
            }
        }
        lastTimer = nil
        checkLinks(now: now)
        if let since = noLinkSince, !failed, now - since >= options.configuration.noLinkGracePeriod {
            failTunnel(reason: TunnelFailure(.noLink, "no link for \(options.configuration.noLinkGracePeriod)"))
        }
        pump(now: now)
        flush(now: now, into: &result)
    }

    /// Ends the tunnel on purpose — the site stops, or the peer restarted (its new incarnation
    /// makes a new tunnel): every stream is reset here, and the peer is told on every link so
    /// it resets its side at once instead of waiting out the grace period.
    public mutating func close(reason: String, now: Duration) -> [TunnelAction] {
        guard !failed else { return [] }
        for id in links.keys.sorted() { write(.goodbye(Goodbye(tunnel: true, message: reason)), on: id) }
        failTunnel(reason: TunnelFailure(.closed, reason))
        return flush(now: now)
    }

    // MARK: streams (the app side)

    /// Opens a stream to `appName`; data may be sent on it at once. `origin` goes only to a
    /// peer that reads it. A `datagrams` stream (a UDP client's) to a peer that cannot tell it
    /// from a TCP one is not opened: it is reset at once, and the peer never hears of it.
    public mutating func openStream(
        appName: String, target: String? = nil, origin: StreamOrigin? = nil, datagrams: Bool = false, now: Duration
    ) -> (
        StreamID, [TunnelAction]
    ) {
        let id = StreamID(nextLocalStream)
        if datagrams && !peerTakesDatagrams {
            // The id is never sent, so it is not used up: the next open takes it.
            return (
                id,
                [.streamReset(id, code: .notExposed, message: "the peer runs a weft without UDP apps; update it")]
            )
        }
        // 2^31 streams in one tunnel (weeks at a thousand a second): the ids are used up, so
        // the tunnel ends and the next one starts from the beginning.
        guard nextLocalStream <= UInt32.max - 2 else {
            actions.append(.streamReset(id, code: .limitReached, message: "stream ids used up"))
            failTunnel(reason: TunnelFailure(.streamIDsUsedUp, "stream ids used up; a new tunnel follows"))
            return (id, flush(now: now))
        }
        nextLocalStream += 2
        let window = options.configuration.initialStreamWindow
        streams[id] = newStream(peerLimit: UInt64(window), openSeen: true, now: now)
        queue.append(
            .streamOpen(
                StreamOpen(
                    streamID: id.rawValue, appName: appName, target: target, initialWindow: UInt32(window),
                    origin: peerTakesOrigins ? origin : nil, datagrams: datagrams))
        )
        pump(now: now)
        return (id, flush(now: now))
    }

    /// Bytes of `id` the engine holds that are not framed yet, waiting for credit or a link (0
    /// for a stream it does not know). A datagram stream drops rather than queue much: a late datagram is worth
    /// less than none.
    public func pendingBytes(on id: StreamID) -> Int {
        streams[id]?.pending.readableBytes ?? 0
    }

    func newStream(peerLimit: UInt64, openSeen: Bool, now: Duration) -> StreamState {
        StreamState(
            peerLimit: peerLimit, window: options.configuration.initialStreamWindow,
            maximumWindow: options.configuration.maxStreamWindow, openSeen: openSeen,
            maxPieces: options.configuration.maxOutOfOrderPieces, now: now)
    }

    /// The shortest smoothed RTT of the links (50 ms before any is measured): how fast a
    /// reader that keeps up takes a window.
    var shortestRTT: Duration {
        var shortest: Duration?
        for link in links.values {
            if let rtt = link.smoothedRTT, rtt < shortest ?? rtt + .nanoseconds(1) { shortest = rtt }
        }
        return shortest ?? .milliseconds(50)
    }

    /// App bytes to send on a stream.
    public mutating func send(_ data: ByteBuffer, on id: StreamID, now: Duration) -> [TunnelAction] {
        var result: [TunnelAction] = []
        send(data, on: id, now: now, into: &result)
        return result
    }

    /// `send(_:on:now:)`, appending the actions to `result`.
    public mutating func send(_ data: ByteBuffer, on id: StreamID, now: Duration, into result: inout [TunnelAction]) {
        // In place, by index: a copy of the stream taken out of the dictionary (even one kept
        // only to read a flag) would make the queue shared, and the append would copy it.
        guard let index = streams.index(forKey: id), !streams.values[index].finRequested else { return }
        streams.values[index].pending.append(data)
        if streams.values[index].pending.readableBytes > options.sendBufferLimit && !streams.values[index].readingPaused
        {
            streams.values[index].readingPaused = true
            pausedStreams.insert(id)
            actions.append(.pauseReading(id))
        }
        markReady(id)
        pump(now: now)
        flush(now: now, into: &result)
    }

    /// The app finished its direction (half-close): the peer gets a fin after the last byte.
    public mutating func finish(stream id: StreamID, now: Duration) -> [TunnelAction] {
        guard var stream = streams[id], !stream.finRequested else { return [] }
        stream.sending = .finishing
        streams[id] = stream
        markReady(id)
        pump(now: now)
        return flush(now: now)
    }

    /// The app took `count` delivered bytes: credit goes back to the peer, and the window grows
    /// when the reader keeps up.
    public mutating func consumed(_ count: Int, on id: StreamID, now: Duration) -> [TunnelAction] {
        var result: [TunnelAction] = []
        consumed(count, on: id, now: now, into: &result)
        return result
    }

    /// `consumed(_:on:now:)`, appending the actions to `result`.
    public mutating func consumed(_ count: Int, on id: StreamID, now: Duration, into result: inout [TunnelAction]) {
        guard let index = streams.index(forKey: id) else { return }
        let taken = streams.values[index].reassembly.deliveredOffset - streams.values[index].consumed
        let count = min(UInt64(count), taken)
        streams.values[index].credit.consumed += count
        tunnelCredit.consumed += count
        // Most calls (an app write of a small response) leave both windows more than half
        // open: nothing to send then, so no pump and no flush (the engine starts every call
        // with its output flushed).
        guard streams.values[index].credit.isDue || tunnelCredit.isDue else { return }
        if let limit = streams.values[index].credit.update(now: now, rtt: shortestRTT) {
            queue.append(.windowUpdate(WindowUpdate(streamID: id.rawValue, limit: limit)))
        }
        updateTunnelWindow(now: now)
        pump(now: now)
        flush(now: now, into: &result)
    }

    /// Ends a stream in both directions.
    public mutating func reset(stream id: StreamID, code: StreamReset.Code, message: String = "", now: Duration)
        -> [TunnelAction]
    {
        guard let stream = streams[id] else { return [] }
        resetLocally(id, stream, code: code, message: message)
        updateTunnelWindow(now: now)
        pump(now: now)
        return flush(now: now)
    }

    // MARK: output

    /// Flushes writes (one per link) and the next timer, and hands out the actions.
    ///
    /// Writes come first: a driver that reacts to a later action by calling the engine again
    /// (resumed reading, a delivered byte) must already have written these bytes, or the link
    /// would carry frames out of the order they were numbered in.
    mutating func flush(now: Duration) -> [TunnelAction] {
        var result: [TunnelAction] = []
        flush(now: now, into: &result)
        return result
    }

    /// `flush(now:)`, appending to `result`.
    mutating func flush(now: Duration, into result: inout [TunnelAction]) {
        // The links with output, in id order. (Ids first, into a reused array: writing while
        // iterating `output` would copy its buffers.)
        scratchLinks.removeAll(keepingCapacity: true)
        for (id, buffer) in output where buffer.readableBytes > 0 { scratchLinks.append(id) }
        if scratchLinks.count > 1 { scratchLinks.sort() }
        // Pending acks ride with whatever goes out on their link now.
        for id in scratchLinks where links[id]?.ackDueAt != nil { sendAck(on: id) }
        let next = nextDeadline(now: now)
        if scratchLinks.isEmpty, actions.isEmpty, next == nil || next == lastTimer {
            return  // nothing to hand out: no array touched
        }
        result.reserveCapacity(result.count + scratchLinks.count + actions.count + 1)
        for id in scratchLinks {
            guard let index = output.index(forKey: id) else { continue }
            result.append(.write(id, output.values[index]))
            // Kept for the next frames (see `write(_:on:)`), unless a burst made it large.
            if output.values[index].capacity > Self.keptOutputCapacity {
                output.remove(at: index)
            } else {
                output.values[index].moveReaderIndex(to: output.values[index].writerIndex)
            }
        }
        result.append(contentsOf: actions)
        actions.removeAll(keepingCapacity: true)
        if let next, next != lastTimer {
            lastTimer = next
            result.append(.scheduleTimer(next))
        }
    }

    func nextDeadline(now: Duration) -> Duration? {
        guard !failed else { return nil }
        var next: Duration?
        func consider(_ time: Duration) { next = min(next ?? time, time) }
        // By index, reading fields in place: iterating the values would copy each link's state.
        for index in links.values.indices {
            consider(links.values[index].lastReceive + options.silenceLimit)
            if let since = links.values[index].fullSince {
                // Pings and acks wait until the link drains; its stall ends it meanwhile.
                consider(since + options.stallLimit)
            } else {
                consider(links.values[index].lastSend + options.pingInterval)
                if let due = links.values[index].ackDueAt { consider(due) }
            }
            if !links.values[index].suspect, let sentAt = links.values[index].unacked.first?.sentAt {
                consider(sentAt + links.values[index].ackDeadline(minimum: options.minimumAckDeadline))
            }
        }
        if let since = noLinkSince { consider(since + options.configuration.noLinkGracePeriod) }
        return next.map { max($0, now) }
    }
}
