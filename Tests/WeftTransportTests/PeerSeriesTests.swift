import Testing

@testable import WeftTransport

@Suite("peer series: shared by a peer's tunnels, gone with the last, capped", .timeLimit(.minutes(10)))
struct PeerSeriesTests {
    @Test("two tunnels to one peer share its series; the series go when both have ended")
    func sharing() {
        let name = "peer-series-\(UInt32.random(in: 0...UInt32.max))"
        let old = PeerSeries.acquire(name)
        let new = PeerSeries.acquire(name)
        #expect(old === new && old.peer == name)
        old.release()
        #expect(PeerSeries.acquire(name) === new)
        new.release()
        new.release()
        // A third user after all have left gets new series.
        let later = PeerSeries.acquire(name)
        #expect(later !== new)
        later.release()
    }

    @Test("beyond maxPeers, peers share the overflow label")
    func cap() {
        let prefix = "cap-\(UInt32.random(in: 0...UInt32.max))-"
        let room = PeerSeries.maxPeers - PeerSeries.trackedPeers
        // Other suites' tunnels come and go meanwhile: a few more than the room left.
        let held = (0..<(room + 8)).map { PeerSeries.acquire(prefix + "\($0)") }
        let overflow = held.filter { $0.peer == PeerSeries.overflowLabel }
        #expect(!overflow.isEmpty && overflow.allSatisfy { $0 === overflow[0] })
        #expect(PeerSeries.trackedPeers <= PeerSeries.maxPeers + 1)
        for series in held { series.release() }
        let again = PeerSeries.acquire(prefix + "again")
        #expect(again.peer == prefix + "again")
        again.release()
    }
}
