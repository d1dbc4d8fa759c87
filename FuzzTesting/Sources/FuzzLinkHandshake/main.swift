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
//
// The acceptor is "lisbon" at incarnation 0xFEDC_BA98_7654_3210; the dialer is "berlin" at
// 0x0123_4567_89AB_CDEF, dialing lisbon (at that incarnation) for link 3. So a hello from
// berlin carrying the tunnel id of the two passes the acceptor's own checks, and a welcome from
// lisbon is what the dialer waits for.
//
// Checked, besides no crash:
// - the dialer's `start()` writes exactly one frame, its hello; the acceptor's writes nothing;
// - until the first frame is complete nothing happens; then the first frame alone decides (an
//   independent parser with the handshake's limits reads the same bytes): a parse error or a
//   frame out of turn fails; a hello that passes the acceptor's checks (version, not itself,
//   tunnel id) is `.decide`, any other is refused with a `refuse` frame; a welcome from the
//   expected peer establishes the dialer's link, any other fails; a refuse is `.refused`;
// - `.decide` only for an acceptor and only once; while it waits for the driver, bytes are
//   kept and nothing happens; `.refused` only for a dialer;
// - `.established`, `.refused` and `.failed` come last, once; after them every call gives no
//   action; `isFinished` says whether one came;
// - `.established` carries the peer, tunnel id and link id of the hello (acceptor) or of the
//   role (dialer), and as leftover exactly the bytes fed behind the hello or welcome: leftover
//   length = total fed - length of the handshake frame;
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
private let tunnelID = TunnelID(
    localSite: dialerSite, localIncarnation: dialerIncarnation, peerSite: acceptorSite,
    peerIncarnation: acceptorIncarnation)

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

    init(dialer: Bool) {
        isDialer = dialer
        handshake =
            dialer
            ? LinkHandshake(
                role: .dialer(peerSite: acceptorSite, peerIncarnation: acceptorIncarnation, linkID: dialerLinkID),
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
            let hello = LinkHello(
                minVersion: WireProtocol.version, maxVersion: WireProtocol.version, siteName: dialerSite,
                incarnation: dialerIncarnation, tunnelID: tunnelID.bytes, linkID: dialerLinkID, capabilities: 0)
            let frame = onlyFrame(bytes)
            precondition(frame == .hello(hello), "the dialer's hello is \(frame)")
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
        let acceptable =
            hello.minVersion <= WireProtocol.version && WireProtocol.version <= hello.maxVersion
            && hello.siteName != acceptorSite
            && hello.tunnelID
                == TunnelID(
                    localSite: acceptorSite, localIncarnation: acceptorIncarnation, peerSite: hello.siteName,
                    peerIncarnation: hello.incarnation
                ).bytes
        if acceptable {
            precondition(actions == [.decide(hello)], "an acceptable \(hello) gave \(actions)")
            pendingHello = hello
            return
        }
        guard actions.count == 2, case .write(let bytes) = actions[0], actions[1].isFailure else {
            preconditionFailure("an unacceptable \(hello) gave \(actions), not a refusal")
        }
        guard case .refuse(let refuse) = onlyFrame(bytes),
            [.unsupportedVersion, .protocolViolation, .unknownTunnel].contains(refuse.reason)
        else {
            preconditionFailure("an unacceptable \(hello) was answered with \(onlyFrame(bytes))")
        }
    }

    private mutating func dialerAnswer(_ frame: TunnelFrame, length: Int, _ actions: [LinkHandshake.Action]) {
        switch frame {
        case .welcome(let welcome)
        where welcome.version == WireProtocol.version && welcome.siteName == acceptorSite
            && welcome.incarnation == acceptorIncarnation:
            guard actions.count == 1, case .established(let established) = actions[0] else {
                preconditionFailure("\(welcome) gave \(actions)")
            }
            precondition(established.peerSite == acceptorSite, "established with \(established.peerSite)")
            precondition(established.peerIncarnation == acceptorIncarnation, "established at another incarnation")
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

    mutating func decide(refusing: Bool, reason: LinkRefuse.Reason) {
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
            let actions = handshake.accept()
            record("accept()", actions)
            guard actions.count == 2, case .write(let bytes) = actions[0],
                case .established(let established) = actions[1]
            else {
                preconditionFailure("accept gave \(actions)")
            }
            let welcome = LinkWelcome(
                version: WireProtocol.version, siteName: acceptorSite, incarnation: acceptorIncarnation,
                capabilities: 0)
            let frame = onlyFrame(bytes)
            precondition(frame == .welcome(welcome), "accept wrote \(frame)")
            precondition(established.peerSite == hello.siteName, "established with \(established.peerSite)")
            precondition(established.peerIncarnation == hello.incarnation, "established at another incarnation")
            precondition(established.tunnelID.bytes == hello.tunnelID, "established tunnel \(established.tunnelID)")
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
        record("accept() after the end", handshake.accept())
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

    var harness = Harness(dialer: header0 & 0x01 != 0)
    harness.start()
    let input = ByteBuffer(bytes: UnsafeBufferPointer(start: start + 2, count: count - 2))
    var offset = 0
    while offset < input.readableBytes {
        let length = min(chunkSize, input.readableBytes - offset)
        harness.receive(input.getSlice(at: input.readerIndex + offset, length: length)!)
        offset += length
        if harness.awaitingDecision && !decidesLate {
            harness.decide(refusing: refusing, reason: reason)
        }
    }
    harness.decide(refusing: refusing, reason: reason)
    if header0 & 0x08 != 0 { harness.timeOut() }
    harness.checkQuiet()
    return 0
}
