import NIOCore
import WeftWire

/// The rules of one relayed stream, as a value type: fed what the tunnel and the app's socket
/// do, it returns what to do. `StreamRelay` carries the actions out and decides nothing.
///
/// - Tunnel bytes are held until the app's socket is attached, then written; each completed
///   write gives its bytes' credit back (`consume`), so a slow app slows the peer.
/// - The app's EOF finishes the stream once; the peer's finish shuts the socket's output after
///   the last write.
/// - A clean socket close after the peer finished ends the app's direction too (the socket was
///   done both ways); any other close before both directions finished cancels the stream.
/// - Once the stream is reset or closed, nothing more flows: late socket events are ignored,
///   and a socket attached afterwards is aborted.
struct RelayStateMachine {
    enum Action: Equatable {
        case writeToApp(ByteBuffer)
        /// Shut the socket's output once every earlier write is done.
        case shutAppOutput
        case setReading(Bool)
        case sendToTunnel(ByteBuffer)
        case finishStream
        case consume(Int)
        case resetStream(StreamReset.Code, String)
        /// Close the socket with an RST.
        case abortSocket
        /// Close the socket once every earlier write is done.
        case closeSocket
    }

    private(set) var attached = false
    private(set) var ended = false
    private(set) var paused = false
    private(set) var appFinished = false
    private(set) var remoteFinished = false
    private var pending: [ByteBuffer] = []

    /// Bytes from the tunnel waiting for the socket.
    var pendingBytes: Int { pending.reduce(0) { $0 + $1.readableBytes } }

    // MARK: the socket

    mutating func socketAttached() -> [Action] {
        guard !ended else { return [.abortSocket] }
        attached = true
        var actions = pending.map(Action.writeToApp)
        pending.removeAll()
        if remoteFinished { actions.append(.shutAppOutput) }
        if !paused { actions.append(.setReading(true)) }
        return actions
    }

    mutating func socketFailed(_ reason: String) -> [Action] {
        guard !ended else { return [] }
        ended = true
        return [.resetStream(.appDown, reason)]
    }

    mutating func appRead(_ bytes: ByteBuffer) -> [Action] {
        guard !ended, !appFinished else { return [] }
        return [.sendToTunnel(bytes)]
    }

    mutating func appInputClosed() -> [Action] {
        guard !ended, !appFinished else { return [] }
        appFinished = true
        return [.finishStream]
    }

    mutating func appClosed(_ reason: String, clean: Bool) -> [Action] {
        attached = false
        guard !ended, !(appFinished && remoteFinished) else {
            ended = true
            return []
        }
        if clean && remoteFinished {
            appFinished = true
            return [.finishStream]
        }
        ended = true
        return [.resetStream(.cancelled, reason)]
    }

    mutating func writeCompleted(_ count: Int) -> [Action] {
        ended ? [] : [.consume(count)]
    }

    // MARK: the tunnel

    mutating func tunnelBytes(_ bytes: ByteBuffer) -> [Action] {
        guard !ended else { return [] }
        guard attached else {
            pending.append(bytes)
            return []
        }
        return [.writeToApp(bytes)]
    }

    mutating func remoteFinish() -> [Action] {
        guard !ended, !remoteFinished else { return [] }
        remoteFinished = true
        return attached ? [.shutAppOutput] : []
    }

    mutating func streamReset() -> [Action] {
        let wasAttached = attached
        ended = true
        attached = false
        pending.removeAll()
        return wasAttached ? [.abortSocket] : []
    }

    mutating func streamClosed() -> [Action] {
        let wasAttached = attached
        ended = true
        attached = false
        return wasAttached ? [.closeSocket] : []
    }

    mutating func pauseReading() -> [Action] {
        paused = true
        return attached ? [.setReading(false)] : []
    }

    mutating func resumeReading() -> [Action] {
        paused = false
        return attached ? [.setReading(true)] : []
    }
}
