import NIOCore
import WeftWire

/// What the engine knows about one link: its reliable frames in flight, and estimates of its
/// round-trip time and delivery rate that drive scheduling and failure detection.
struct LinkState {
    /// A reliable frame sent on this link and not yet acknowledged.
    struct SentFrame {
        var sequence: UInt64
        var frame: TunnelFrame
        var bytes: Int
        var sentAt: Duration
        /// Delivery-rate bookkeeping at send time (BBR's rate sample).
        var deliveredAtSend: Int
        var deliveredTimeAtSend: Duration
        /// When the frame delivered last at send time had been sent.
        var firstSentAtSend: Duration
        /// A copy already went out on another link (see `TunnelEngine.reinject`).
        var reinjected = false
    }

    let id: LinkID
    /// The link's incoming bytes, cut into frames.
    var parser: TunnelFrameParser
    /// Frames of a suspected link already queued again: sequences below this are.
    var requeuedBelow: UInt64 = 0
    var unacked = CircularBuffer<SentFrame>()
    /// Reliable frames sent (the next one's number).
    var sentReliable: UInt64 = 0
    /// Reliable frames of the peer received on this link, and how many we have acknowledged.
    var receivedReliable: UInt64 = 0
    var acknowledged: UInt64 = 0
    /// Bytes received since the last ack, and when the pending ack must go out at the latest.
    var receivedSinceAck = 0
    var ackDueAt: Duration?
    var inFlightBytes = 0

    var smoothedRTT: Duration?
    /// The smallest RTT seen lately: the path's own delay, without the queues that sending
    /// builds (a shaper's queue inflates the smoothed RTT by as much as it holds).
    var minimumRTT: Duration?
    private var minimumRTTSince: Duration = .zero
    private var windowMinimum: Duration?
    var rttVariance: Duration = .zero
    /// `smoothedRTT * 2 + rttVariance * 4`, kept from the last sample: the deadline is read on
    /// every flush, and `Duration`'s generic `*` is a call into the runtime each time.
    private var rttDeadline: Duration?
    /// Bytes acknowledged in total, and when the last acknowledgement arrived.
    var delivered = 0
    var deliveredTime: Duration = .zero
    /// When the frame acknowledged last had been sent (BBR's first_sent_time).
    var firstSentTime: Duration = .zero
    /// Recent delivery-rate samples (bytes per second); the estimate is their maximum.
    /// Recent delivery-rate samples (when, bytes per second), kept as a decreasing sequence:
    /// the first is the largest of the window (a monotonic queue, so the maximum costs nothing).
    var rateSamples = CircularBuffer<(at: Duration, rate: Double)>()
    var lastReceive: Duration
    var lastSend: Duration
    /// True after a missed acknowledgement deadline, until the link shows life again.
    var suspect = false
    /// A backup path: data only while no primary link is up (`TunnelEngine.chooseLink`).
    var backup = false
    /// Blocked by the operator: no data at all until unblocked; acks and pings go on.
    var blocked = false
    /// Blocked by the peer's operator (a `linkPolicy` frame): the same, in this direction.
    var peerBlocked = false
    /// The peer understands `linkPolicy` frames (its hello or welcome said so).
    var peerTakesPolicy = false
    /// Blocked at either end: carries no data.
    var anyBlocked: Bool { blocked || peerBlocked }
    /// Since when the link's outbound buffer has been full (the driver's channel is not
    /// writable) without an acknowledgement from the peer, or nil while it takes bytes. Nothing is scheduled on a full link, pongs to its
    /// pings are dropped and its acks wait: a peer that never reads cannot grow what this side
    /// holds for it.
    var fullSince: Duration?
    var writable: Bool { fullSince == nil }

    init(id: LinkID, frameLimits: TunnelFrameLimits, now: Duration) {
        self.id = id
        self.parser = TunnelFrameParser(limits: frameLimits)
        self.lastReceive = now
        self.lastSend = now
        self.deliveredTime = now
    }

    /// Bytes per second the link has recently been seen to deliver; nil before any sample.
    /// The largest sample of the last `rateWindow`: a link held below its rate for a while
    /// (by the in-flight cap, or by having little to send) keeps what it showed it can do.
    var deliveryRate: Double? { rateSamples.first?.rate }

    /// How long a rate sample counts: 8 of the path's RTTs, at least 250 ms.
    var rateWindow: Duration { max(.milliseconds(250), (minimumRTT ?? .milliseconds(50)) * 8) }

    /// The acknowledgement deadline: how long the oldest frame may stay unacknowledged before
    /// the link is suspected. Derived from the link's own RTT, never a fixed second.
    func ackDeadline(minimum: Duration) -> Duration {
        max(minimum, rttDeadline ?? Self.unmeasuredAckDeadline)
    }

    /// How many bytes may be in flight: about twice the bandwidth-delay product, so decisions
    /// stay late and the RTT samples honest.
    ///
    /// Against the path's own RTT (plus the ack delay and some slack), not the smoothed one:
    /// a cap that grows with the queue it fills would fill any shaper's queue, and every frame
    /// on that link would wait out the queue, holding back the bytes behind it on all links.
    func inFlightCap(initial: Int) -> Int {
        guard let rate = deliveryRate, let rtt = minimumRTT else { return initial }
        let bdp = rate * (rtt + .milliseconds(4)).inSeconds
        return max(32 << 10, min(64 << 20, Int(bdp * 2)))
    }

    /// The largest data frame for this link: about 4 ms of its rate (at least 8 KiB). A
    /// frame is delivered whole or not at all, so a big one on a slow link holds back the
    /// bytes behind it on every faster link for its whole transmission time.
    func preferredChunk(maximum: Int) -> Int {
        guard let rate = deliveryRate else { return maximum }
        return min(maximum, max(8 << 10, Int(rate * 0.004)))
    }

    /// When a frame of `bytes` sent now is expected to arrive.
    func expectedArrival(bytes: Int, initialRate: Double) -> Double {
        let rate = deliveryRate ?? initialRate
        // The queue ahead of it is the bytes in flight; the rest is the path's own delay.
        let rtt = (minimumRTT ?? smoothedRTT ?? .milliseconds(50)).inSeconds
        return Double(inFlightBytes + bytes) / max(rate, 1) + rtt / 2
    }

    mutating func recordSent(_ frame: TunnelFrame, bytes: Int, now: Duration) {
        if unacked.isEmpty {
            // Idle until now: rate samples restart from here, not from the last ack long ago.
            deliveredTime = now
            firstSentTime = now
        }
        unacked.append(
            SentFrame(
                sequence: sentReliable,
                frame: frame,
                bytes: bytes,
                sentAt: now,
                deliveredAtSend: delivered,
                deliveredTimeAtSend: deliveredTime,
                firstSentAtSend: firstSentTime
            )
        )
        sentReliable += 1
        inFlightBytes += bytes
        lastSend = now
    }

    /// Processes a cumulative acknowledgement; returns whether it covered any frame.
    mutating func acknowledge(upTo count: UInt64, now: Duration) -> Bool {
        var newest: SentFrame?
        while let first = unacked.first, first.sequence < count {
            let frame = unacked.removeFirst()
            inFlightBytes -= frame.bytes
            delivered += frame.bytes
            deliveredTime = now
            newest = frame
        }
        if let last = newest {
            sampleRTT(now - last.sentAt)
            sampleMinimumRTT(now - last.sentAt, now: now)
            firstSentTime = last.sentAt
            // The longer of the send and the ack intervals, as BBR does: a burst that a shaper
            // lets through at line rate (tbf's bucket) or acks that arrive bunched would
            // otherwise claim a rate the link cannot sustain, and the scheduler would give the
            // link more than it can carry in time.
            let interval = max(now - last.deliveredTimeAtSend, last.sentAt - last.firstSentAtSend)
            if interval > .microseconds(100) {
                let rate = Double(delivered - last.deliveredAtSend) / interval.inSeconds
                while let last = rateSamples.last, last.rate <= rate { rateSamples.removeLast() }
                rateSamples.append((at: now, rate: rate))
                let window = rateWindow
                while let first = rateSamples.first, now - first.at > window, rateSamples.count > 1 {
                    rateSamples.removeFirst()
                }
            }
            suspect = false
        }
        return newest != nil
    }

    /// A windowed minimum: the least sample of the last 10 s (and the current window's
    /// running minimum), so a path whose delay grows is noticed within 20 s.
    mutating func sampleMinimumRTT(_ sample: Duration, now: Duration) {
        windowMinimum = min(windowMinimum ?? sample, sample)
        minimumRTT = min(minimumRTT ?? sample, sample)
        if now - minimumRTTSince >= .seconds(10) {
            minimumRTT = windowMinimum
            windowMinimum = nil
            minimumRTTSince = now
        }
    }

    static let unmeasuredAckDeadline = Duration.milliseconds(500)

    /// RFC 6298 smoothing.
    mutating func sampleRTT(_ sample: Duration) {
        defer { rttDeadline = smoothedRTT.map { $0 * 2 + rttVariance * 4 } }
        guard let srtt = smoothedRTT else {
            smoothedRTT = sample
            rttVariance = sample / 2
            return
        }
        let difference = srtt > sample ? srtt - sample : sample - srtt
        rttVariance = rttVariance * 3 / 4 + difference / 4
        smoothedRTT = srtt * 7 / 8 + sample / 8
    }
}
