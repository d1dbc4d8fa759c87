// libFuzzer target: a hostile peer on a tunnel engine's link.
//
// Input layout: two header bytes, then the bytes the peer sends on link 1 (normally serialized
// frames; see Corpus/FuzzTunnelEngine).
//
//   byte 0: bits 0-5 chunk size - 1 (the peer's bytes arrive in chunks of 1...64)
//           bit 6    this side opens odd streams (so the peer opens even ones)
//           bit 7    a second link comes up that never says anything
//   byte 1: bits 0-3 the timer also fires every n + 1 chunks, due or not; and every
//                    3(n + 1) chunks link 1 turns full (the peer stops reading) or drains
//           bits 4-6 how far the clock moves per chunk (1 ms ... 2.1 s)
//           bit 7    this side opens a stream and sends on it before the peer speaks
//
// The driver here behaves like the real one: it carries out every action in order, echoes
// delivered bytes back (an echo app), gives credit back, finishes a stream when the peer did,
// fires the timer when it is due, and brings link 1 up again after the engine closes it.
// The engine must never crash, and what it does must stay consistent: every write parses as
// whole frames, nothing is written on a full link, and a stream is only delivered to between
// its opening and its end.

import NIOCore
import WeftTunnel
import WeftWire

#if canImport(Glibc)
    import Glibc
#endif

/// FUZZ_TRACE=1 prints every call and action (for reading a crash input).
private let trace = getenv("FUZZ_TRACE") != nil
/// FUZZ_IGNORE_FORGOTTEN_STREAMS=1 skips the check that the engine never drops a stream silently.
private let ignoreForgottenStreams = getenv("FUZZ_IGNORE_FORGOTTEN_STREAMS") != nil

/// Unbuffered, so the trace is complete when a precondition stops the process.
private func log(_ line: String) {
    var line = line + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

private let peerLink = LinkID(1)
private let silentLink = LinkID(2)
private let steps: [Duration] = [
    .milliseconds(1), .milliseconds(5), .milliseconds(20), .milliseconds(50),
    .milliseconds(100), .milliseconds(250), .milliseconds(600), .milliseconds(2100),
]

private struct Driver {
    var engine: TunnelEngine
    var now: Duration = .seconds(1000)
    var timer: Duration?
    /// Streams between their opening and their end, as the driver has been told.
    var liveStreams: Set<StreamID> = []
    var finishedStreams: Set<StreamID> = []
    /// Links the engine has not closed, and a parser for what the engine writes on each.
    var writeParsers: [LinkID: TunnelFrameParser] = [:]
    /// Links whose outbound buffer the driver reported full: the engine must not write there.
    var fullLinks: Set<LinkID> = []
    var failed = false
    let opensOddStreams: Bool
    /// How deep in answering actions with further calls the driver is.
    private var depth = 0

    init(opensOddStreams: Bool) {
        self.opensOddStreams = opensOddStreams
        engine = TunnelEngine(options: .init(opensOddStreams: opensOddStreams), now: now)
    }

    mutating func linkUp(_ id: LinkID) {
        writeParsers[id] = TunnelFrameParser()
        fullLinks.remove(id)
        run("linkUp(\(id))", engine.linkUp(id, now: now))
    }

    /// Carries out `actions` in order, and whatever the engine answers to them, depth first.
    mutating func run(_ call: @autoclosure () -> String, _ actions: [TunnelAction]) {
        if trace { log("\(now): \(call())") }
        depth += 1
        for action in actions {
            carryOut(action)
        }
        depth -= 1
        // Between events, every stream the driver serves is one the engine still has: an engine
        // that forgets a stream without a reset or close leaves the driver's app socket open.
        if depth == 0 && !ignoreForgottenStreams {
            precondition(
                liveStreams.count <= engine.openStreams,
                "the engine forgot a stream without telling: driver has \(liveStreams.sorted()), engine has "
                    + "\(engine.openStreams) streams"
            )
        }
    }

    private mutating func carryOut(_ action: TunnelAction) {
        if trace { log("  \(action)") }
        switch action {
        case .write(let link, let bytes):
            precondition(writeParsers[link] != nil, "write on \(link), which is not up")
            precondition(!fullLinks.contains(link), "write on \(link), which is full")
            writeParsers[link]!.append(bytes)
            do {
                while try writeParsers[link]!.nextFrame() != nil {}
            } catch {
                preconditionFailure("the engine wrote a malformed frame on \(link): \(error)")
            }
            precondition(writeParsers[link]!.bufferedBytes == 0, "the engine wrote part of a frame on \(link)")
        case .closeLink(let link, _):
            writeParsers[link] = nil
            fullLinks.remove(link)
        case .incomingStream(let id, _, _, _, _):
            precondition((id.rawValue % 2 == 1) != opensOddStreams, "incoming \(id) has this side's parity")
            precondition(liveStreams.insert(id).inserted, "\(id) opened twice")
        case .deliver(let id, let bytes):
            precondition(liveStreams.contains(id), "bytes delivered to \(id), which is not open")
            precondition(!finishedStreams.contains(id), "bytes delivered to \(id) after its end")
            precondition(bytes.readableBytes > 0, "an empty delivery to \(id)")
            run("send(\(bytes.readableBytes), on: \(id))", engine.send(bytes, on: id, now: now))
            run("consumed(\(bytes.readableBytes), on: \(id))", engine.consumed(bytes.readableBytes, on: id, now: now))
        case .remoteFinished(let id):
            precondition(liveStreams.contains(id), "\(id) finished, but it is not open")
            precondition(finishedStreams.insert(id).inserted, "\(id) finished twice")
            run("finish(\(id))", engine.finish(stream: id, now: now))
        case .streamReset(let id, _, _):
            // Also sent for a stream whose data came before its open (never announced): the
            // driver has nothing to end then.
            liveStreams.remove(id)
            finishedStreams.remove(id)
        case .streamClosed(let id):
            precondition(liveStreams.remove(id) != nil, "\(id) closed, but it is not open")
            finishedStreams.remove(id)
        case .pauseReading, .resumeReading:
            break
        case .scheduleTimer(let at):
            precondition(at >= now, "a timer in the past")
            timer = at
        case .tunnelFailed:
            precondition(!failed, "the tunnel failed twice")
            precondition(
                liveStreams.isEmpty || ignoreForgottenStreams, "the tunnel failed with streams left: \(liveStreams)")
            failed = true
            writeParsers.removeAll()
        }
    }

    mutating func openLocalStream() {
        let (id, actions) = engine.openStream(appName: "fuzz", now: now)
        liveStreams.insert(id)
        run("openStream -> \(id)", actions)
        run("send(3000, on: \(id))", engine.send(ByteBuffer(repeating: 0x5A, count: 3000), on: id, now: now))
        run("finish(\(id))", engine.finish(stream: id, now: now))
    }

    /// The peer stops reading link 1 (its buffer here fills), or starts again.
    mutating func toggleFull(_ id: LinkID) {
        guard writeParsers[id] != nil else { return }
        let full = fullLinks.insert(id).inserted
        if !full { fullLinks.remove(id) }
        run(
            "linkWritabilityChanged(\(id), writable: \(!full))",
            engine.linkWritabilityChanged(id, writable: !full, now: now))
    }

    mutating func advance(by step: Duration, fireAnyway: Bool) {
        now += step
        if fireAnyway || timer.map({ $0 <= now }) == true {
            run("timerFired", engine.timerFired(now: now))
        }
    }

    mutating func receive(_ bytes: ByteBuffer) {
        if writeParsers[peerLink] == nil && !failed {
            linkUp(peerLink)
        }
        run("received(\(bytes.readableBytes) bytes)", engine.received(bytes, on: peerLink, now: now))
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count >= 2 else { return 0 }
    let header0 = start[0]
    let header1 = start[1]
    let chunkSize = Int(header0 & 0x3F) + 1
    let timerEvery = Int(header1 & 0x0F) + 1
    let step = steps[Int((header1 >> 4) & 0x07)]

    var driver = Driver(opensOddStreams: header0 & 0x40 != 0)
    driver.linkUp(peerLink)
    if header0 & 0x80 != 0 { driver.linkUp(silentLink) }
    if header1 & 0x80 != 0 { driver.openLocalStream() }

    let input = ByteBuffer(bytes: UnsafeBufferPointer(start: start + 2, count: count - 2))
    var chunkIndex = 0
    var offset = 0
    while offset < input.readableBytes {
        let length = min(chunkSize, input.readableBytes - offset)
        driver.receive(input.getSlice(at: input.readerIndex + offset, length: length)!)
        offset += length
        chunkIndex += 1
        driver.advance(by: step, fireAnyway: chunkIndex % timerEvery == 0)
        if chunkIndex % (3 * timerEvery) == 0 { driver.toggleFull(peerLink) }
    }
    // The peer falls silent: links time out, the tunnel runs out of grace.
    for _ in 0..<4 {
        driver.advance(by: .seconds(20), fireAnyway: true)
    }
    return 0
}
