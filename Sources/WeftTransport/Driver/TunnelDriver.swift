import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import WeftTunnel
import WeftWire

/// Runs one `TunnelEngine` on one event loop: feeds it what the links and the apps do, and
/// carries out its actions. It makes no protocol decision of its own.
///
/// Links may live on other event loops; their bytes hop here in order. Every method other than
/// `attach(_:)` and `eventLoop.execute` must be called on `eventLoop` (the stream delegates are
/// called there too). `@unchecked Sendable` because its state is confined to that loop.
public final class TunnelDriver: @unchecked Sendable {
    public let eventLoop: EventLoop
    /// This side's half of the tunnel (see `LinkHandshake`).
    public let localIncarnation: UInt64
    public let peerSite: String
    public var logger: Logger

    /// A peer opened a stream: return its delegate, or nil to refuse it (the driver then resets
    /// it with `notExposed` unless the handler reset it with a better reason first).
    public var onIncomingStream: ((StreamID, _ appName: String, _ target: String?) -> TunnelStreamDelegate?)?
    /// While `onIncomingStream` runs: the client's address the peer sent with the open, if any.
    public private(set) var incomingOrigin: StreamOrigin?
    /// While `onIncomingStream` runs: whether the stream carries a UDP client's datagrams.
    public private(set) var incomingDatagrams = false
    /// The tunnel ended: no link for longer than the grace period, or the peer stopped.
    public var onFailed: ((TunnelFailure) -> Void)?
    /// The number of links changed (on the driver's loop, never under a lock of the driver's):
    /// whoever waits for a link learns it from this, not by asking again and again.
    public var onLinksChanged: ((Int) -> Void)?

    private var engine: TunnelEngine
    private let start = NIODeadline.now()
    /// A link of the tunnel, with what operators see of it.
    private struct LinkRecord {
        var channel: Channel
        var dialed: Bool
        var transport: LinkEndpoint.Kind
        /// The relay site whose tunnel carries the link (relayed links).
        var relay: String?
        var punched: Bool
        /// Where it goes when its socket has no IP peer (Bluetooth, USB): from the dialed endpoint.
        var remoteName: String?
        var sent: UInt64 = 0
        var received: UInt64 = 0
        /// What the link's counters already show (they are moved once a second, not per frame).
        var publishedSent: UInt64 = 0
        var publishedReceived: UInt64 = 0
        let metrics: TunnelMetrics.Link
        var suspect = false
    }

    private var links: [LinkID: LinkRecord] = [:]
    private let metrics: TunnelMetrics
    private var metricsReleased = false
    /// Bytes of every link, including those gone, and re-sent bytes already counted.
    private var totalSent: UInt64 = 0
    private var totalReceived: UInt64 = 0
    private var publishedTotalSent: UInt64 = 0
    private var publishedTotalReceived: UInt64 = 0
    private var publishedResent = 0
    private var delegates: [StreamID: TunnelStreamDelegate] = [:]
    /// The array `runEngine` lends the engine for its actions (empty between calls).
    private var spareActions: [TunnelAction] = []
    /// The engine's timer: a callback on the loop (no promise and no closure per arm, as
    /// `scheduleTask` costs), always to the same handler.
    private var timer: NIOScheduledCallback?
    private lazy var timerHandler = TimerHandler(driver: self)
    /// When `timer` fires (engine time). A later deadline leaves it armed: firing early costs
    /// the engine one look at its links, re-arming on every frame cost a timer-heap update,
    /// a cancelled promise and often a `timerfd_settime` per request.
    private var timerDeadline: Duration?
    /// Where the tunnel is in its life; only `running` feeds the engine.
    private enum Lifecycle {
        case running
        /// `close(reason:)` is ending it on purpose (its end is logged as a close, not a failure).
        case closing
        /// Closed or failed: nothing more happens.
        case ended
    }

    private var lifecycle = Lifecycle.running
    private var running: Bool { lifecycle == .running }
    private let nextLinkID = NIOLockedValueBox<UInt32>(1)
    private let liveLinks = NIOLockedValueBox<Int>(0)
    private let liveRelayedLinks = NIOLockedValueBox<Int>(0)
    private let peerHalf: NIOLockedValueBox<UInt64>
    private let closedFlag = NIOLockedValueBox<Bool>(false)
    /// Link events that arrived while actions were being carried out (see `linkEvent`).
    private var applying = 0
    private var deferredLinkEvents: [@Sendable (TunnelDriver) -> Void] = []

    public init(
        eventLoop: EventLoop,
        localIncarnation: UInt64,
        peerSite: String,
        peerIncarnation: UInt64 = LinkHandshake.unknownIncarnation,
        options: TunnelEngine.Options,
        logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.localIncarnation = localIncarnation
        self.peerSite = peerSite
        self.peerHalf = NIOLockedValueBox(peerIncarnation)
        self.logger = logger
        self.logger[metadataKey: "peer"] = "\(peerSite)"
        self.engine = TunnelEngine(options: options, now: .zero)
        self.metrics = TunnelMetrics(peer: peerSite)
    }

    /// The peer's half of the tunnel; `LinkHandshake.unknownIncarnation` until a first link
    /// (dialed by this side into a new tunnel) is welcomed. Readable from any thread.
    public var peerIncarnation: UInt64 { peerHalf.withLockedValue { $0 } }

    /// Learns the peer's half from a welcome or a hello; false if it already had another one
    /// (that link belongs to a different tunnel).
    public func adopt(peerIncarnation: UInt64) -> Bool {
        peerHalf.withLockedValue { half in
            if half == LinkHandshake.unknownIncarnation { half = peerIncarnation }
            return half == peerIncarnation
        }
    }

    /// Engine time: the driver's age.
    private var now: Duration {
        .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - start.uptimeNanoseconds))
    }

    // MARK: links

    /// Joins an established link (its handshake done) to the tunnel. Call on the link's event
    /// loop, at once when the handshake finishes, so no read is missed.
    public func attach(
        _ channel: Channel, leftover: ByteBuffer, dialed: Bool = true, transport: LinkEndpoint.Kind = .tls,
        backup: Bool = false, peerCapabilities: UInt32 = LinkHello.linkPolicyFrames,
        punched: Bool = false, remote: LinkEndpoint? = nil
    ) {
        channel.eventLoop.preconditionInEventLoop()
        let id = LinkID(
            nextLinkID.withLockedValue { value in
                defer { value &+= 1 }
                return value
            })
        do {
            try channel.pipeline.syncOperations.addHandler(LinkHandler(driver: self, id: id))
        } catch {
            logger.warning("could not attach a link", metadata: ["error": "\(error)"])
            channel.close(promise: nil)
            return
        }
        linkEvent {
            guard $0.running else {
                channel.close(promise: nil)
                return
            }
            let relay = (channel as? TunnelStreamChannel)?.carrier
            let path = TunnelSnapshot.Link.path(relay: relay, punched: punched)
            let remoteName = Self.remoteName(of: channel, transport: transport, dialed: remote)
            $0.links[id] = LinkRecord(
                channel: channel, dialed: dialed, transport: transport, relay: relay, punched: punched,
                remoteName: remoteName, metrics: $0.metrics.link(id.rawValue, transport: transport, path: path))
            $0.countLinks()
            $0.metrics.linkStateChanged(to: "up")
            $0.logger.info(
                "link up",
                metadata: [
                    "link": "\(id)", "direction": "\(dialed ? "dialed" : "accepted")", "transport": "\(transport)",
                    "role": "\(backup ? "backup" : "primary")", "path": "\(path)",
                    "remote": "\(remoteName ?? Self.remoteDescription(of: channel))",
                ])
            $0.apply(
                $0.engine.linkUp(
                    id, leftover: leftover, now: $0.now, backup: backup, peerCapabilities: peerCapabilities))
            // A channel already full when it joins: its next change would come only once it drains.
            if !channel.isWritable, $0.links[id] != nil {
                $0.apply($0.engine.linkWritabilityChanged(id, writable: false, now: $0.now))
            }
        }
    }

    /// Bytes arrived on a link; `taken`, if given, runs on this loop once the engine has them
    /// (or the tunnel no longer wants them), so a link on another loop can bound what is on its
    /// way here.
    func linkReceived(_ bytes: ByteBuffer, on id: LinkID, taken: (@Sendable () -> Void)? = nil) {
        // The common case, a link on this loop and no actions under way, runs at once without
        // building the event's closure.
        if taken == nil, applying == 0, eventLoop.inEventLoop {
            receive(bytes, on: id)
            return
        }
        linkEvent {
            defer { taken?() }
            $0.receive(bytes, on: id)
        }
    }

    private func receive(_ bytes: ByteBuffer, on id: LinkID) {
        guard running else { return }
        let count = UInt64(bytes.readableBytes)
        if let index = links.index(forKey: id) { links.values[index].received &+= count }
        totalReceived &+= count
        runEngine { $0.received(bytes, on: id, now: now, into: &$1) }
    }

    /// The link's channel became writable or not; read when the event runs (it may have been
    /// deferred behind other actions), so the engine always learns the current state.
    func linkWritabilityChanged(_ id: LinkID) {
        linkEvent {
            guard $0.running, let record = $0.links[id] else { return }
            $0.apply($0.engine.linkWritabilityChanged(id, writable: record.channel.isWritable, now: $0.now))
        }
    }

    func linkClosed(_ id: LinkID) {
        linkEvent {
            guard $0.forgetLink(id) != nil, $0.running else { return }
            $0.logger.info("link down", metadata: ["link": "\(id)"])
            $0.apply($0.engine.linkDown(id, now: $0.now))
        }
    }

    /// Takes a link out of the tunnel's books (its series, the state count, the link count).
    private func forgetLink(_ id: LinkID) -> LinkRecord? {
        guard links[id] != nil else { return nil }
        publishByteCounts()  // the link's last bytes reach its counters before they go
        let record = links.removeValue(forKey: id)!
        record.metrics.destroy()
        metrics.linkStateChanged(to: "down")
        countLinks()
        return record
    }

    func linkFailed(_ id: LinkID, error: Error) {
        linkEvent { $0.logger.notice("link error", metadata: ["link": "\(id)", "error": "\(error)"]) }
    }

    /// Runs a link event on the driver's loop: at once when nothing else is running, after the
    /// current actions when they caused it, and as a task from another loop.
    ///
    /// Never in the middle of carrying out actions: a write on a link of this loop can make
    /// NIOSSL read, or a channel close, synchronously; feeding that into the engine there would
    /// deliver newer stream bytes before older ones still waiting in the current action list
    /// (the 1 GiB TLS test caught stream bytes permuted that way).
    private func linkEvent(_ body: @escaping @Sendable (TunnelDriver) -> Void) {
        guard eventLoop.inEventLoop else {
            eventLoop.execute { self.linkEvent(body) }
            return
        }
        if applying > 0 {
            deferredLinkEvents.append(body)
        } else {
            body(self)
        }
    }

    /// The links now in the tunnel.
    public var linkCount: Int {
        eventLoop.preconditionInEventLoop()
        return links.count
    }

    /// The links now in the tunnel, readable from any thread (for whoever waits for one).
    public var establishedLinks: Int { liveLinks.withLockedValue { $0 } }

    /// Links of this tunnel that another site relays, readable from any thread: a tunnel with
    /// any carries no relayed link of its own (see `RelayProtocol`).
    public var relayedLinks: Int { liveRelayedLinks.withLockedValue { $0 } }

    /// Keeps the thread-safe counts in step with `links` after every change to it.
    private func countLinks() {
        var relayed = 0
        for record in links.values where record.transport == LinkEndpoint.Kind.relay { relayed += 1 }
        liveRelayedLinks.withLockedValue { $0 = relayed }
        let count = links.count
        let changed = liveLinks.withLockedValue { live in
            defer { live = count }
            return live != count
        }
        if changed { onLinksChanged?(count) }
    }

    /// Streams with a delegate here (open, or closing); on the driver's loop.
    public var streamCount: Int {
        eventLoop.preconditionInEventLoop()
        return delegates.count
    }

    /// Whether the tunnel has ended (closed or failed); readable from any thread.
    public var isEnded: Bool { closedFlag.withLockedValue { $0 } }

    /// Ends the tunnel: every stream's delegate gets a reset (`tunnelLost`, with `reason`), the
    /// peer is told on every link, and the links close. Used when the site stops and when the
    /// peer came back as a new incarnation (its streams belong to a tunnel that no longer exists).
    public func close(reason: String = "tunnel closed") {
        eventLoop.preconditionInEventLoop()
        if running {
            lifecycle = .closing
            apply(engine.close(reason: reason, now: now))
        }
        lifecycle = .ended
        closedFlag.withLockedValue { $0 = true }
        cancelTimer()
        publishByteCounts()
        let channels = links.values.map(\.channel)
        for record in links.values { record.metrics.destroy() }
        links.removeAll()
        metrics.links.record(0)
        metrics.streamsOpen.record(0)
        releaseMetrics()
        countLinks()
        // Every stream's delegate has had its reset; none is kept (they hold this driver).
        delegates.removeAll()
        for channel in channels { channel.close(promise: nil) }
    }

    /// A counter labelled with this tunnel's peer, removed with the peer's other series.
    public func peerCounter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        metrics.series.counter(label, dimensions)
    }

    /// The peer's series go when its last tunnel ends (once per driver).
    private func releaseMetrics() {
        guard !metricsReleased else { return }
        metricsReleased = true
        metrics.series.release()
    }

    // MARK: operators

    /// Stops (or resumes) scheduling data on link `id` without closing it; false when the
    /// tunnel has no such link. Call on the event loop.
    public func setBlocked(_ id: LinkID, _ blocked: Bool) -> Bool {
        eventLoop.preconditionInEventLoop()
        guard running else { return false }
        let (found, actions) = engine.setBlocked(id, blocked, now: now)
        guard found else { return false }
        logger.notice(blocked ? "link blocked" : "link unblocked", metadata: ["link": "\(id)"])
        apply(actions)
        return true
    }

    /// The tunnel as it is now, for the API; on the driver's loop.
    public func snapshot() -> TunnelSnapshot {
        eventLoop.preconditionInEventLoop()
        var statistics: [LinkID: LinkStatistics] = [:]
        for entry in engine.linkStatistics { statistics[entry.id] = entry }
        return TunnelSnapshot(
            peer: peerSite,
            localIncarnation: localIncarnation,
            peerIncarnation: peerIncarnation,
            openStreams: delegates.count,
            resentBytes: engine.resentBytes,
            bytesSent: totalSent,
            bytesReceived: totalReceived,
            links: links.keys.sorted().map { id in
                let record = links[id]!
                return TunnelSnapshot.Link(
                    id: id, localAddress: record.channel.localAddress, remoteAddress: record.channel.remoteAddress,
                    remoteName: record.remoteName,
                    dialed: record.dialed, transport: record.transport, relay: record.relay, punched: record.punched,
                    bytesSent: record.sent,
                    bytesReceived: record.received,
                    statistics: statistics[id])
            },
            ended: !running
        )
    }

    /// Sets the tunnel's gauges (RTT, rate, streams, links) and counts new re-sent bytes and
    /// links newly suspected; called about once a second, on the driver's loop.
    public func publishMetrics() {
        eventLoop.preconditionInEventLoop()
        publishByteCounts()
        for entry in engine.linkStatistics {
            guard let record = links[entry.id] else { continue }
            if let rtt = entry.smoothedRTT {
                record.metrics.rtt.record(rtt.inSeconds)
            }
            if let rate = entry.deliveryRate { record.metrics.rate.record(rate) }
            if entry.suspect && !record.suspect { metrics.linkStateChanged(to: "suspect") }
            links[entry.id]!.suspect = entry.suspect
        }
        let resent = engine.resentBytes
        if resent > publishedResent { metrics.resent.increment(by: Int64(resent - publishedResent)) }
        publishedResent = resent
        metrics.streamsOpen.record(delegates.count)
        metrics.links.record(links.count)
    }

    /// Moves the byte counters up to what the tunnel and its links have carried.
    private func publishByteCounts() {
        for index in links.values.indices {
            let record = links.values[index]
            if record.sent > record.publishedSent {
                record.metrics.sent.increment(by: Int64(record.sent - record.publishedSent))
            }
            if record.received > record.publishedReceived {
                record.metrics.received.increment(by: Int64(record.received - record.publishedReceived))
            }
            links.values[index].publishedSent = record.sent
            links.values[index].publishedReceived = record.received
        }
        if totalSent > publishedTotalSent { metrics.sent.increment(by: Int64(totalSent - publishedTotalSent)) }
        if totalReceived > publishedTotalReceived {
            metrics.received.increment(by: Int64(totalReceived - publishedTotalReceived))
        }
        publishedTotalSent = totalSent
        publishedTotalReceived = totalReceived
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    private func timerFired() {
        // A callback already due runs even if cancelled in the same tick. If a later one was
        // armed meanwhile, this is the cancelled one: the armed one stays tracked (clearing it
        // here would leave it running untracked beside the next one armed).
        if let armed = timerDeadline, armed > now { return }
        timer = nil
        timerDeadline = nil
        guard running else { return }
        runEngine { $0.timerFired(now: now, into: &$1) }
    }

    /// Runs the engine's timer on the loop. It holds the driver weakly: a driver dropped with
    /// its timer armed goes, and the callback then finds nothing to do.
    private final class TimerHandler: NIOScheduledCallbackHandler, @unchecked Sendable {
        weak var driver: TunnelDriver?

        init(driver: TunnelDriver) { self.driver = driver }

        func handleScheduledCallback(eventLoop: some EventLoop) { driver?.timerFired() }
    }

    // MARK: streams

    /// Opens a stream to `appName` at the peer; data may be sent on it at once. `origin` (the
    /// client's address) goes only to a peer that reads it. A `datagrams` stream to a peer
    /// that cannot carry one is reset at once (the delegate hears it before this returns).
    public func openStream(
        appName: String, target: String? = nil, origin: StreamOrigin? = nil, datagrams: Bool = false,
        delegate: TunnelStreamDelegate
    ) -> StreamID {
        eventLoop.preconditionInEventLoop()
        let (id, actions) = engine.openStream(
            appName: appName, target: target, origin: origin, datagrams: datagrams, now: now)
        if !running {
            // The tunnel ended between finding it and opening the stream: nothing will ever
            // carry this stream, so it ends now rather than hang.
            let bound = NIOLoopBound(delegate, eventLoop: eventLoop)
            eventLoop.execute { bound.value.streamReset(id, code: .tunnelLost, message: "the tunnel has ended") }
            return id
        }
        delegates[id] = delegate
        apply(actions)
        return id
    }

    /// Bytes of `stream` the engine holds, not framed yet (waiting for credit or a link).
    public func pendingBytes(on stream: StreamID) -> Int {
        eventLoop.preconditionInEventLoop()
        return engine.pendingBytes(on: stream)
    }

    public func send(_ bytes: ByteBuffer, on stream: StreamID) {
        eventLoop.preconditionInEventLoop()
        runEngine { $0.send(bytes, on: stream, now: now, into: &$1) }
    }

    /// The app finished its direction (half-close).
    public func finish(_ stream: StreamID) {
        eventLoop.preconditionInEventLoop()
        apply(engine.finish(stream: stream, now: now))
    }

    /// The app took `count` delivered bytes.
    public func consumed(_ count: Int, on stream: StreamID) {
        eventLoop.preconditionInEventLoop()
        runEngine { $0.consumed(count, on: stream, now: now, into: &$1) }
    }

    public func reset(_ stream: StreamID, code: StreamReset.Code, message: String = "") {
        eventLoop.preconditionInEventLoop()
        delegates[stream] = nil
        apply(engine.reset(stream: stream, code: code, message: message, now: now))
    }

    // MARK: actions

    /// Calls the engine with the driver's action array and carries the actions out. The array
    /// is lent, not shared: a call made while carrying them out (a delivered byte the app
    /// answers at once) finds none to borrow and gets its own, so a batch never allocates one
    /// except when nested.
    private func runEngine(_ call: (inout TunnelEngine, inout [TunnelAction]) -> Void) {
        var batch: [TunnelAction] = []
        swap(&batch, &spareActions)
        call(&engine, &batch)
        apply(batch)
        // Kept unless a rare burst (thousands of streams opened at once) made it large.
        guard batch.capacity <= 256, batch.capacity > spareActions.capacity else { return }
        batch.removeAll(keepingCapacity: true)
        swap(&batch, &spareActions)
    }

    private func apply(_ actions: [TunnelAction]) {
        applying += 1
        defer {
            applying -= 1
            if applying == 0 {
                while !deferredLinkEvents.isEmpty { deferredLinkEvents.removeFirst()(self) }
            }
        }
        for action in actions {
            switch action {
            case .write(let id, let bytes):
                guard let index = links.index(forKey: id) else { continue }
                let count = UInt64(bytes.readableBytes)
                links.values[index].sent &+= count
                totalSent &+= count
                links.values[index].channel.writeAndFlush(bytes, promise: nil)
            case .closeLink(let id, let reason):
                if let record = forgetLink(id) {
                    logger.notice(
                        "closing link", metadata: ["link": "\(id)", "reason": "\(reason)", "code": "\(reason.code)"])
                    record.channel.close(promise: nil)
                }
            case .incomingStream(let id, let appName, let target, let origin, let datagrams):
                // The peer may have reset the stream in the same batch (a client that connected
                // and left at once): it is gone from the engine already, and the reset later in
                // this batch must still reach the handler's delegate, or the app connection it
                // is making stays open for good.
                let endedInBatch = !engine.isOpen(id)
                incomingOrigin = origin
                incomingDatagrams = datagrams
                defer {
                    incomingOrigin = nil
                    incomingDatagrams = false
                }
                if let delegate = onIncomingStream?(id, appName, target) {
                    // The handler may have reset the stream itself (an app that failed at once).
                    if endedInBatch || engine.isOpen(id) { delegates[id] = delegate }
                } else if engine.isOpen(id) {
                    reset(id, code: .notExposed, message: "no app named \(appName)")
                }
            case .deliver(let id, let bytes):
                delegates[id]?.streamReceived(bytes, on: id)
            case .remoteFinished(let id):
                delegates[id]?.streamRemoteFinished(id)
            case .streamReset(let id, let code, let message):
                delegates.removeValue(forKey: id)?.streamReset(id, code: code, message: message)
            case .streamClosed(let id):
                delegates.removeValue(forKey: id)?.streamClosed(id)
            case .pauseReading(let id):
                delegates[id]?.streamPauseReading(id)
            case .resumeReading(let id):
                delegates[id]?.streamResumeReading(id)
            case .scheduleTimer(let at):
                guard running else { continue }
                if timer != nil, let armed = timerDeadline, armed <= at { continue }
                cancelTimer()
                timerDeadline = at
                timer = try? eventLoop.scheduleCallback(at: start + TimeAmount(at), handler: timerHandler)
            case .tunnelFailed(let reason):
                if lifecycle == .closing {
                    logger.info("tunnel closed", metadata: ["reason": "\(reason)"])
                } else {
                    logger.warning("tunnel failed", metadata: ["reason": "\(reason)"])
                }
                lifecycle = .ended
                closedFlag.withLockedValue { $0 = true }
                cancelTimer()
                publishByteCounts()
                releaseMetrics()
                onFailed?(reason)
            }
        }
    }

    /// A name for a link's far end when its socket has no IP peer address: the endpoint dialed
    /// (`bluetooth 00:1A:…`, `usb gadget weft-…`), or, for one accepted, what is known of it.
    static func remoteName(of channel: Channel, transport: LinkEndpoint.Kind, dialed: LinkEndpoint?) -> String? {
        guard channel.remoteAddress?.ipAddress == nil, !(channel is TunnelStreamChannel) else { return nil }
        if let dialed { return dialed.description }
        switch transport {
        case .bluetooth: return "a Bluetooth peer"
        case .usb: return "the USB host"
        default: return nil
        }
    }

    /// Where a link goes, for the log: its socket's peer, or the relay carrying it.
    static func remoteDescription(of channel: Channel) -> String {
        if let address = channel.remoteAddress { return "\(address)" }
        if let stream = channel as? TunnelStreamChannel { return "via \(stream.carrier)" }
        return "?"
    }
}
