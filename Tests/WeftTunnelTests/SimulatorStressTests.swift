import Testing
import WeftTunnel
import WeftWire

@Suite("tunnel engine in the network simulator: many streams, random faults", .timeLimit(.minutes(10)))
struct SimulatorStressTests {
    /// Runs 1,000 streams (stream 1 with 8 MiB, the rest 16 KiB) over 2 × 100 Mbit/s; returns
    /// the simulator and when the last of the small streams finished.
    func manyStreams(stalling stalled: Int?) -> (NetworkSimulator, Duration) {
        let rates = [mbit(100), mbit(100)]
        var sim = NetworkSimulator(links: rates.map { .init(rate: $0, delay: .milliseconds(10)) })
        if let stalled {
            sim.setReaderStalled(stalled, true)
            sim.ignoredForDone.insert(stalled)
        }
        var sizes = Array(repeating: 16 << 10, count: 1_000)
        sizes[0] = 8 << 20
        sim.startTransfer(sizes: sizes)
        var peakHeld: UInt64 = 0
        var time = Duration.zero
        while !sim.allDone && time < .seconds(60) {
            time += .milliseconds(20)
            sim.run(until: time)
            peakHeld = max(peakHeld, sim.engines[1].heldBytes)
            #expect(sim.engines[1].heldBytes <= UInt64(TunnelConfiguration().maxTunnelWindow))
        }
        let smallDone = sim.finishTimes.filter { $0.key != 1 }.values.max() ?? .zero
        print(
            "[sim] 1,000 streams, reader of stream 1 stalled: \(stalled != nil), 999 × 16 KiB done at \(smallDone), peak held \(peakHeld >> 10) KiB"
        )
        return (sim, smallDone)
    }

    @Test("1,000 streams with one reader stalled: the others keep their speed, memory stays within the windows")
    func thousandStreamsOneStalled() {
        let (free, freeTime) = manyStreams(stalling: nil)
        #expect(free.errors.isEmpty, "\(free.errors)")
        #expect(free.allDone)
        var (sim, stalledTime) = manyStreams(stalling: 1)
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.allDone)
        #expect(sim.finished.count == 999)
        // The small streams finish no later than when every reader keeps up (10 % slack).
        #expect(stalledTime <= freeTime * 11 / 10, "\(stalledTime) vs \(freeTime)")
        // The stalled stream holds no more than its window at the receiver.
        let held = sim.unconsumed[1, default: 0]
        #expect(held > 0 && held <= TunnelConfiguration().initialStreamWindow, "held \(held)")
        #expect(sim.engines[1].heldBytes <= UInt64(TunnelConfiguration().initialStreamWindow))
        // The reader resumes: the stream completes.
        sim.ignoredForDone.remove(1)
        sim.setReaderStalled(1, false)
        sim.run(until: sim.now + .seconds(60))
        sim.run(until: sim.now + .seconds(1), stopWhenDone: false)
        #expect(sim.allDone)
        #expect(sim.received[1] == 8 << 20)
        #expect(sim.errors.isEmpty, "\(sim.errors)")
        #expect(sim.engines[0].openStreams == 0 && sim.engines[1].openStreams == 0)
    }

    @Test(
        "connections closed from either side and replaced by new ones: every byte once and in order", arguments: 0..<50)
    func churn(seed: Int) {
        var random = SeededGenerator(seed: UInt64(seed) &+ 1_000)
        let links = (0..<3).map { _ in
            NetworkSimulator.Link(
                rate: mbit(Double.random(in: 20...200, using: &random)),
                delay: .milliseconds(Int.random(in: 1...20, using: &random)))
        }
        var sim = NetworkSimulator(links: links)
        sim.startTransfer(sizes: [12 << 20, 12 << 20, 6 << 20])
        var time = Duration.zero
        var replaced = 0
        while !sim.allDone && time < .seconds(120) {
            time += .milliseconds(Int.random(in: 30...150, using: &random))
            sim.run(until: time)
            let live = sim.links.indices.filter { sim.links[$0].up }
            guard let victim = live.randomElement(using: &random) else { continue }
            sim.replace(victim, closedBy: Int.random(in: 0...1, using: &random))
            replaced += 1
        }
        sim.run(until: time + .seconds(10), stopWhenDone: false)
        #expect(sim.errors.isEmpty, "seed \(seed): \(sim.errors.prefix(3))")
        #expect(sim.resets.isEmpty)
        #expect(sim.allDone, "seed \(seed)")
        #expect(replaced >= 3, "seed \(seed): only \(replaced) replaced")
    }

    @Test("random faults: every byte once and in order", arguments: 0..<200)
    func randomFaults(seed: Int) {
        var random = SeededGenerator(seed: UInt64(seed))
        let linkCount = Int.random(in: 1...4, using: &random)
        var links: [NetworkSimulator.Link] = []
        for _ in 0..<linkCount {
            links.append(
                .init(
                    rate: mbit(Double.random(in: 5...200, using: &random)),
                    delay: .milliseconds(Int.random(in: 1...60, using: &random))
                )
            )
        }
        var sim = NetworkSimulator(links: links)
        let sizes = (0..<Int.random(in: 1...8, using: &random)).map { _ in
            Int.random(in: 0...(1 << 20), using: &random)
        }
        sim.startTransfer(sizes: sizes)
        var time = Duration.zero
        var faults: [String] = []
        while !sim.allDone && time < .seconds(120) {
            time += .milliseconds(Int.random(in: 20...400, using: &random))
            sim.run(until: time)
            let link = Int.random(in: 0..<linkCount, using: &random)
            switch Int.random(in: 0..<10, using: &random) {
            case 0, 1:
                if sim.links[link].up {
                    sim.cut(link)
                    faults.append("cut \(link) at \(time)")
                }
            case 2, 3:
                if !sim.links[link].up {
                    sim.restore(link)
                    faults.append("restore \(link) at \(time)")
                }
            case 4:
                let pause = Duration.milliseconds(Int.random(in: 10...1_500, using: &random))
                sim.stall(link, for: pause)
                faults.append("stall \(link) for \(pause) at \(time)")
            case 5 where sim.streamIDs.count > 0:
                let stream = Int(sim.streamIDs.randomElement(using: &random)!.rawValue)
                let stalled = !sim.stalledReaders.contains(stream)
                sim.setReaderStalled(stream, stalled)
            default:
                break
            }
            // Never an outage longer than the grace period: bring one link back after a while.
            if !sim.links.contains(where: \.up) && Int.random(in: 0..<4, using: &random) == 0 {
                sim.restore(link)
                faults.append("restore \(link) at \(time)")
            }
            if time > .seconds(60) {
                for reader in sim.stalledReaders { sim.setReaderStalled(reader, false) }
                for index in sim.links.indices where !sim.links[index].up { sim.restore(index) }
            }
        }
        sim.run(until: time + .seconds(120))
        // Let the replies (fins, answers to resets) arrive over working links.
        for index in sim.links.indices where !sim.links[index].up { sim.restore(index) }
        sim.run(until: sim.now + .seconds(10), stopWhenDone: false)
        let context = "seed \(seed), links \(links.map { "\(Int($0.rate * 8 / 1e6))/\($0.delay)" }), faults \(faults)"
        #expect(sim.errors.isEmpty, "\(sim.errors) — \(context)")
        #expect(sim.resets.isEmpty, "\(sim.resets.count) resets — \(context)")
        #expect(sim.allDone, "not done — \(context)")
        #expect(zip(sim.streamIDs, sizes).allSatisfy { sim.received[Int($0.rawValue), default: 0] == $1 }, "\(context)")
        #expect(sim.engines[0].openStreams == 0 && sim.engines[1].openStreams == 0, "\(context)")
        #expect(sim.engines[0].unsettledResets == 0 && sim.engines[1].unsettledResets == 0)
    }
}
