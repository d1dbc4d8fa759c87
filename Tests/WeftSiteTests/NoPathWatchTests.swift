import Testing

@testable import WeftSite

@Suite("no-path watch")
struct NoPathWatchTests {
    let start = ContinuousClock.now

    func at(_ seconds: Int) -> ContinuousClock.Instant { start + .seconds(seconds) }

    /// A used peer that is up, with no path of any kind.
    var stranded: NoPathWatch.Facts {
        NoPathWatch.Facts(
            up: true, used: true, linked: false, directPaths: 0, announcesEndpoints: false, relays: 0,
            punching: .failed)
    }

    @Test("no endpoint, punching failed, no relay: said once the peer has been up a while, then again only on change")
    func noPath() {
        var watch = NoPathWatch()
        let reason = "no path to beta: no endpoint, punching failed, no relay"
        #expect(NoPathWatch.missingPath(to: "beta", stranded) == reason)
        // The first seconds: a relay's or the peer's next announcement may still bring a path.
        #expect(watch.review("beta", stranded, now: at(0)).isEmpty)
        #expect(watch.review("beta", stranded, now: at(4)).isEmpty)
        #expect(watch.reason(for: "beta") == nil)
        #expect(watch.review("beta", stranded, now: at(5)) == [.noPath(peer: "beta", reason: reason)])
        #expect(watch.reason(for: "beta") == reason)
        #expect(watch.review("beta", stranded, now: at(6)).isEmpty)
        // Why punching cannot help changes: said again.
        var unavailable = stranded
        unavailable.punching = .unavailable("beta announces no NAT mapping")
        #expect(
            watch.review("beta", unavailable, now: at(7)) == [
                .noPath(
                    peer: "beta",
                    reason: "no path to beta: no endpoint, no punching (beta announces no NAT mapping), no relay")
            ])
        // A relay appears: a path may come, at once.
        var relayed = stranded
        relayed.relays = 1
        #expect(watch.review("beta", relayed, now: at(8)) == [.pathPossible(peer: "beta")])
        #expect(watch.reason(for: "beta") == nil)
        // Gone again: no new settling (the peer has been up all along).
        #expect(watch.review("beta", stranded, now: at(9)) == [.noPath(peer: "beta", reason: reason)])
    }

    @Test("any way in or out is a path, or may become one")
    func paths() {
        var facts = stranded
        facts.linked = true
        #expect(NoPathWatch.missingPath(to: "beta", facts) == nil)
        facts = stranded
        facts.directPaths = 2
        #expect(NoPathWatch.missingPath(to: "beta", facts) == nil)
        facts = stranded
        facts.announcesEndpoints = true  // the peer may dial this site
        #expect(NoPathWatch.missingPath(to: "beta", facts) == nil)
        facts = stranded
        facts.punching = .possible  // a round under way
        #expect(NoPathWatch.missingPath(to: "beta", facts) == nil)
        facts = stranded
        facts.used = false  // nobody here waits for it
        #expect(NoPathWatch.missingPath(to: "beta", facts) == nil)
        facts = stranded
        facts.up = false  // down is its own story (clients wait for it to come back)
        #expect(NoPathWatch.missingPath(to: "beta", facts) == nil)
    }

    @Test("a peer that goes down, or is no longer used, is forgotten; coming back it settles again")
    func forgetting() {
        var watch = NoPathWatch()
        _ = watch.review("beta", stranded, now: at(0))
        #expect(!watch.review("beta", stranded, now: at(5)).isEmpty)
        var down = stranded
        down.up = false
        #expect(watch.review("beta", down, now: at(6)) == [.pathPossible(peer: "beta")])
        #expect(watch.review("beta", stranded, now: at(7)).isEmpty)
        #expect(watch.review("beta", stranded, now: at(11)).isEmpty)
        #expect(watch.review("beta", stranded, now: at(12)).count == 1)
        #expect(watch.forget("beta") == [.pathPossible(peer: "beta")])
        #expect(watch.forget("beta").isEmpty)
        #expect(watch.peers.isEmpty)
    }
}
