// libFuzzer target: the link handshake (`LinkHandshake`), from either side, against a peer that
// sends anything.
//
// Input layout: two header bytes, then the bytes the peer sends (normally a handshake frame,
// perhaps followed by tunnel frames; see Corpus/FuzzLinkHandshake).
//
//   byte 0: bit 0    this side dials (else it accepts)
//           bit 1    acceptor: the driver refuses the hello (else it accepts)
//           bit 2    acceptor: the driver decides only after all the input has arrived (else as
//                    soon as it is asked)
//           bit 3    the handshake timer fires after the input
//           bits 4-6 acceptor: the code of the driver's refusal reason (0...7, unknown ones too)
//   byte 1: bits 0-5 chunk size - 1 (the peer's bytes arrive in chunks of 1...64)
//           bits 6-7 acceptor: how the driver accepts: 0 `accept(incarnation:)` with the
//                    half the acceptor was made with; `accept(incarnation:)` with 1 the half the hello requested
//                    (joining the tunnel it names; 0 for a new one, which is refused), 2 a fresh
//                    half (`freshIncarnation`, as for a new tunnel), 3 the last 8 bytes of the
//                    input, big-endian (any value, 0 and the requested half too)
//           bit 6    dialer: it names lisbon's half as `unknownIncarnation` (a new tunnel; else
//                    it knows lisbon's incarnation)
//
// The acceptor is "lisbon" at incarnation 0xFEDC_BA98_7654_3210; the dialer is "berlin" at
// 0x0123_4567_89AB_CDEF, dialing lisbon (at that incarnation, or unknown) for link 3.
// Incarnations are per tunnel: a hello's tunnel id holds the dialer's half (its incarnation)
// and the acceptor half it asks to join (0: a new tunnel), so a hello from berlin passes the
// acceptor's own checks whatever lisbon half it names; which half is the driver's to say.
//
// Checked, besides no crash:
// - the dialer's `start()` writes exactly one frame, its hello, whose tunnel id holds the
//   lisbon half it was given (0 for a new tunnel); the acceptor's writes nothing;
// - until the first frame is complete nothing happens; then the first frame alone decides (an
//   independent parser with the handshake's limits reads the same bytes): a parse error or a
//   frame out of turn fails; a hello that passes the acceptor's checks (version, not itself, a
//   non-zero incarnation that the tunnel id holds as the dialer's half) is `.decide`, any other
//   is refused with a `refuse` frame (`unsupportedVersion` for the version, else
//   `protocolViolation`); `LinkHandshake.requestedIncarnation` gives the acceptor half of the
//   tunnel id exactly when the dialer's half is the hello's incarnation; a welcome from lisbon
//   at a non-zero incarnation (the known one, if the dialer knew one) establishes the dialer's
//   link, any other fails; a refuse is `.refused`;
// - `.decide` only for an acceptor and only once; while it waits for the driver, bytes are
//   kept and nothing happens; `.refused` only for a dialer;
// - the driver's accept, with half `own` (the chosen one, else the machine's), welcomes at
//   `own` if `own` is not 0 and the hello asked for a new tunnel or for `own`; otherwise it
//   refuses with `unknownTunnel`;
// - `.established`, `.refused` and `.failed` come last, once; after them every call gives no
//   action; `isFinished` says whether one came;
// - `.established` carries the peer, both halves (the local one as `localIncarnation`), the
//   tunnel id made of them, the version and the link id, and as leftover exactly the bytes fed
//   behind the hello or welcome: leftover length = total fed - length of the handshake frame;
// - every write is exactly one whole frame: welcome, or refuse with the driver's reason;
// - the timer fails an unfinished handshake and does nothing to a finished one.

import NIOCore
import WeftTunnel
import WeftWire

#if canImport(Glibc)
    import Glibc
#endif

/// FUZZ_TRACE=1 prints every call and action (for reading a crash input).
private let trace = getenv("FUZZ_TRACE") != nil

/// Unbuffered, so the trace is complete when a precondition stops the process.
private func log(_ line: String) {
    var line = line + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

private let acceptorSite = "lisbon"
private let acceptorIncarnation: UInt64 = 0xFEDC_BA98_7654_3210
private let dialerSite = "berlin"
private let dialerIncarnation: UInt64 = 0x0123_4567_89AB_CDEF
private let dialerLinkID: UInt32 = 3
/// The half an acceptor's driver makes for a new tunnel (byte 1, bits 6-7 = 2).
private let freshIncarnation: UInt64 = 0x0F1E_2D3C_4B5A_6978

/// How the acceptor's driver accepts (byte 1, bits 6-7).
private enum Acceptance {
    /// `accept(incarnation:)` with the half the acceptor was made with.
    case own
    /// `accept(incarnation:)` with the half the hello requested.
    case requested
    /// `accept(incarnation:)` with this half.
    case chosen(UInt64)
}

/// The acceptor half that the hello's tunnel id names, read without `LinkHandshake`: the half
/// that, with the hello's incarnation as the dialer's, makes the tunnel id; nil if neither half
/// of the id does (the tunnel id does not hold the dialer's incarnation).
private func requestedHalf(of hello: LinkHello) -> UInt64? {
    let id = hello.tunnelID
    let halves = [id.prefix(8), id.dropFirst(8)].map { $0.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
    return halves.first {
        TunnelID(
            localSite: acceptorSite, localIncarnation: $0, peerSite: hello.siteName, peerIncarnation: hello.incarnation
        ).bytes == id
    }
}

/// The one whole frame in `bytes`, or a precondition failure.
private func onlyFrame(_ bytes: ByteBuffer) -> TunnelFrame {
    var parser = TunnelFrameParser()
    parser.append(bytes)
    let frame: TunnelFrame?
    do {
        frame = try parser.nextFrame()
    } catch {
        preconditionFailure("the handshake wrote a malformed frame: \(error)")
    }
    guard let frame else { preconditionFailure("the handshake wrote part of a frame: \(bytes.readableBytes) bytes") }
    precondition(
        parser.bufferedBytes == 0, "the handshake wrote more than one frame: \(parser.bufferedBytes) more bytes")
    return frame
}

extension LinkHandshake.Action {
    fileprivate var isTerminal: Bool {
        switch self {
        case .established, .refused, .failed: true
        case .write, .decide: false
        }
    }

    fileprivate var isFailure: Bool {
        if case .failed = self { return true }
        return false
    }
}

private struct Harness {
    var handshake: LinkHandshake
    let isDialer: Bool
    /// Dialer: the lisbon half it names (`unknownIncarnation` for a new tunnel).
    let peerIncarnation: UInt64
    /// Everything handed to `received`, in order.
    var fed = ByteBuffer()
    /// Reads the same bytes as the handshake, up to its first frame.
    var oracle = TunnelFrameParser(limits: LinkHandshake.limits)
    /// The length of the first frame, once it is complete.
    var handshakeFrameLength: Int?
    /// The hello of `.decide`, until the driver answers.
    var pendingHello: LinkHello?
    var decided = false
    var finished = false

    init(dialer: Bool, knowsPeer: Bool) {
        isDialer = dialer
        peerIncarnation = knowsPeer ? acceptorIncarnation : LinkHandshake.unknownIncarnation
        handshake =
            dialer
            ? LinkHandshake(
                role: .dialer(peerSite: acceptorSite, peerIncarnation: peerIncarnation, linkID: dialerLinkID),
                siteName: dialerSite, incarnation: dialerIncarnation)
            : LinkHandshake(role: .acceptor, siteName: acceptorSite, incarnation: acceptorIncarnation)
    }

    /// The checks every call's actions pass, whatever the call.
    mutating func record(_ call: String, _ actions: [LinkHandshake.Action]) {
        if trace {
            log("\(call)")
            for action in actions { log("  \(action)") }
        }
        if finished {
            precondition(actions.isEmpty, "\(call) after the end gave \(actions)")
        }
        for (index, action) in actions.enumerated() {
            switch action {
            case .decide:
                precondition(!isDialer, "a dialer was asked to decide")
                precondition(!decided, "asked to decide twice")
                decided = true
            case .refused:
                precondition(isDialer, "an acceptor was refused")
            case .write, .established, .failed:
                break
            }
            if action.isTerminal {
                precondition(index == actions.count - 1, "\(action) is not the last action of \(call): \(actions)")
                finished = true
            }
        }
        precondition(
            handshake.isFinished == finished,
            "isFinished is \(handshake.isFinished) after \(call), which gave \(actions)")
    }

    mutating func start() {
        let actions = handshake.start()
        record("start()", actions)
        if isDialer {
            guard actions.count == 1, case .write(let bytes) = actions[0] else {
                preconditionFailure("the dialer's start gave \(actions)")
            }
            let tunnelID = TunnelID(
                localSite: dialerSite, localIncarnation: dialerIncarnation, peerSite: acceptorSite,
                peerIncarnation: peerIncarnation)
            let hello = LinkHello(
                minVersion: WireProtocol.version, maxVersion: WireProtocol.version, siteName: dialerSite,
                incarnation: dialerIncarnation, tunnelID: tunnelID.bytes, linkID: dialerLinkID,
                capabilities: LinkHello.linkPolicyFrames | LinkHello.streamOrigins | LinkHello.datagramStreams)
            let frame = onlyFrame(bytes)
            precondition(frame == .hello(hello), "the dialer's hello is \(frame)")
            precondition(requestedHalf(of: hello) == peerIncarnation, "the dialer's hello asks for another half")
        } else {
            precondition(actions.isEmpty, "the acceptor's start gave \(actions)")
        }
        let again = handshake.start()
        record("start() again", again)
        precondition(again.isEmpty, "start() twice gave \(again)")
    }

    mutating func receive(_ chunk: ByteBuffer) {
        fed.writeImmutableBuffer(chunk)
        let beforeFirstFrame = handshakeFrameLength == nil && !finished
        let actions = handshake.received(chunk)
        record("received(\(chunk.readableBytes) bytes, \(fed.readableBytes) in all)", actions)
        guard beforeFirstFrame else {
            // Behind the hello, waiting for the driver, or finished: nothing happens.
            precondition(actions.isEmpty, "bytes behind the handshake frame gave \(actions)")
            return
        }
        oracle.append(chunk)
        let frame: TunnelFrame?
        do {
            frame = try oracle.nextFrame()
        } catch {
            precondition(actions.count == 1 && actions[0].isFailure, "\(error) gave \(actions), not a failure")
            return
        }
        guard let frame else {
            precondition(actions.isEmpty, "an incomplete frame gave \(actions)")
            return
        }
        let length = fed.readableBytes - oracle.bufferedBytes
        handshakeFrameLength = length
        if isDialer {
            dialerAnswer(frame, length: length, actions)
        } else {
            acceptorAnswer(frame, actions)
        }
    }

    private mutating func acceptorAnswer(_ frame: TunnelFrame, _ actions: [LinkHandshake.Action]) {
        guard case .hello(let hello) = frame else {
            precondition(actions.count == 1 && actions[0].isFailure, "\(frame) instead of a hello gave \(actions)")
            return
        }
        let requested = requestedHalf(of: hello)
        let asked = LinkHandshake.requestedIncarnation(in: hello, acceptor: acceptorSite)
        precondition(asked == requested, "requestedIncarnation gave \(asked as Any), not \(requested as Any)")
        let versionSpoken = hello.minVersion <= WireProtocol.version && WireProtocol.version <= hello.maxVersion
        let acceptable =
            versionSpoken && hello.siteName != acceptorSite
            && hello.incarnation != LinkHandshake.unknownIncarnation && requested != nil
        if acceptable {
            precondition(actions == [.decide(hello)], "an acceptable \(hello) gave \(actions)")
            pendingHello = hello
            return
        }
        guard actions.count == 2, case .write(let bytes) = actions[0], actions[1].isFailure else {
            preconditionFailure("an unacceptable \(hello) gave \(actions), not a refusal")
        }
        let reason: LinkRefuse.Reason = versionSpoken ? .protocolViolation : .unsupportedVersion
        guard case .refuse(let refuse) = onlyFrame(bytes), refuse.reason == reason else {
            preconditionFailure("an unacceptable \(hello) was answered with \(onlyFrame(bytes)), not \(reason)")
        }
    }

    private mutating func dialerAnswer(_ frame: TunnelFrame, length: Int, _ actions: [LinkHandshake.Action]) {
        switch frame {
        case .welcome(let welcome)
        where welcome.version == WireProtocol.version && welcome.siteName == acceptorSite
            && welcome.incarnation != LinkHandshake.unknownIncarnation
            && (peerIncarnation == LinkHandshake.unknownIncarnation || welcome.incarnation == peerIncarnation):
            guard actions.count == 1, case .established(let established) = actions[0] else {
                preconditionFailure("\(welcome) gave \(actions)")
            }
            let tunnelID = TunnelID(
                localSite: dialerSite, localIncarnation: dialerIncarnation, peerSite: acceptorSite,
                peerIncarnation: welcome.incarnation)
            precondition(established.peerSite == acceptorSite, "established with \(established.peerSite)")
            precondition(
                established.peerIncarnation == welcome.incarnation,
                "established at \(established.peerIncarnation), welcomed at \(welcome.incarnation)")
            precondition(
                established.localIncarnation == dialerIncarnation, "established as \(established.localIncarnation)")
            precondition(established.tunnelID == tunnelID, "established tunnel \(established.tunnelID)")
            precondition(established.linkID == dialerLinkID, "established link \(established.linkID)")
            precondition(established.version == welcome.version, "established version \(established.version)")
            checkLeftover(established.leftover, behind: length)
        case .refuse(let refuse):
            precondition(actions == [.refused(refuse)], "\(refuse) gave \(actions)")
        default:
            precondition(actions.count == 1 && actions[0].isFailure, "\(frame) gave \(actions), not a failure")
        }
    }

    /// The leftover is exactly what was fed behind the handshake frame.
    private func checkLeftover(_ leftover: ByteBuffer, behind frameLength: Int) {
        precondition(
            leftover.readableBytes == fed.readableBytes - frameLength,
            "leftover of \(leftover.readableBytes) bytes, but \(fed.readableBytes) fed and a frame of \(frameLength)")
        precondition(
            leftover.readableBytesView.elementsEqual(fed.readableBytesView.dropFirst(frameLength)),
            "the leftover is not the bytes fed behind the handshake frame")
    }

    var awaitingDecision: Bool { pendingHello != nil && !finished }

    mutating func decide(refusing: Bool, reason: LinkRefuse.Reason, acceptance: Acceptance) {
        guard let hello = pendingHello, let length = handshakeFrameLength else { return }
        pendingHello = nil
        if refusing {
            let message = "the driver says no"
            let actions = handshake.refuse(reason, message: message)
            record("refuse(\(reason))", actions)
            guard actions.count == 2, case .write(let bytes) = actions[0], actions[1].isFailure else {
                preconditionFailure("refuse gave \(actions)")
            }
            let frame = onlyFrame(bytes)
            precondition(frame == .refuse(LinkRefuse(reason: reason, message: message)), "refuse wrote \(frame)")
        } else {
            // `.decide` came only for a hello whose tunnel id holds the dialer's half.
            guard let requested = requestedHalf(of: hello) else { preconditionFailure("decided on \(hello)") }
            let chosen: UInt64?
            let actions: [LinkHandshake.Action]
            switch acceptance {
            case .own:
                chosen = nil
                actions = handshake.accept(incarnation: acceptorIncarnation)
            case .requested:
                chosen = requested
                actions = handshake.accept(incarnation: requested)
            case .chosen(let value):
                chosen = value
                actions = handshake.accept(incarnation: value)
            }
            record(chosen.map { "accept(incarnation: \($0))" } ?? "accept(incarnation: own)", actions)
            let own = chosen ?? acceptorIncarnation
            let unknown = LinkHandshake.unknownIncarnation
            guard own != unknown && (requested == unknown || requested == own) else {
                // The hello named a half this side does not join it to (or the driver chose none).
                guard actions.count == 2, case .write(let bytes) = actions[0], actions[1].isFailure else {
                    preconditionFailure("accept at \(own) of a hello asking for \(requested) gave \(actions)")
                }
                guard case .refuse(let refuse) = onlyFrame(bytes), refuse.reason == .unknownTunnel else {
                    preconditionFailure("accept at \(own) of a hello asking for \(requested) wrote \(onlyFrame(bytes))")
                }
                return
            }
            guard actions.count == 2, case .write(let bytes) = actions[0],
                case .established(let established) = actions[1]
            else {
                preconditionFailure("accept at \(own) of a hello asking for \(requested) gave \(actions)")
            }
            let welcome = LinkWelcome(
                version: WireProtocol.version, siteName: acceptorSite, incarnation: own,
                capabilities: LinkHello.linkPolicyFrames | LinkHello.streamOrigins | LinkHello.datagramStreams)
            let frame = onlyFrame(bytes)
            precondition(frame == .welcome(welcome), "accept wrote \(frame)")
            let tunnelID = TunnelID(
                localSite: acceptorSite, localIncarnation: own, peerSite: hello.siteName,
                peerIncarnation: hello.incarnation)
            precondition(established.peerSite == hello.siteName, "established with \(established.peerSite)")
            precondition(established.peerIncarnation == hello.incarnation, "established at another incarnation")
            precondition(established.localIncarnation == own, "established as \(established.localIncarnation)")
            precondition(established.tunnelID == tunnelID, "established tunnel \(established.tunnelID)")
            // Joining the tunnel the hello named: the same id as the hello's.
            precondition(
                requested == unknown || established.tunnelID.bytes == hello.tunnelID,
                "established tunnel \(established.tunnelID), not the hello's")
            precondition(established.linkID == hello.linkID, "established link \(established.linkID)")
            precondition(established.version == WireProtocol.version, "established version \(established.version)")
            checkLeftover(established.leftover, behind: length)
        }
    }

    mutating func timeOut() {
        let wasFinished = finished
        let actions = handshake.timedOut()
        record("timedOut()", actions)
        if !wasFinished {
            precondition(actions.count == 1 && actions[0].isFailure, "a timeout gave \(actions)")
        }
    }

    /// After the end, every call gives nothing.
    mutating func checkQuiet() {
        guard finished else { return }
        record("received(hello) after the end", handshake.received(ByteBuffer(bytes: [0x01, 0, 0, 0, 0, 0])))
        record("timedOut() after the end", handshake.timedOut())
        record("accept(incarnation:) after the end", handshake.accept(incarnation: acceptorIncarnation))
        record("refuse() after the end", handshake.refuse(.shuttingDown, message: "late"))
        record("start() after the end", handshake.start())
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count >= 2 else { return 0 }
    let header0 = start[0]
    let header1 = start[1]
    let refusing = header0 & 0x02 != 0
    let decidesLate = header0 & 0x04 != 0
    let reason = LinkRefuse.Reason(code: UInt16((header0 >> 4) & 0x07))
    let chunkSize = Int(header1 & 0x3F) + 1
    let input = ByteBuffer(bytes: UnsafeBufferPointer(start: start + 2, count: count - 2))
    let acceptance: Acceptance
    switch header1 >> 6 {
    case 0: acceptance = .own
    case 1: acceptance = .requested
    case 2: acceptance = .chosen(freshIncarnation)
    default: acceptance = .chosen(input.readableBytesView.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    var harness = Harness(dialer: header0 & 0x01 != 0, knowsPeer: header1 & 0x40 == 0)
    harness.start()
    var offset = 0
    while offset < input.readableBytes {
        let length = min(chunkSize, input.readableBytes - offset)
        harness.receive(input.getSlice(at: input.readerIndex + offset, length: length)!)
        offset += length
        if harness.awaitingDecision && !decidesLate {
            harness.decide(refusing: refusing, reason: reason, acceptance: acceptance)
        }
    }
    harness.decide(refusing: refusing, reason: reason, acceptance: acceptance)
    if header0 & 0x08 != 0 { harness.timeOut() }
    harness.checkQuiet()
    return 0
}
