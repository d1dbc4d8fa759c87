import NIOCore
import WeftTunnel
import WeftWire

/// Two tunnel engines joined in memory: side 0 opens one stream and sends `bytes` on it, side
/// 1 takes every byte as it is delivered. Each round moves everything written so far across
/// every link, both ways (so acks and window updates come back within the round), then
/// advances a virtual clock by the time the busiest link would take at `linkRate` (at least
/// `minimumStep`), and fires due timers. No sockets, no real clock: what is measured is the
/// engines' own cost per byte, plus a harness that allocates nothing per frame.
struct EnginePair {
    struct Stats {
        var dataFrames = 0
        var ackFrames = 0
        var otherFrames = 0
        var engineCalls = 0
        var rounds = 0
    }

    static let linkRate = 1.25e9  // bytes per second per link: 10 Gbit/s
    static let minimumStep = Duration.microseconds(20)

    private(set) var stats = Stats()
    private var engines: [TunnelEngine]
    private let linkCount: Int
    private var now: Duration = .zero
    /// Bytes written by a side on a link and not yet handed to the other side: [side][link].
    private var wire: [[ByteBuffer]]
    private var scratch: [ByteBuffer] = []
    private var timers: [Duration?] = [nil, nil]

    // The sending app (side 0).
    private let total: Int
    private let chunk: ByteBuffer
    private var stream = StreamID(0)
    private var sent = 0
    private var paused = false
    // The reading app (side 1).
    private var incoming: StreamID?
    private var received = 0
    private var unconsumed = 0
    private var remoteFinished = false
    private var failure: String?

    init(links: Int, bytes: Int, chunk: ByteBuffer) {
        linkCount = links
        total = bytes
        self.chunk = chunk
        engines = [
            TunnelEngine(options: .init(opensOddStreams: true), now: .zero),
            TunnelEngine(options: .init(opensOddStreams: false), now: .zero),
        ]
        wire = Array(repeating: [], count: 2 * links)
        for index in wire.indices { wire[index].reserveCapacity(64) }
        scratch.reserveCapacity(64)
        for link in 0..<links {
            for side in 0..<2 {
                apply(engines[side].linkUp(LinkID(UInt32(link)), now: now), side: side)
            }
        }
        let (id, actions) = engines[0].openStream(appName: "bench", now: now)
        stream = id
        apply(actions, side: 0)
    }

    mutating func run() {
        while !(remoteFinished && received == total) {
            precondition(failure == nil, failure!)
            stats.rounds += 1
            precondition(stats.rounds < 10_000_000, "the transfer does not finish")
            feed()
            var busiest = 0
            var moved = false
            for side in 0..<2 {
                for link in 0..<linkCount {
                    let bytes = deliver(from: side, link: link)
                    if bytes > 0 { moved = true }
                    busiest = max(busiest, bytes)
                }
            }
            let step = Duration.nanoseconds(Int64(Double(busiest) / Self.linkRate * 1e9))
            now += max(step, Self.minimumStep)
            var fired = false
            for side in 0..<2 {
                if let due = timers[side], due <= now {
                    timers[side] = nil
                    fired = true
                    call(side) { $0.timerFired(now: $1) }
                }
            }
            if !moved && !fired && (paused || sent == total) {
                // Nothing in flight: wait for the next timer.
                guard let next = timers.compactMap({ $0 }).min() else {
                    preconditionFailure("stuck: nothing in flight and no timer")
                }
                now = max(now, next)
            }
        }
    }

    /// Checks the outcome (outside the measured part).
    func verify() {
        precondition(failure == nil, failure ?? "")
        precondition(received == total && remoteFinished, "received \(received) of \(total)")
        precondition(stats.dataFrames >= total / (64 << 10))
    }

    /// The sending app writes while the engine lets it.
    private mutating func feed() {
        while !paused && sent < total {
            let size = min(chunk.readableBytes, total - sent)
            let buffer = size == chunk.readableBytes ? chunk : chunk.getSlice(at: chunk.readerIndex, length: size)!
            sent += size
            let id = stream
            call(0) { $0.send(buffer, on: id, now: $1) }
            if sent == total { call(0) { $0.finish(stream: id, now: $1) } }
        }
    }

    /// Hands everything side `side` wrote on `link` to the other side; returns the bytes.
    private mutating func deliver(from side: Int, link: Int) -> Int {
        let index = side * linkCount + link
        guard !wire[index].isEmpty else { return 0 }
        swap(&wire[index], &scratch)
        var bytes = 0
        let id = LinkID(UInt32(link))
        for buffer in scratch {
            bytes += buffer.readableBytes
            call(1 - side) { $0.received(buffer, on: id, now: $1) }
            if side == 0, unconsumed > 0, let incoming {
                // The reading app took what was delivered.
                let count = unconsumed
                unconsumed = 0
                call(1) { $0.consumed(count, on: incoming, now: $1) }
            }
        }
        scratch.removeAll(keepingCapacity: true)
        return bytes
    }

    private mutating func call(_ side: Int, _ body: (inout TunnelEngine, Duration) -> [TunnelAction]) {
        stats.engineCalls += 1
        let actions = body(&engines[side], now)
        apply(actions, side: side)
    }

    private mutating func apply(_ actions: [TunnelAction], side: Int) {
        for action in actions {
            switch action {
            case .write(let link, let buffer):
                countFrames(buffer)
                wire[side * linkCount + Int(link.rawValue)].append(buffer)
            case .deliver(_, let buffer):
                precondition(side == 1)
                received += buffer.readableBytes
                unconsumed += buffer.readableBytes
            case .incomingStream(let id, _, _, _, _):
                incoming = id
            case .remoteFinished:
                remoteFinished = true
            case .pauseReading:
                paused = true
            case .resumeReading:
                paused = false
            case .scheduleTimer(let at):
                timers[side] = at
            case .streamClosed:
                break
            case .closeLink(let link, let reason):
                failure = "side \(side) closed \(link): \(reason)"
            case .streamReset(let id, let code, let message):
                failure = "side \(side) reset \(id): \(code) \(message)"
            case .tunnelFailed(let reason):
                failure = "side \(side): tunnel failed: \(reason)"
            }
        }
    }

    /// Counts frames by their headers, without parsing (or allocating).
    private mutating func countFrames(_ buffer: ByteBuffer) {
        var index = buffer.readerIndex
        while index + TunnelFrameSerializer.headerLength <= buffer.writerIndex {
            let type: UInt8 = buffer.getInteger(at: index)!
            let length: UInt32 = buffer.getInteger(at: index + 2)!
            switch TunnelFrameType(rawValue: type) {
            case .streamData: stats.dataFrames += 1
            case .ack: stats.ackFrames += 1
            default: stats.otherFrames += 1
            }
            index += TunnelFrameSerializer.headerLength + Int(length)
        }
    }
}
