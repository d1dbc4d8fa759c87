import Foundation
import NIOCore
import Testing
import WeftTunnel
import WeftWire

/// A deterministic network for two tunnel engines: links with a rate, a one-way delay and a
/// queue, which can be cut and restored, all on a virtual clock. Apps at both ends move
/// patterned bytes and check every byte that arrives.
struct NetworkSimulator {
    struct Link {
        var rate: Double  // bytes per second
        var delay: Duration
        var up = true
        /// Per direction (0: A→B, 1: B→A): when the wire is free again.
        var busyUntil: [Duration] = [.zero, .zero]
        /// Bumped on every cut, so bytes sent before a cut never arrive after a restore.
        var epoch = 0
    }

    enum Event {
        case arrive(side: Int, link: Int, epoch: Int, bytes: ByteBuffer)
        case timer(side: Int, at: Duration)
        case linkDown(side: Int, link: Int)
    }

    var now: Duration = .zero
    var links: [Link]
    var engines: [TunnelEngine]
    private var events: [(time: Duration, order: Int, event: Event)] = []
    private var order = 0
    private var timers: [Duration?] = [nil, nil]

    // The apps.
    var toSend: [Int: Int] = [:]  // stream → bytes left to send (side 0 sends)
    var sentOffset: [Int: Int] = [:]
    var paused: Set<Int> = []
    var received: [Int: Int] = [:]  // stream → bytes received in order at side 1
    var finished: Set<Int> = []
    var finishTimes: [Int: Duration] = [:]
    var resets: [(side: Int, stream: StreamID, code: StreamReset.Code)] = []
    var errors: [String] = []
    /// The longest time no byte arrived at the receiver while a transfer was running.
    var longestStall: Duration = .zero
    var lastDelivery: Duration = .zero
    var streamIDs: [StreamID] = []
    /// Streams whose reading app at side 1 has stopped taking bytes, and what it holds.
    var stalledReaders: Set<Int> = []
    var unconsumed: [Int: Int] = [:]
    /// Streams left out of `allDone` (a stalled reader's stream, say).
    var ignoredForDone: Set<Int> = []

    init(links: [Link], configuration: TunnelConfiguration = .init(), backup: Set<Int> = []) {
        self.links = links
        engines = [
            TunnelEngine(options: .init(configuration: configuration, opensOddStreams: true), now: .zero),
            TunnelEngine(options: .init(configuration: configuration, opensOddStreams: false), now: .zero),
        ]
        for index in links.indices {
            for side in 0..<2 {
                apply(
                    engines[side].linkUp(
                        LinkID(UInt32(index)), now: now, backup: backup.contains(index),
                        peerCapabilities: LinkHello.linkPolicyFrames),
                    side: side)
            }
        }
    }

    /// Bytes side 0 has had acknowledged on each link.
    var deliveredPerLink: [Int] {
        let statistics = engines[0].linkStatistics
        return links.indices.map { index in
            statistics.first { $0.id == LinkID(UInt32(index)) }?.deliveredBytes ?? 0
        }
    }

    /// Stream bytes follow a pattern with a prime period longer than any chunk, so a byte out
    /// of place, lost or doubled shows; chunks are copied and compared as whole slices.
    static let period = 65_537
    static let table: [UInt8] = (0..<(2 * period)).map {
        UInt8(truncatingIfNeeded: ($0 % period) &* 7 &+ ($0 % period) >> 9)
    }

    static func patternStart(stream: Int, offset: Int) -> Int {
        (offset + stream * 977) % period
    }

    /// Side 0 opens `count` streams of `bytes` each to side 1.
    mutating func startTransfer(streams count: Int, bytes: Int) {
        startTransfer(sizes: Array(repeating: bytes, count: count))
    }

    /// Side 0 opens one stream per size to side 1.
    mutating func startTransfer(sizes: [Int]) {
        for bytes in sizes {
            let (id, actions) = engines[0].openStream(appName: "app", now: now)
            streamIDs.append(id)
            toSend[Int(id.rawValue)] = bytes
            sentOffset[Int(id.rawValue)] = 0
            apply(actions, side: 0)
        }
        lastDelivery = now
        for id in streamIDs { feed(Int(id.rawValue)) }
    }

    /// The sending app writes while the engine lets it.
    mutating func feed(_ stream: Int) {
        while let left = toSend[stream], left > 0, !paused.contains(stream) {
            let size = min(left, 64 << 10)
            let offset = sentOffset[stream]!
            let start = Self.patternStart(stream: stream, offset: offset)
            let buffer = ByteBuffer(bytes: Self.table[start..<(start + size)])
            toSend[stream] = left - size
            sentOffset[stream] = offset + size
            let actions = engines[0].send(buffer, on: StreamID(UInt32(stream)), now: now)
            apply(actions, side: 0)
            if toSend[stream] == 0 {
                apply(engines[0].finish(stream: StreamID(UInt32(stream)), now: now), side: 0)
            }
        }
    }

    mutating func cut(_ link: Int) {
        links[link].up = false
        links[link].epoch += 1
    }

    /// One side closes the link's connection (the other side notices after the delay), and a
    /// new connection with a fresh id and the same shape takes its place.
    mutating func replace(_ link: Int, closedBy side: Int) {
        let shape = links[link]
        links[link].up = false
        links[link].epoch += 1
        apply(engines[side].linkDown(LinkID(UInt32(link)), now: now), side: side)
        schedule(now + shape.delay, .linkDown(side: 1 - side, link: link))
        links.append(Link(rate: shape.rate, delay: shape.delay, busyUntil: [now, now]))
        let fresh = links.count - 1
        for side in 0..<2 {
            apply(engines[side].linkUp(LinkID(UInt32(fresh)), now: now), side: side)
        }
    }

    /// The link stops moving bytes for a while, in both directions, and loses none.
    mutating func stall(_ link: Int, for duration: Duration) {
        for side in 0..<2 { links[link].busyUntil[side] = max(links[link].busyUntil[side], now) + duration }
    }

    /// The reading app at side 1 starts or stops taking a stream's bytes.
    mutating func setReaderStalled(_ stream: Int, _ stalled: Bool) {
        if stalled {
            stalledReaders.insert(stream)
        } else if stalledReaders.remove(stream) != nil, let held = unconsumed.removeValue(forKey: stream) {
            apply(engines[1].consumed(held, on: StreamID(UInt32(stream)), now: now), side: 1)
        }
    }

    mutating func restore(_ link: Int) {
        links[link].up = true
        links[link].busyUntil = [now, now]
        for side in 0..<2 {
            apply(engines[side].linkUp(LinkID(UInt32(link)), now: now), side: side)
        }
    }

    private mutating func schedule(_ time: Duration, _ event: Event) {
        order += 1
        let entry = (time: time, order: order, event: event)
        let index = events.firstIndex { ($0.time, $0.order) > (time, order) } ?? events.endIndex
        events.insert(entry, at: index)
    }

    mutating func apply(_ actions: [TunnelAction], side: Int) {
        for action in actions {
            switch action {
            case .write(let link, let bytes):
                transmit(bytes, from: side, link: Int(link.rawValue))
            case .closeLink(let link, _):
                // The other end sees the connection drop after the bytes already sent (as TCP would).
                let index = Int(link.rawValue)
                let drained = max(now, links[index].busyUntil[side])
                schedule(drained + links[index].delay, .linkDown(side: 1 - side, link: index))
            case .scheduleTimer(let at):
                timers[side] = at
                schedule(at, .timer(side: side, at: at))
            case .incomingStream:
                break
            case .deliver(let stream, let bytes):
                deliver(bytes, stream: Int(stream.rawValue), side: side)
            case .remoteFinished(let stream):
                if side == 1 {
                    finished.insert(Int(stream.rawValue))
                    finishTimes[Int(stream.rawValue)] = now
                    apply(engines[1].finish(stream: stream, now: now), side: 1)
                }
            case .streamReset(let stream, let code, _):
                resets.append((side, stream, code))
            case .streamClosed:
                break
            case .pauseReading(let stream):
                paused.insert(Int(stream.rawValue))
            case .resumeReading(let stream):
                paused.remove(Int(stream.rawValue))
                if side == 0 { feed(Int(stream.rawValue)) }
            case .tunnelFailed(let reason):
                errors.append("tunnel failed at side \(side): \(reason)")
            }
        }
    }

    private mutating func deliver(_ bytes: ByteBuffer, stream: Int, side: Int) {
        guard side == 1 else { return }
        let offset = received[stream, default: 0]
        // A delivered chunk may span many frames (held pieces are joined): compare it a period
        // at a time against the repeating pattern.
        let matches = bytes.withUnsafeReadableBytes { received in
            var checked = 0
            while checked < received.count {
                let start = Self.patternStart(stream: stream, offset: offset + checked)
                let length = min(received.count - checked, Self.period)
                let same = Self.table[start..<(start + length)].withUnsafeBytes { expected in
                    memcmp(received.baseAddress! + checked, expected.baseAddress!, length) == 0
                }
                guard same else { return false }
                checked += length
            }
            return true
        }
        if !matches {
            errors.append("stream \(stream): wrong bytes at offsets \(offset)..<\(offset + bytes.readableBytes)")
        }
        received[stream] = offset + bytes.readableBytes
        longestStall = max(longestStall, now - lastDelivery)
        lastDelivery = now
        if stalledReaders.contains(stream) {
            unconsumed[stream, default: 0] += bytes.readableBytes
            return
        }
        apply(engines[1].consumed(bytes.readableBytes, on: StreamID(UInt32(stream)), now: now), side: 1)
    }

    /// Bytes leave in segments, each after the previous one on the same wire.
    private mutating func transmit(_ bytes: ByteBuffer, from side: Int, link index: Int) {
        guard links[index].up else { return }
        var remaining = bytes
        while remaining.readableBytes > 0 {
            let segment = remaining.readSlice(length: min(remaining.readableBytes, 16 << 10))!
            let start = max(now, links[index].busyUntil[side])
            let done = start + .nanoseconds(Int64(Double(segment.readableBytes) / links[index].rate * 1e9))
            links[index].busyUntil[side] = done
            schedule(
                done + links[index].delay,
                .arrive(side: 1 - side, link: index, epoch: links[index].epoch, bytes: segment)
            )
        }
    }

    /// Runs until `until`, or until every transfer is finished.
    mutating func run(until limit: Duration, stopWhenDone: Bool = true) {
        while let next = events.first, next.time <= limit {
            events.removeFirst()
            now = next.time
            switch next.event {
            case .arrive(let side, let link, let epoch, let bytes):
                guard links[link].up, links[link].epoch == epoch else { continue }
                apply(engines[side].received(bytes, on: LinkID(UInt32(link)), now: now), side: side)
            case .timer(let side, let at):
                guard timers[side] == at else { continue }
                timers[side] = nil
                apply(engines[side].timerFired(now: now), side: side)
            case .linkDown(let side, let link):
                apply(engines[side].linkDown(LinkID(UInt32(link)), now: now), side: side)
            }
            if stopWhenDone && allDone { return }
        }
        now = max(now, limit)
    }

    var allDone: Bool {
        !streamIDs.isEmpty
            && streamIDs.allSatisfy { finished.contains(Int($0.rawValue)) || ignoredForDone.contains(Int($0.rawValue)) }
    }

    var totalReceived: Int { received.values.reduce(0, +) }
}

/// A failed expectation names the simulator by its state in a line, not by a dump of both engines.
extension NetworkSimulator: CustomTestStringConvertible {
    var testDescription: String {
        "simulator at \(now): \(totalReceived) B received, \(finished.count)/\(streamIDs.count) streams done, links up \(links.map(\.up))"
    }
}
