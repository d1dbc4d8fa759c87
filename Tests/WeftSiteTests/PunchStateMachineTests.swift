import Testing
import WeftWire

@testable import WeftSite

@Suite("hole-punching state machine", .timeLimit(.minutes(10)))
struct PunchStateMachineTests {
    let token = [UInt8](repeating: 7, count: 16)
    let other = [UInt8](repeating: 9, count: 16)
    let b1 = PunchCandidate(address: "198.18.2.1", port: 4500)
    let b2 = PunchCandidate(address: "10.0.2.5", port: 4500)

    func at(_ milliseconds: Int) -> Duration { .milliseconds(milliseconds) }

    @Test("the dialer asks, probes the answer's candidates, dials where a probe came from, once")
    func dialerRound() {
        var machine = PunchStateMachine(role: PunchStateMachine.Role(local: "alpha", peer: "beta"))
        #expect(machine.role == .dialer)
        #expect(
            machine.start(token: token, now: at(0)) == [
                .sendRendezvous(token: token, answer: false), .wake(at: at(5000)),
            ])
        // Nothing else starts a second round meanwhile.
        #expect(machine.start(token: other, now: at(10)) == [])
        // An answer to another round is ignored.
        #expect(machine.rendezvous(token: other, candidates: [b1], answer: true, now: at(100)) == [])
        #expect(
            machine.rendezvous(token: token, candidates: [b1, b2], answer: true, now: at(100))
                == [.probe([b1, b2], kind: .probe), .wake(at: at(300))])
        // A probe with a wrong token is a stranger's: nil, counted by the caller.
        #expect(machine.probeArrived(.probe, token: other, from: b1, now: at(150)) == nil)
        // So is one with the right token from an address that is no candidate (another member
        // that read the token): it neither steers the dial nor gets an answer.
        let member = PunchCandidate(address: "198.18.9.9", port: 4500)
        #expect(machine.probeArrived(.probe, token: token, from: member, now: at(150)) == nil)
        // The peer's NAT shows another port than it announced: that is where the dial goes.
        let seen = PunchCandidate(address: "198.18.2.1", port: 61_000)
        #expect(
            machine.probeArrived(.probe, token: token, from: seen, now: at(200)) == [
                .probe([seen], kind: .answer), .dial(seen),
            ])
        #expect(machine.probeArrived(.answer, token: token, from: b1, now: at(210)) == [])
        // The window may end before the dial does: the dial decides.
        #expect(machine.tick(now: at(5_100)) == [])
        // Probing goes on, the dialed address included, until the link is up.
        #expect(machine.tick(now: at(300)) == [.probe([b1, b2, seen], kind: .probe), .wake(at: at(500))])
        machine.linkUp()
        #expect(machine.state == .linked)
        #expect(machine.tick(now: at(500)) == [])
        #expect(!machine.canStart(now: at(600)))
        // The link goes: a new round may start at once.
        #expect(machine.linkDown(now: at(700)) == [])
        #expect(machine.canStart(now: at(700)))
    }

    @Test("the opener answers a request, probes, answers probes and never dials")
    func openerRound() {
        var machine = PunchStateMachine(role: PunchStateMachine.Role(local: "beta", peer: "alpha"))
        #expect(machine.role == .opener)
        #expect(
            machine.rendezvous(token: token, candidates: [b1], answer: false, now: at(0))
                == [.sendRendezvous(token: token, answer: true), .probe([b1], kind: .probe), .wake(at: at(200))])
        #expect(machine.probeArrived(.probe, token: token, from: b1, now: at(50)) == [.probe([b1], kind: .answer)])
        #expect(machine.probeArrived(.answer, token: token, from: b1, now: at(60)) == [])
        // A repeat of the same request changes nothing.
        #expect(machine.rendezvous(token: token, candidates: [b1], answer: false, now: at(70)) == [])
        // The window ends: the opener heard the peer, so the round did not fail; it starts none
        // of its own for a while, but joins the peer's.
        #expect(machine.tick(now: at(4_999)).first == .probe([b1], kind: .probe))
        #expect(machine.tick(now: at(5_000)) == [])
        #expect(machine.state == .backingOff(until: at(15_000)))
        #expect(machine.failures == 0)
        // ...once `minimumJoinInterval` has passed since its last round began.
        #expect(machine.rendezvous(token: other, candidates: [b1], answer: false, now: at(6_000)) == [])
        #expect(machine.rendezvous(token: other, candidates: [b1], answer: false, now: at(10_000)).count == 3)
        // Probes go out every 200 ms, however often it is ticked.
        #expect(machine.tick(now: at(10_100)) == [.wake(at: at(10_200))])
        #expect(machine.tick(now: at(10_200)).first == .probe([b1], kind: .probe))
        // Heard again, and again no link came (the dial keeps failing): the pause doubles.
        #expect(machine.probeArrived(.probe, token: other, from: b1, now: at(10_300)) == [.probe([b1], kind: .answer)])
        #expect(machine.tick(now: at(15_000)) == [])
        #expect(machine.state == .backingOff(until: at(35_000)))
        #expect(machine.quietRounds == 2)
        // A link resets it.
        machine.linkUp()
        #expect(machine.quietRounds == 0)
        // An unsolicited answer (no round of ours) is ignored.
        var idle = PunchStateMachine(role: .opener)
        #expect(idle.rendezvous(token: token, candidates: [b1], answer: true, now: at(0)) == [])
        #expect(idle.state == .idle)
    }

    @Test("a round that gets nothing through fails after its window and backs off, doubling to a cap")
    func backoff() {
        var machine = PunchStateMachine(role: .dialer)
        _ = machine.start(token: token, now: at(0))
        #expect(machine.tick(now: at(4_999)) == [.wake(at: at(5_000))])
        guard case .failed(let reason, let retry) = machine.tick(now: at(5_000)).first else {
            Issue.record("no failure")
            return
        }
        #expect(reason.contains("did not answer"))
        #expect(retry == at(15_000))
        #expect(!machine.canStart(now: at(14_999)))
        #expect(machine.canStart(now: at(15_000)))
        // Answered, but no probe gets through.
        _ = machine.start(token: other, now: at(15_000))
        _ = machine.rendezvous(token: other, candidates: [b1], answer: true, now: at(15_100))
        var now = 15_100
        var last: [PunchStateMachine.Action] = []
        while now <= 20_100 {
            now += 200
            last = machine.tick(now: at(now))
            if case .failed = last.first { break }
        }
        #expect(last == [.failed(reason: "no probe got through within 5.0 seconds", retryAt: at(now + 20_000))])
        // Doubling stops at the cap.
        var capped = PunchStateMachine(role: .dialer, configuration: .init(maxRetry: .seconds(60)))
        var delays: [Duration] = []
        var start = 0
        for _ in 0..<6 {
            _ = capped.start(token: token, now: at(start))
            guard case .failed(_, let retryAt) = capped.tick(now: at(start + 5_000)).first else { break }
            delays.append(retryAt - at(start + 5_000))
            start = Int(retryAt.components.seconds) * 1000
        }
        #expect(delays == [10, 20, 40, 60, 60, 60].map { Duration.seconds($0) })
    }

    @Test("both ask at once: the opener joins the dialer's round, the dialer asks again")
    func crossedRequests() {
        var alpha = PunchStateMachine(role: .dialer)
        var beta = PunchStateMachine(role: .opener)
        _ = alpha.start(token: token, now: at(0))
        _ = beta.start(token: other, now: at(0))
        // The dialer asks again (its first request may have been lost), keeping its round.
        #expect(
            alpha.rendezvous(token: other, candidates: [b1], answer: false, now: at(50))
                == [.sendRendezvous(token: token, answer: false)])
        #expect(
            beta.rendezvous(token: token, candidates: [b2], answer: false, now: at(50))
                == [.sendRendezvous(token: token, answer: true), .probe([b2], kind: .probe), .wake(at: at(250))])
        // Beta's answer reaches alpha: both probe the same round.
        #expect(
            alpha.rendezvous(token: token, candidates: [b1], answer: true, now: at(90)).first
                == .probe([b1], kind: .probe))
    }

    @Test("a failed dial fails the round; an empty candidate list is ignored; at most 8 candidates")
    func failures() {
        var machine = PunchStateMachine(role: .dialer)
        _ = machine.start(token: token, now: at(0))
        _ = machine.rendezvous(token: token, candidates: [b1], answer: true, now: at(10))
        _ = machine.probeArrived(.answer, token: token, from: b1, now: at(20))
        guard case .failed(let reason, _) = machine.linkDown(now: at(900)).first else {
            Issue.record("the failed dial did not fail the round")
            return
        }
        #expect(reason.contains("did not open"))
        // A rendezvous with nothing to probe changes nothing.
        var empty = PunchStateMachine(role: .opener)
        #expect(empty.rendezvous(token: token, candidates: [], answer: false, now: at(0)) == [])
        #expect(empty.state == .idle)
        var many = PunchStateMachine(role: .opener)
        let candidates = (0..<20).map { PunchCandidate(address: "198.18.0.\($0)", port: 1) }
        let actions = many.rendezvous(token: token, candidates: candidates, answer: false, now: at(0))
        #expect(actions.contains(.probe(Array(candidates.prefix(8)), kind: .probe)))
    }
}
