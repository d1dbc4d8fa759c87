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
            self.sendBufferLimit = sendBufferLimit
            self.ackDelay = ackDelay
            self.ackBytes = ackBytes
            self.frameLimits = frameLimits
        }
    }

    public let options: Options
    private var links: [LinkID: LinkState] = [:]
    private var parsers: [LinkID: TunnelFrameParser] = [:]
    /// Frames of suspected links already queued again, by link: sequences below this are.
    private var requeuedBelow: [LinkID: UInt64] = [:]
    private var streams: [StreamID: StreamState] = [:]
    /// Early data of streams whose open has not arrived yet.
    private var earlyData: [StreamID: [ByteBuffer]] = [:]
    /// Reliable frames waiting for a link: re-sends at the front, new control frames behind.
    private var queue = CircularBuffer<TunnelFrame>()
    /// Streams reset here before the peer's final size was known, with the highest offset
    /// counted so far: their late bytes are counted and credited back at once.
    private var resetStreams: [StreamID: UInt64] = [:]
    /// Tunnel credit: the peer accepts stream bytes (all streams' offsets together) below
    /// `tunnelPeerLimit`; we have sent `tunnelSent`. Receiving: `tunnelReceived` counted,
    /// `tunnelConsumed` taken by apps (or released), `tunnelAdvertised` allowed.
    private var tunnelPeerLimit = WireProtocol.initialTunnelCredit
    private var tunnelSent: UInt64 = 0
    private var tunnelBlocked = false
    private var tunnelReceived: UInt64 = 0
    private var tunnelConsumed: UInt64 = 0
    private var tunnelAdvertised = WireProtocol.initialTunnelCredit
    private var tunnelWindow: Int
    private var tunnelLastUpdate: Duration
    private var ready: [StreamID] = []
    private var readySet: Set<StreamID> = []
    /// Streams with bytes to send and no credit: their reader is waiting, often for a frame
    /// still on a slow link.
    private var creditBlocked: Set<StreamID> = []
    /// Internal, not private: tests start it near the end of the id space.
    var nextLocalStream: UInt32
    private var highestRemoteStream: UInt32 = 0
    /// Remote ids below the highest seen that have not arrived yet: opens cross on different
    /// links, so a higher id may come first.
    private var missingRemote: Set<UInt32> = []
    private var noLinkSince: Duration?
    private var failed = false
    private var nextPing: UInt64 = 1
    private var output: [LinkID: ByteBuffer] = [:]
    private var actions: [TunnelAction] = []
    private var lastTimer: Duration?
    private let serializer = TunnelFrameSerializer()

    /// Bytes re-sent because a link failed or was suspected.
    public private(set) var resentBytes = 0

    public init(options: Options, now: Duration) {
        self.options = options
        self.nextLocalStream = options.opensOddStreams ? 1 : 2
        self.noLinkSince = now
        self.tunnelWindow = max(options.configuration.initialTunnelWindow, Int(WireProtocol.initialTunnelCredit))
        self.tunnelLastUpdate = now
        if UInt64(tunnelWindow) > tunnelAdvertised {
            tunnelAdvertised = UInt64(tunnelWindow)
            queue.append(.windowUpdate(WindowUpdate(streamID: 0, limit: tunnelAdvertised)))
        }
    }

    public var linkIDs: [LinkID] { links.keys.sorted() }
    /// Whether the stream is open (known to the engine).
    public func isOpen(_ id: StreamID) -> Bool { streams[id] != nil }
    public var openStreams: Int { streams.count }
    /// Peer bytes this side may still be holding (received, not yet taken by an app): never
    /// more than the tunnel window it advertised.
    public var heldBytes: UInt64 { tunnelReceived - tunnelConsumed }
    /// The tunnel window this side currently grants the peer.
    public var tunnelWindowSize: Int { tunnelWindow }
    /// Streams reset here whose peer has not yet told its final size.
    public var unsettledResets: Int { resetStreams.count }

    /// Each link's estimates, in link order.
    public var linkStatistics: [LinkStatistics] {
        links.keys.sorted().map { id in
            let link = links[id]!
            return LinkStatistics(
                id: id, smoothedRTT: link.smoothedRTT, deliveryRate: link.deliveryRate,
                inFlightBytes: link.inFlightBytes, deliveredBytes: link.delivered, suspect: link.suspect)
        }
    }

    // MARK: links

    /// A link finished its handshake and joins the tunnel. `leftover` is what arrived behind
    /// the handshake.
    public mutating func linkUp(_ id: LinkID, leftover: ByteBuffer = ByteBuffer(), now: Duration) -> [TunnelAction] {
        guard !failed else { return [.closeLink(id, reason: "tunnel failed")] }
        // A reused id is a new connection: whatever the old one had in flight goes elsewhere.
        removeLink(id, now: now)
        // Frames stuck on suspected links can go out on this one.
        for suspected in links.keys.sorted() where links[suspected]!.suspect { requeue(suspected) }
        links[id] = LinkState(id: id, now: now)
        parsers[id] = TunnelFrameParser(limits: options.frameLimits)
        noLinkSince = nil
        if leftover.readableBytes > 0 {
            ingest(leftover, on: id, now: now)
        }
        pump(now: now)
        return finish(now: now)
    }

    /// The driver lost a link (closed, reset, or it refused to write).
    public mutating func linkDown(_ id: LinkID, now: Duration) -> [TunnelAction] {
        removeLink(id, now: now)
        pump(now: now)
        return finish(now: now)
    }

    /// Bytes arrived on a link.
    public mutating func received(_ bytes: ByteBuffer, on id: LinkID, now: Duration) -> [TunnelAction] {
        guard links[id] != nil else { return [] }
        ingest(bytes, on: id, now: now)
        pump(now: now)
        return finish(now: now)
    }

    public mutating func timerFired(now: Duration) -> [TunnelAction] {
        // A timer that fires late means this process did not run meanwhile (a loaded machine,
        // a paused VM): the silence it finds is its own, and the links' bytes may be waiting
        // unread. The time it lost is not counted against the links.
        if let scheduled = lastTimer, now - scheduled > options.pingInterval {
            let lost = now - scheduled
            for id in links.keys { links[id]!.lastReceive = min(now, links[id]!.lastReceive + lost) }
        }
        lastTimer = nil
        checkLinks(now: now)
        if let since = noLinkSince, !failed, now - since >= options.configuration.noLinkGracePeriod {
            failTunnel(reason: "no link for \(options.configuration.noLinkGracePeriod)")
        }
        pump(now: now)
        return finish(now: now)
    }

    /// Ends the tunnel on purpose — the site stops, or the peer restarted (its new incarnation
    /// makes a new tunnel): every stream is reset here, and the peer is told on every link so
    /// it resets its side at once instead of waiting out the grace period.
    public mutating func close(reason: String, now: Duration) -> [TunnelAction] {
        guard !failed else { return [] }
        for id in links.keys.sorted() { write(.goodbye(Goodbye(tunnel: true, message: reason)), on: id) }
        failTunnel(reason: reason)
        return finish(now: now)
    }

    // MARK: streams (the app side)

    /// Opens a stream to `appName`; data may be sent on it at once.
    public mutating func openStream(appName: String, target: String? = nil, now: Duration) -> (
        StreamID, [TunnelAction]
    ) {
        let id = StreamID(nextLocalStream)
        // 2^31 streams in one tunnel (weeks at a thousand a second): the ids are used up, so
        // the tunnel ends and the next one starts from the beginning.
        guard nextLocalStream <= UInt32.max - 2 else {
            actions.append(.streamReset(id, code: .limitReached, message: "stream ids used up"))
            failTunnel(reason: "stream ids used up; a new tunnel follows")
            return (id, finish(now: now))
        }
        nextLocalStream += 2
        let window = options.configuration.initialStreamWindow
        streams[id] = StreamState(
            peerLimit: UInt64(window), window: window, openSeen: true,
            maxPieces: options.configuration.maxOutOfOrderPieces, now: now)
        queue.append(
            .streamOpen(
                StreamOpen(streamID: id.rawValue, appName: appName, target: target, initialWindow: UInt32(window))
            )
        )
        pump(now: now)
        return (id, finish(now: now))
    }

    /// App bytes to send on a stream.
    public mutating func send(_ data: ByteBuffer, on id: StreamID, now: Duration) -> [TunnelAction] {
        guard var stream = streams[id], !stream.finRequested else { return [] }
        stream.pending.append(data)
        if stream.pending.readableBytes > options.sendBufferLimit && !stream.readingPaused {
            stream.readingPaused = true
            actions.append(.pauseReading(id))
        }
        streams[id] = stream
        markReady(id)
        pump(now: now)
        return finish(now: now)
    }

    /// The app finished its direction (half-close): the peer gets a fin after the last byte.
    public mutating func finish(stream id: StreamID, now: Duration) -> [TunnelAction] {
        guard var stream = streams[id], !stream.finRequested else { return [] }
        stream.finRequested = true
        streams[id] = stream
        markReady(id)
        pump(now: now)
        return finish(now: now)
    }

    /// The app took `count` delivered bytes: credit goes back to the peer, and the window grows
    /// when the reader keeps up.
    public mutating func consumed(_ count: Int, on id: StreamID, now: Duration) -> [TunnelAction] {
        guard var stream = streams[id] else { return [] }
        let count = min(UInt64(count), stream.reassembly.deliveredOffset - stream.consumed)
        stream.consumed += count
        tunnelConsumed += count
        let remaining = stream.advertisedLimit - min(stream.advertisedLimit, stream.consumed)
        if remaining <= UInt64(stream.window / 2) {
            let rtt = links.values.compactMap(\.smoothedRTT).min() ?? .milliseconds(50)
            if now - stream.lastWindowUpdate < rtt * 4 {
                stream.window = min(stream.window * 2, options.configuration.maxStreamWindow)
            }
            stream.advertisedLimit = stream.consumed + UInt64(stream.window)
            stream.lastWindowUpdate = now
            queue.append(.windowUpdate(WindowUpdate(streamID: id.rawValue, limit: stream.advertisedLimit)))
        }
        streams[id] = stream
        updateTunnelWindow(now: now)
        pump(now: now)
        return finish(now: now)
    }

    /// Ends a stream in both directions.
    public mutating func reset(stream id: StreamID, code: StreamReset.Code, message: String = "", now: Duration)
        -> [TunnelAction]
    {
        guard let stream = streams[id] else { return [] }
        resetLocally(id, stream, code: code, message: message)
        updateTunnelWindow(now: now)
        pump(now: now)
        return finish(now: now)
    }

    // MARK: receiving

    private mutating func ingest(_ bytes: ByteBuffer, on id: LinkID, now: Duration) {
        links[id]?.lastReceive = now
        links[id]?.suspect = false
        parsers[id]?.append(bytes)
        var reliableSeen = false
        while true {
            let frame: TunnelFrame?
            do {
                frame = try parsers[id]?.nextFrame()
            } catch {
                breakLink(id, reason: "malformed frame: \(error)", now: now)
                return
            }
            guard let frame else { break }
            if frame.isReliable {
                links[id]?.receivedReliable += 1
                reliableSeen = true
            }
            handle(frame, on: id, now: now)
            guard links[id] != nil else { return }
        }
        // Acks wait a little for a frame going back (a request's answer) to ride with, so a
        // request and its answer cost one packet each way, not two; bulk data is acked at once.
        if reliableSeen, let link = links[id], link.receivedReliable > link.acknowledged {
            links[id]!.receivedSinceAck += bytes.readableBytes
            if links[id]!.receivedSinceAck >= options.ackBytes {
                sendAck(on: id)
            } else if link.ackDueAt == nil {
                links[id]!.ackDueAt = now + options.ackDelay
            }
        }
    }

    private mutating func sendAck(on id: LinkID) {
        guard let link = links[id] else { return }
        links[id]!.acknowledged = link.receivedReliable
        links[id]!.receivedSinceAck = 0
        links[id]!.ackDueAt = nil
        write(.ack(link.receivedReliable), on: id)
    }

    private mutating func handle(_ frame: TunnelFrame, on link: LinkID, now: Duration) {
        switch frame {
        case .hello, .welcome, .refuse:
            breakLink(link, reason: "handshake frame after the handshake", now: now)
        case .ack(let count):
            guard let state = links[link], count <= state.sentReliable else {
                breakLink(link, reason: "ack for frames never sent", now: now)
                return
            }
            _ = links[link]!.acknowledge(upTo: count, now: now)
        case .ping(let value):
            write(.pong(value), on: link)
        case .pong:
            break
        case .goodbye(let goodbye):
            removeLink(link, now: now)
            actions.append(.closeLink(link, reason: "peer said goodbye: \(goodbye.message)"))
            if goodbye.tunnel { failTunnel(reason: "peer stopped: \(goodbye.message)") }
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

    private func isRemote(_ id: StreamID) -> Bool {
        (id.rawValue % 2 == 1) != options.opensOddStreams
    }

    /// Whether a remote stream id has been seen before (and so, if not open, is closed).
    private func isOldRemote(_ id: StreamID) -> Bool {
        id.rawValue <= highestRemoteStream && !missingRemote.contains(id.rawValue)
    }

    private mutating func noteRemote(_ id: StreamID) {
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

    private mutating func receiveOpen(_ open: StreamOpen, now: Duration) {
        let id = StreamID(open.streamID)
        guard isRemote(id) else { return }
        if var stream = streams[id] {
            guard !stream.openSeen else { return }  // a duplicate
            stream.openSeen = true
            stream.peerLimit = max(stream.peerLimit, UInt64(open.initialWindow))
            streams[id] = stream
            actions.append(.incomingStream(id, appName: open.appName, target: open.target))
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
        let window = options.configuration.initialStreamWindow
        streams[id] = StreamState(
            peerLimit: UInt64(open.initialWindow), window: window, openSeen: true,
            maxPieces: options.configuration.maxOutOfOrderPieces, now: now)
        actions.append(.incomingStream(id, appName: open.appName, target: open.target))
    }

    private mutating func receiveData(_ data: StreamData, on link: LinkID, now: Duration) {
        let id = StreamID(data.streamID)
        let end = data.offset + UInt64(data.data.readableBytes)
        if let counted = resetStreams[id] {
            // Late bytes of a stream reset here: count them, and credit them back at once.
            guard count(from: counted, to: end, on: link, now: now) else { return }
            tunnelConsumed += max(end, counted) - counted
            resetStreams[id] = data.fin ? nil : max(end, counted)
            updateTunnelWindow(now: now)
            return
        }
        if streams[id] == nil {
            guard isRemote(id), !isOldRemote(id) else { return }
            noteRemote(id)
            guard streams.count < options.configuration.maxStreams else {
                guard count(from: 0, to: end, on: link, now: now) else { return }
                tunnelConsumed += end
                refuse(id, message: "too many streams", counted: end)
                return
            }
            // Data overtook its open on another link: hold it until the open arrives.
            let window = options.configuration.initialStreamWindow
            streams[id] = StreamState(
                peerLimit: UInt64(window), window: window, openSeen: false,
                maxPieces: options.configuration.maxOutOfOrderPieces, now: now)
        }
        guard let receivedEnd = streams[id]?.receivedEnd else { return }
        guard count(from: receivedEnd, to: end, on: link, now: now) else { return }
        // Taken out while it changes: a copy left in the dictionary would share the held
        // pieces' storage, and appending to a shared piece copies it whole, on every frame.
        var stream = streams.removeValue(forKey: id)!
        stream.receivedEnd = max(stream.receivedEnd, end)
        guard end <= stream.advertisedLimit else {
            resetLocally(id, stream, code: .protocolError, message: "flow control")
            actions.append(.streamReset(id, code: .protocolError, message: "the peer sent beyond its credit"))
            updateTunnelWindow(now: now)
            return
        }
        let chunks: [ByteBuffer]
        do {
            chunks = try stream.reassembly.insert(offset: data.offset, data: data.data, fin: data.fin)
        } catch {
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
        streams[id] = stream
        if stream.openSeen {
            for chunk in chunks { actions.append(.deliver(id, chunk)) }
        } else {
            earlyData[id, default: []] += chunks
        }
        checkRemoteFin(id, now: now)
    }

    /// Counts stream bytes up to `end` (from `counted`) against the tunnel window; a peer that
    /// goes beyond it loses the link.
    /// `end` is the peer's (the parser keeps it at most `WireProtocol.maxStreamOffset`): the
    /// check subtracts, it never adds to a value the peer chose.
    private mutating func count(from counted: UInt64, to end: UInt64, on link: LinkID, now: Duration) -> Bool {
        guard end > counted else { return true }
        guard end - counted <= tunnelAdvertised - min(tunnelReceived, tunnelAdvertised) else {
            breakLink(link, reason: "the peer sent beyond the tunnel's credit", now: now)
            return false
        }
        tunnelReceived += end - counted
        return true
    }

    private mutating func receiveReset(_ reset: StreamReset, on link: LinkID, now: Duration) {
        let id = StreamID(reset.streamID)
        if let stream = streams.removeValue(forKey: id) {
            earlyData[id] = nil
            creditBlocked.remove(id)
            actions.append(.streamReset(id, code: reset.code, message: reset.message))
            let final = max(reset.finalSize, stream.receivedEnd)
            guard count(from: stream.receivedEnd, to: final, on: link, now: now) else { return }
            tunnelConsumed += final - stream.consumed
            // The answer: our final size, so the peer can settle its count too.
            queue.append(
                .streamReset(StreamReset(streamID: id.rawValue, code: .cancelled, finalSize: stream.nextOffset)))
        } else if let counted = resetStreams.removeValue(forKey: id) {
            // The answer to our reset.
            let final = max(reset.finalSize, counted)
            guard count(from: counted, to: final, on: link, now: now) else { return }
            tunnelConsumed += final - counted
        } else if isRemote(id) && !isOldRemote(id) {
            // Opened and reset before anything else of it arrived: settle it now.
            noteRemote(id)
            guard count(from: 0, to: reset.finalSize, on: link, now: now) else { return }
            tunnelConsumed += reset.finalSize
            queue.append(.streamReset(StreamReset(streamID: id.rawValue, code: .cancelled, finalSize: 0)))
        }
        updateTunnelWindow(now: now)
    }

    /// Refuses a remote stream we keep no state for.
    private mutating func refuse(_ id: StreamID, message: String, counted: UInt64 = 0) {
        if resetStreams.count < options.configuration.maxStreams { resetStreams[id] = counted }
        queue.append(.streamReset(StreamReset(streamID: id.rawValue, code: .limitReached, message: message)))
    }

    /// Forgets a stream and tells the peer, releasing its tunnel credit; until the peer answers
    /// with its final size, late bytes are counted against the stream's tombstone.
    private mutating func resetLocally(_ id: StreamID, _ stream: StreamState, code: StreamReset.Code, message: String) {
        streams[id] = nil
        creditBlocked.remove(id)
        earlyData[id] = nil
        tunnelConsumed += stream.receivedEnd - stream.consumed
        if stream.reassembly.finalOffset == nil, resetStreams.count < options.configuration.maxStreams {
            resetStreams[id] = stream.receivedEnd
        }
        queue.append(
            .streamReset(StreamReset(streamID: id.rawValue, code: code, finalSize: stream.nextOffset, message: message))
        )
    }

    /// Grants the peer more tunnel credit when half the window is used, growing the window when
    /// the readers keep up (the same rule as per stream).
    private mutating func updateTunnelWindow(now: Duration) {
        let remaining = tunnelAdvertised - min(tunnelAdvertised, tunnelConsumed)
        guard remaining <= UInt64(tunnelWindow / 2) else { return }
        let rtt = links.values.compactMap(\.smoothedRTT).min() ?? .milliseconds(50)
        if now - tunnelLastUpdate < rtt * 4 {
            tunnelWindow = min(tunnelWindow * 2, max(options.configuration.maxTunnelWindow, tunnelWindow))
        }
        tunnelAdvertised = tunnelConsumed + UInt64(tunnelWindow)
        tunnelLastUpdate = now
        queue.append(.windowUpdate(WindowUpdate(streamID: 0, limit: tunnelAdvertised)))
    }

    private mutating func checkRemoteFin(_ id: StreamID, now: Duration) {
        guard var stream = streams[id], stream.openSeen, !stream.remoteFinDelivered, stream.reassembly.isComplete
        else { return }
        stream.remoteFinDelivered = true
        streams[id] = stream
        actions.append(.remoteFinished(id))
        closeIfDone(id, now: now)
    }

    private mutating func closeIfDone(_ id: StreamID, now: Duration) {
        guard let stream = streams[id], stream.isDone else { return }
        streams[id] = nil
        creditBlocked.remove(id)
        // Bytes delivered and not yet taken are the driver's now; their credit goes back.
        tunnelConsumed += stream.receivedEnd - stream.consumed
        actions.append(.streamClosed(id))
        updateTunnelWindow(now: now)
    }

    // MARK: sending

    private mutating func markReady(_ id: StreamID) {
        creditBlocked.remove(id)
        if readySet.insert(id).inserted { ready.append(id) }
    }

    /// Fills links with frames while any link has room.
    private mutating func pump(now: Duration) {
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
            // In place: a copy of the link's output taken out of the dictionary would make every
            // frame copy everything queued before it (copy on write).
            let before = output[link]?.writerIndex ?? 0
            serializer.serialize(frame, into: &output[link, default: ByteBuffer()])
            links[link]!.recordSent(frame, bytes: output[link]!.writerIndex - before, now: now)
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
    private mutating func reinject(now: Duration) {
        guard links.count > 1 else { return }
        while let target = chooseLink(for: TunnelFrameSerializer.headerLength + 12 + options.frameLimits.maxDataChunk),
            let targetLink = links[target]
        {
            let targetRate = targetLink.deliveryRate ?? 0
            var oldest: (link: LinkID, index: CircularBuffer<LinkState.SentFrame>.Index, sentAt: Duration)?
            for (id, link) in links where id != target && (link.suspect || (link.deliveryRate ?? 0) * 2 < targetRate) {
                // Late for its own link, too: a frame on its way at the link's usual pace is
                // not worth a copy.
                let late = link.smoothedRTT.map { $0 + link.rttVariance * 4 } ?? .milliseconds(100)
                let from = requeuedBelow[id] ?? 0
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
            links[oldest.link]!.unacked[oldest.index].reinjected = true
            let frame = links[oldest.link]!.unacked[oldest.index].frame
            let before = output[target]?.writerIndex ?? 0
            serializer.serialize(frame, into: &output[target, default: ByteBuffer()])
            let bytes = output[target]!.writerIndex - before
            links[target]!.recordSent(frame, bytes: bytes, now: now)
            resentBytes += bytes
        }
    }

    private func estimatedSize(_ frame: TunnelFrame) -> Int {
        switch frame {
        case .streamData(let data): TunnelFrameSerializer.headerLength + 12 + data.data.readableBytes
        default: 64
        }
    }

    /// The size of the data frame `buildDataFrame` would cut now, or nil if no stream can send.
    private mutating func nextDataSize() -> Int? {
        while let id = ready.first {
            guard let stream = streams[id] else {
                ready.removeFirst()
                readySet.remove(id)
                continue
            }
            let bytes = sendableBytes(stream)
            let finNow = stream.finRequested && !stream.finSent && bytes == stream.pending.readableBytes
            if bytes > 0 || finNow {
                return TunnelFrameSerializer.headerLength + 12 + bytes
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
    private func sendableBytes(_ stream: StreamState) -> Int {
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

    private mutating func buildDataFrame(now: Duration, limit: Int) -> TunnelFrame? {
        guard let id = ready.first, var stream = streams[id] else { return nil }
        let bytes = min(sendableBytes(stream), limit)
        let chunk = stream.pending.read(length: bytes)
        let fin = stream.finRequested && stream.pending.readableBytes == 0
        let frame = TunnelFrame.streamData(
            StreamData(streamID: id.rawValue, offset: stream.nextOffset, fin: fin, data: chunk))
        stream.nextOffset += UInt64(bytes)
        tunnelSent += UInt64(bytes)
        if fin { stream.finSent = true }
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
    /// their in-flight cap and not suspected.
    private func chooseLink(for size: Int) -> LinkID? {
        var best: (LinkID, Double)?
        for (id, link) in links where !link.suspect {
            guard
                link.inFlightBytes == 0
                    || link.inFlightBytes + size <= link.inFlightCap(initial: options.initialInFlight)
            else { continue }
            let arrival = link.expectedArrival(bytes: size, initialRate: 10e6)
            if best == nil || arrival < best!.1 || (arrival == best!.1 && id < best!.0) {
                best = (id, arrival)
            }
        }
        return best?.0
    }

    private mutating func resumeReadingWhereDrained() {
        for (id, stream) in streams
        where stream.readingPaused && stream.pending.readableBytes <= options.sendBufferLimit / 2 {
            streams[id]!.readingPaused = false
            actions.append(.resumeReading(id))
        }
    }

    private mutating func write(_ frame: TunnelFrame, on link: LinkID) {
        serializer.serialize(frame, into: &output[link, default: ByteBuffer()])
    }

    // MARK: link health

    private mutating func checkLinks(now: Duration) {
        for id in links.keys.sorted() {
            guard let link = links[id] else { continue }
            if let due = link.ackDueAt, due <= now { sendAck(on: id) }
            if now - link.lastReceive >= options.silenceLimit {
                breakLink(id, reason: "silent for \(now - link.lastReceive)", now: now)
                continue
            }
            if let oldest = link.unacked.first, !link.suspect,
                now - oldest.sentAt >= link.ackDeadline(minimum: options.minimumAckDeadline)
            {
                suspect(id, now: now)
            }
            if now - link.lastSend >= options.pingInterval, links[id] != nil {
                write(.ping(nextPing), on: id)
                nextPing += 1
                links[id]!.lastSend = now
            }
        }
    }

    /// The link missed its deadline: stop scheduling on it until it shows life, ping it, and send
    /// its unacknowledged frames again on another link if there is one (else when one comes up).
    private mutating func suspect(_ id: LinkID, now: Duration) {
        links[id]!.suspect = true
        if links.values.contains(where: { !$0.suspect }) { requeue(id) }
        write(.ping(nextPing), on: id)
        nextPing += 1
        links[id]!.lastSend = now
    }

    private mutating func requeue(_ id: LinkID) {
        guard let link = links[id] else { return }
        let from = requeuedBelow[id] ?? 0
        let frames = link.unacked.filter { $0.sequence >= from }
        for frame in frames.reversed() {
            queue.prepend(frame.frame)
            resentBytes += frame.bytes
        }
        requeuedBelow[id] = link.sentReliable
    }

    private mutating func breakLink(_ id: LinkID, reason: String, now: Duration) {
        removeLink(id, now: now)
        actions.append(.closeLink(id, reason: reason))
    }

    private mutating func removeLink(_ id: LinkID, now: Duration) {
        guard links[id] != nil else { return }
        requeue(id)
        links[id] = nil
        parsers[id] = nil
        requeuedBelow[id] = nil
        output[id] = nil
        if links.isEmpty { noLinkSince = now }
    }

    private mutating func failTunnel(reason: String) {
        guard !failed else { return }
        failed = true
        for id in streams.keys.sorted() {
            actions.append(.streamReset(id, code: .tunnelLost, message: reason))
        }
        streams.removeAll()
        earlyData.removeAll()
        resetStreams.removeAll()
        queue.removeAll()
        for id in links.keys.sorted() { actions.append(.closeLink(id, reason: reason)) }
        links.removeAll()
        parsers.removeAll()
        actions.append(.tunnelFailed(reason: reason))
    }

    // MARK: output

    /// Flushes writes (one per link) and the next timer, and hands out the actions.
    ///
    /// Writes come first: a driver that reacts to a later action by calling the engine again
    /// (resumed reading, a delivered byte) must already have written these bytes, or the link
    /// would carry frames out of the order they were numbered in.
    private mutating func finish(now: Duration) -> [TunnelAction] {
        // Pending acks ride with whatever goes out on their link now.
        // (Ids first: writing while iterating `output` would copy its buffers.)
        let riding = output.keys.filter { output[$0]!.readableBytes > 0 && links[$0]?.ackDueAt != nil }
        for id in riding { sendAck(on: id) }
        var writes: [TunnelAction] = []
        for id in output.keys.sorted() {
            if let buffer = output[id], buffer.readableBytes > 0 { writes.append(.write(id, buffer)) }
        }
        output.removeAll(keepingCapacity: true)
        actions.insert(contentsOf: writes, at: 0)
        if let next = nextDeadline(now: now), next != lastTimer {
            lastTimer = next
            actions.append(.scheduleTimer(next))
        }
        defer { actions.removeAll(keepingCapacity: true) }
        return actions
    }

    private func nextDeadline(now: Duration) -> Duration? {
        guard !failed else { return nil }
        var next: Duration?
        func consider(_ time: Duration) { next = min(next ?? time, time) }
        for link in links.values {
            consider(link.lastReceive + options.silenceLimit)
            consider(link.lastSend + options.pingInterval)
            if let due = link.ackDueAt { consider(due) }
            if let oldest = link.unacked.first, !link.suspect {
                consider(oldest.sentAt + link.ackDeadline(minimum: options.minimumAckDeadline))
            }
        }
        if let since = noLinkSince { consider(since + options.configuration.noLinkGracePeriod) }
        return next.map { max($0, now) }
    }
}
