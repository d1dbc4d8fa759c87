import Testing

@testable import WeftTunnel

@Suite("engine timers: silence is the links', not a stalled process's", .timeLimit(.minutes(10)))
struct EngineTimerTests {
    func deadline(_ actions: [TunnelAction]) -> Duration? {
        for case .scheduleTimer(let at) in actions { return at }
        return nil
    }

    func closed(_ actions: [TunnelAction]) -> [TunnelFailure] {
        actions.compactMap { if case .closeLink(_, let reason) = $0 { reason } else { nil } }
    }

    @Test("a timer that fires 3 s late does not close links for a silence the process caused")
    func lateTimer() throws {
        var engine = TunnelEngine(options: .init(opensOddStreams: true), now: .seconds(10))
        let first = try #require(deadline(engine.linkUp(LinkID(1), now: .seconds(10))))
        // The process was stopped for 3 s: the timer runs late, with nothing read meanwhile.
        let late = engine.timerFired(now: first + .seconds(3))
        #expect(closed(late).isEmpty, "\(late)")
        // Really silent afterwards, on time: closed.
        var now = first + .seconds(3)
        var reasons: [TunnelFailure] = []
        for _ in 0..<20 where reasons.isEmpty {
            now += .milliseconds(250)
            reasons = closed(engine.timerFired(now: now))
        }
        #expect(reasons.first?.code == .silent, "\(reasons)")
    }

    @Test("a silence deadline that fires late judges nothing before the link could be read")
    func lateSilenceDeadline() {
        var engine = TunnelEngine(options: .init(opensOddStreams: true), now: .seconds(10))
        _ = engine.linkUp(LinkID(1), now: .seconds(10))
        // The timer was due at the link's silence deadline and ran 600 ms late: the process was
        // busy (one long batch on its loop) and has not read the link since. Crediting only the
        // lateness would leave exactly the limit, and close the link.
        engine.lastTimer = .seconds(12)
        let late = engine.timerFired(now: .seconds(12) + .milliseconds(600))
        #expect(closed(late).isEmpty, "\(late)")
        // Still silent once the loop runs again, on time: closed within a ping interval.
        var now = Duration.seconds(12) + .milliseconds(600)
        var reasons: [TunnelFailure] = []
        for _ in 0..<40 where reasons.isEmpty {
            now += .milliseconds(50)
            reasons = closed(engine.timerFired(now: now))
        }
        #expect(reasons.first?.code == .silent, "\(reasons)")
        #expect(now <= .seconds(13) + .milliseconds(150), "closed at \(now)")
    }

    @Test("a timer on time still closes a link silent for the limit")
    func onTime() {
        var engine = TunnelEngine(options: .init(opensOddStreams: true), now: .seconds(10))
        _ = engine.linkUp(LinkID(1), now: .seconds(10))
        var reasons: [TunnelFailure] = []
        var now = Duration.seconds(10)
        while reasons.isEmpty && now < .seconds(20) {
            now += .milliseconds(100)
            reasons = closed(engine.timerFired(now: now))
        }
        #expect(reasons.first?.code == .silent, "\(reasons)")
        #expect(now <= .seconds(12) + .milliseconds(200), "closed at \(now)")
    }
}
