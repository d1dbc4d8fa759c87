import NIOCore
import Testing
import WeftWire

@testable import WeftSite

@Suite("relay rules: one stream between the tunnel and an app socket", .timeLimit(.minutes(10)))
struct RelayStateMachineTests {
    let a = ByteBuffer(string: "a")
    let b = ByteBuffer(string: "bb")

    @Test("tunnel bytes wait for the socket, then go out in order with what the peer said")
    func pendingUntilAttached() {
        var relay = RelayStateMachine()
        #expect(relay.tunnelBytes(a) == nil)
        #expect(relay.tunnelBytes(b) == nil)
        #expect(relay.remoteFinish().isEmpty)
        #expect(relay.pendingBytes == 3)
        #expect(relay.socketAttached() == [.writeToApp(a), .writeToApp(b), .shutAppOutput, .setReading(true)])
        #expect(relay.pendingBytes == 0)
        #expect(relay.writeCompleted(1) == .consume(1))
    }

    @Test("a pause before the socket is attached keeps it from reading")
    func pausedBeforeAttach() {
        var relay = RelayStateMachine()
        #expect(relay.pauseReading().isEmpty)
        #expect(relay.socketAttached().isEmpty)
        #expect(relay.resumeReading() == [.setReading(true)])
        #expect(relay.pauseReading() == [.setReading(false)])
    }

    @Test("app bytes go to the tunnel until the app's EOF, which finishes the stream once")
    func appDirection() {
        var relay = RelayStateMachine()
        _ = relay.socketAttached()
        #expect(relay.appRead(a) == .sendToTunnel(a))
        #expect(relay.appInputClosed() == [.finishStream])
        #expect(relay.appInputClosed().isEmpty)
        #expect(relay.appRead(b) == nil)
    }

    @Test("closes: both directions done is an end; a clean close after the peer finished ends ours; else a cancel")
    func closes() {
        var done = RelayStateMachine()
        _ = done.socketAttached()
        _ = done.remoteFinish()
        _ = done.appInputClosed()
        #expect(done.appClosed("closed", clean: true).isEmpty)

        var halfDone = RelayStateMachine()
        _ = halfDone.socketAttached()
        _ = halfDone.remoteFinish()
        #expect(halfDone.appClosed("closed", clean: true) == [.finishStream])

        var early = RelayStateMachine()
        _ = early.socketAttached()
        #expect(early.appClosed("closed", clean: true) == [.resetStream(.cancelled, "closed")])
        #expect(early.tunnelBytes(a) == nil)

        var broken = RelayStateMachine()
        _ = broken.socketAttached()
        _ = broken.remoteFinish()
        #expect(broken.appClosed("reset by peer", clean: false) == [.resetStream(.cancelled, "reset by peer")])
    }

    @Test("after a reset nothing flows, credit stops, and a late socket is aborted")
    func afterReset() {
        var relay = RelayStateMachine()
        _ = relay.tunnelBytes(a)
        #expect(relay.streamReset().isEmpty)
        #expect(relay.socketAttached() == [.abortSocket])
        #expect(relay.writeCompleted(1) == nil)
        #expect(relay.appRead(a) == nil)
        #expect(relay.socketFailed("late").isEmpty)

        var attached = RelayStateMachine()
        _ = attached.socketAttached()
        #expect(attached.streamReset() == [.abortSocket])
        #expect(attached.appClosed("gone", clean: true).isEmpty)
    }

    @Test("an app that cannot be reached resets the stream as app down, once")
    func unreachable() {
        var relay = RelayStateMachine()
        #expect(relay.socketFailed("connection refused") == [.resetStream(.appDown, "connection refused")])
        #expect(relay.socketFailed("again").isEmpty)
    }

    @Test("a stream that closed normally closes the socket after its writes")
    func closedNormally() {
        var relay = RelayStateMachine()
        _ = relay.socketAttached()
        #expect(relay.streamClosed() == [.closeSocket])
        #expect(relay.streamClosed().isEmpty)
    }
}
