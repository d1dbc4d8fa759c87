import Foundation
import Testing
import WeftTunnel

/// Scenarios on the simulated network. Each asserts that every byte of every stream arrives
/// exactly once and in order (the receiving app checks a pattern at every offset), and prints
/// goodput against the sum of the link rates.
/// Megabits per second in bytes per second.
func mbit(_ value: Double) -> Double { value * 1e6 / 8 }

@Suite("tunnel engine in the network simulator", .timeLimit(.minutes(10)))
struct SimulatorScenarioTests {
    func report(_ name: String, _ sim: NetworkSimulator, bytes: Int, rates: [Double]) -> Double {
        let seconds = Double(sim.now.components.seconds) + Double(sim.now.components.attoseconds) / 1e18
        let goodput = Double(bytes) / seconds
        let share = goodput / rates.reduce(0, +)
        let mbits = String(format: "%.1f", goodput * 8 / 1e6)
        let percent = String(format: "%.1f", share * 100)
        let time = String(format: "%.3f", seconds)
        let stall = sim.longestStall
        let resent = sim.engines[0].resentBytes
        print(
            "[sim] \(name): \(bytes >> 20) MiB in \(time) s, \(mbits) Mbit/s = \(percent) % of the links' sum, longest stall \(stall), re-sent \(resent) B"
        )
        return share
    }

    @Test("one link: every byte arrives in order")
    func oneLink() {
        var sim = NetworkSimulator(links: [.init(rate: mbit(100), delay: .milliseconds(5))])
        sim.startTransfer(streams: 1, bytes: 8 << 20)
        sim.run(until: .seconds(30))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        #expect(sim.totalReceived == 8 << 20)
        let share = report("1 × 100 Mbit/s", sim, bytes: 8 << 20, rates: [mbit(100)])
        #expect(share > 0.9)
    }

    @Test("two equal links add up")
    func twoEqualLinks() {
        let rates = [mbit(100), mbit(100)]
        var sim = NetworkSimulator(links: rates.map { .init(rate: $0, delay: .milliseconds(10)) })
        sim.startTransfer(streams: 1, bytes: 32 << 20)
        sim.run(until: .seconds(60))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        let share = report("2 × 100 Mbit/s", sim, bytes: 32 << 20, rates: rates)
        #expect(share >= 0.95)
    }

    @Test("100 + 20 Mbit/s: more than the faster link alone")
    func unequalLinks() {
        let rates = [mbit(100), mbit(20)]
        var sim = NetworkSimulator(links: rates.map { .init(rate: $0, delay: .milliseconds(10)) })
        sim.startTransfer(streams: 1, bytes: 32 << 20)
        sim.run(until: .seconds(60))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        let share = report("100 + 20 Mbit/s", sim, bytes: 32 << 20, rates: rates)
        #expect(share >= 0.92)
        #expect(share * 120 > 100)
    }

    @Test("one of two links cut mid-transfer: nothing lost, the stall stays under a second")
    func cutMidTransfer() {
        let rates = [mbit(100), mbit(100)]
        var sim = NetworkSimulator(links: rates.map { .init(rate: $0, delay: .milliseconds(10)) })
        sim.startTransfer(streams: 4, bytes: 8 << 20)
        sim.run(until: .milliseconds(700))
        #expect(!sim.allDone)
        sim.cut(1)
        sim.run(until: .seconds(60))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        #expect(sim.resets.isEmpty)
        #expect(sim.totalReceived == 4 * (8 << 20))
        #expect(sim.longestStall < .seconds(1), "stall \(sim.longestStall)")
        _ = report("2 × 100 Mbit/s, one cut at 0.7 s", sim, bytes: 4 * (8 << 20), rates: rates)
    }
}

@Suite("backup and blocked links in the network simulator", .timeLimit(.minutes(10)))
struct BackupLinkScenarioTests {
    @Test("every link blocked (one by each side): data still flows on them rather than stranding the streams")
    func allBlocked() {
        var sim = NetworkSimulator(
            links: [.init(rate: mbit(100), delay: .milliseconds(10)), .init(rate: mbit(100), delay: .milliseconds(10))])
        sim.apply(sim.engines[0].setBlocked(LinkID(0), true, now: sim.now).1, side: 0)
        sim.apply(sim.engines[1].setBlocked(LinkID(1), true, now: sim.now).1, side: 1)
        sim.startTransfer(streams: 2, bytes: 4 << 20)
        sim.run(until: .seconds(60))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        #expect(sim.totalReceived == 2 * (4 << 20))
    }

    @Test("a backup link beside a primary carries under 1 % of a transfer")
    func backupIdle() {
        var sim = NetworkSimulator(
            links: [
                .init(rate: mbit(100), delay: .milliseconds(10)), .init(rate: mbit(100), delay: .milliseconds(10)),
            ],
            backup: [1])
        sim.startTransfer(streams: 2, bytes: 16 << 20)
        sim.run(until: .seconds(60))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        let delivered = sim.deliveredPerLink
        #expect(Double(delivered[1]) < 0.01 * Double(delivered.reduce(0, +)), "per link: \(delivered)")
        #expect(sim.engines[0].linkStatistics.first { $0.id == LinkID(1) }?.backup == true)
    }

    @Test("the primary cut mid-transfer: the backup carries the rest within a second, nothing lost")
    func primaryCut() {
        var sim = NetworkSimulator(
            links: [.init(rate: mbit(100), delay: .milliseconds(10)), .init(rate: mbit(20), delay: .milliseconds(30))],
            backup: [1])
        sim.startTransfer(streams: 2, bytes: 8 << 20)
        sim.run(until: .milliseconds(500))
        #expect(!sim.allDone)
        let before = sim.deliveredPerLink
        #expect(Double(before[1]) < 0.01 * Double(before.reduce(0, +)), "per link before the cut: \(before)")
        sim.cut(0)
        sim.run(until: .seconds(60))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        #expect(sim.resets.isEmpty)
        #expect(sim.totalReceived == 2 * (8 << 20))
        #expect(sim.longestStall < .seconds(1), "stall \(sim.longestStall)")
        #expect(sim.deliveredPerLink[1] > 8 << 20, "the backup carried the rest: \(sim.deliveredPerLink)")
    }

    @Test(
        "a blocked link carries no data while blocked, and carries again once unblocked (blocked at the sender or, told by a frame, at the receiver)",
        arguments: [0, 1])
    func blocked(at side: Int) {
        var sim = NetworkSimulator(
            links: [.init(rate: mbit(100), delay: .milliseconds(10)), .init(rate: mbit(100), delay: .milliseconds(10))])
        let (found, actions) = sim.engines[side].setBlocked(LinkID(1), true, now: sim.now)
        #expect(found)
        sim.apply(actions, side: side)
        // The other side learns it from the frame, one link delay later.
        sim.run(until: .milliseconds(50))
        #expect(sim.engines[1 - side].linkStatistics.first { $0.id == LinkID(1) }?.blockedByPeer == true)
        #expect(sim.engines[side].linkStatistics.first { $0.id == LinkID(1) }?.blocked == true)
        #expect(!sim.engines[0].setBlocked(LinkID(9), true, now: sim.now).found)
        sim.startTransfer(streams: 2, bytes: 16 << 20)
        sim.run(until: .milliseconds(600))
        let blockedShare = sim.deliveredPerLink
        // Acks and pings only: no stream data on the blocked link.
        #expect(blockedShare[1] < 64 << 10, "per link while blocked: \(blockedShare)")
        let (_, unblock) = sim.engines[side].setBlocked(LinkID(1), false, now: sim.now)
        sim.apply(unblock, side: side)
        sim.run(until: .seconds(60))
        #expect(sim.allDone)
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(
            sim.deliveredPerLink[1] > blockedShare[1] + (1 << 20), "per link after unblocking: \(sim.deliveredPerLink)")
    }
}

@Suite("tunnel engine in the network simulator: harder networks", .timeLimit(.minutes(10)))
struct SimulatorHardScenarioTests {
    @Test("4 links mixed in rate and RTT add up")
    func fourMixedLinks() {
        let rates = [mbit(100), mbit(50), mbit(20), mbit(10)]
        let delays: [Duration] = [.milliseconds(10), .milliseconds(25), .milliseconds(3), .milliseconds(40)]
        var sim = NetworkSimulator(links: zip(rates, delays).map { .init(rate: $0, delay: $1) })
        sim.startTransfer(streams: 4, bytes: 12 << 20)
        sim.run(until: .seconds(60))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        let share = SimulatorScenarioTests().report(
            "100/10 + 50/25 + 20/3 + 10/40 Mbit/s/ms", sim, bytes: 48 << 20, rates: rates)
        #expect(share >= 0.9)
    }

    @Test("1:25 RTT (2 ms and 50 ms one way): still more than the fast link alone")
    func unequalRTT() {
        let rates = [mbit(50), mbit(50)]
        var sim = NetworkSimulator(links: [
            .init(rate: rates[0], delay: .milliseconds(2)), .init(rate: rates[1], delay: .milliseconds(50)),
        ])
        sim.startTransfer(streams: 1, bytes: 24 << 20)
        sim.run(until: .seconds(60))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        let share = SimulatorScenarioTests().report(
            "50 + 50 Mbit/s at 2 ms and 50 ms one way", sim, bytes: 24 << 20, rates: rates)
        #expect(share * (rates[0] + rates[1]) > rates[0])
    }

    @Test("the tunnel closed on purpose (a peer restart): both sides reset every stream at once")
    func closedOnPurpose() {
        let rates = [mbit(100), mbit(100)]
        var sim = NetworkSimulator(links: rates.map { .init(rate: $0, delay: .milliseconds(10)) })
        sim.startTransfer(streams: 3, bytes: 8 << 20)
        sim.run(until: .milliseconds(300))
        #expect(!sim.allDone)
        sim.apply(sim.engines[0].close(reason: "beta restarted", now: sim.now), side: 0)
        // The goodbye arrives behind what the links already carry (up to ~160 ms queued here).
        sim.run(until: .seconds(1), stopWhenDone: false)
        // Each side reset each of the three streams, well before any grace period.
        for side in 0..<2 {
            let resets = sim.resets.filter { $0.side == side }
            #expect(Set(resets.map(\.stream)) == Set(sim.streamIDs), "side \(side)")
            #expect(resets.allSatisfy { $0.code == .tunnelLost })
        }
        #expect(sim.errors.count == 2 && sim.errors.allSatisfy { $0.contains("tunnel failed") }, "\(sim.errors)")
        #expect(sim.engines[0].openStreams == 0 && sim.engines[1].openStreams == 0)
        #expect(sim.engines[0].linkIDs.isEmpty && sim.engines[1].linkIDs.isEmpty)
    }

    @Test("a link flapping every 200 ms: nothing lost")
    func flapping() {
        let rates = [mbit(100), mbit(100)]
        var sim = NetworkSimulator(links: rates.map { .init(rate: $0, delay: .milliseconds(10)) })
        sim.startTransfer(streams: 2, bytes: 8 << 20)
        var time = Duration.milliseconds(200)
        var up = true
        while !sim.allDone && time < .seconds(60) {
            sim.run(until: time)
            if up { sim.cut(1) } else { sim.restore(1) }
            up.toggle()
            time += .milliseconds(200)
        }
        sim.run(until: .seconds(90))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        #expect(sim.resets.isEmpty)
        #expect(sim.totalReceived == 2 * (8 << 20))
        _ = SimulatorScenarioTests().report(
            "2 × 100 Mbit/s, one flapping every 200 ms", sim, bytes: 16 << 20, rates: rates)
    }

    @Test("all links gone for 20 s, then one back: every stream resumes")
    func outage() {
        let rates = [mbit(100), mbit(100)]
        var sim = NetworkSimulator(links: rates.map { .init(rate: $0, delay: .milliseconds(10)) })
        sim.startTransfer(streams: 3, bytes: 8 << 20)
        sim.run(until: .milliseconds(500))
        #expect(!sim.allDone)
        sim.cut(0)
        sim.cut(1)
        sim.run(until: .milliseconds(20_500), stopWhenDone: false)
        #expect(sim.engines[0].linkIDs.isEmpty && sim.engines[1].linkIDs.isEmpty)
        sim.restore(0)
        sim.run(until: .seconds(60))
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        #expect(sim.resets.isEmpty)
        #expect(sim.totalReceived == 3 * (8 << 20))
        _ = SimulatorScenarioTests().report("2 × 100 Mbit/s, 20 s with no link", sim, bytes: 24 << 20, rates: rates)
    }
}
