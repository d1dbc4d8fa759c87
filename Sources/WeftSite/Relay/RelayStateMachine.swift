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

    /// The socket's side of the relay.
    private enum Phase {
        /// No socket yet: bytes from the tunnel wait for it.
        case waiting(pending: [ByteBuffer])
        case attached
        /// The socket closed cleanly after the peer finished; the app's finish is on its way.
        case socketClosed
        /// Reset, closed, or the socket failed: nothing more flows.
        case ended
    }

    private var phase = Phase.waiting(pending: [])
    private(set) var paused = false
    private(set) var appFinished = false
    private(set) var remoteFinished = false

    var attached: Bool {
        if case .attached = phase { true } else { false }
    }

    var ended: Bool {
        if case .ended = phase { true } else { false }
    }

    /// Bytes from the tunnel waiting for the socket.
    var pendingBytes: Int {
        guard case .waiting(let pending) = phase else { return 0 }
        return pending.reduce(0) { $0 + $1.readableBytes }
    }

    // MARK: the socket

    mutating func socketAttached() -> [Action] {
        guard case .waiting(let pending) = phase else { return [.abortSocket] }
        phase = .attached
        var actions = pending.map(Action.writeToApp)
        if remoteFinished { actions.append(.shutAppOutput) }
        if !paused { actions.append(.setReading(true)) }
        return actions
    }

    mutating func socketFailed(_ reason: String) -> [Action] {
        guard !ended else { return [] }
        phase = .ended
        return [.resetStream(.appDown, reason)]
    }

    /// One action at most (no array to allocate: this runs once per read).
    mutating func appRead(_ bytes: ByteBuffer) -> Action? {
        guard !ended, !appFinished else { return nil }
        return .sendToTunnel(bytes)
    }

    mutating func appInputClosed() -> [Action] {
        guard !ended, !appFinished else { return [] }
        appFinished = true
        return [.finishStream]
    }

    mutating func appClosed(_ reason: String, clean: Bool) -> [Action] {
        guard !ended, !(appFinished && remoteFinished) else {
            phase = .ended
            return []
        }
        if clean && remoteFinished {
            phase = .socketClosed
            appFinished = true
            return [.finishStream]
        }
        phase = .ended
        return [.resetStream(.cancelled, reason)]
    }

    /// One action at most (no array: this runs once per write).
    mutating func writeCompleted(_ count: Int) -> Action? {
        ended ? nil : .consume(count)
    }

    // MARK: the tunnel

    /// One action at most (no array: this runs once per read from the tunnel).
    mutating func tunnelBytes(_ bytes: ByteBuffer) -> Action? {
        switch phase {
        case .waiting(var pending):
            // Out of the enum while it grows, so the array is not copied.
            phase = .ended
            pending.append(bytes)
            phase = .waiting(pending: pending)
            return nil
        case .attached:
            return .writeToApp(bytes)
        case .socketClosed, .ended:
            return nil
        }
    }

    mutating func remoteFinish() -> [Action] {
        guard !ended, !remoteFinished else { return [] }
        remoteFinished = true
        return attached ? [.shutAppOutput] : []
    }

    mutating func streamReset() -> [Action] {
        let wasAttached = attached
        phase = .ended
        return wasAttached ? [.abortSocket] : []
    }

    mutating func streamClosed() -> [Action] {
        let wasAttached = attached
        phase = .ended
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
