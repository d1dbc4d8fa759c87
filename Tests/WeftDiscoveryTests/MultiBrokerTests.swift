import Foundation
import Testing
import WeftDiscovery
import WeftTestSupport

/// Discovery over two real mosquitto brokers: separate ones, then bridged ones.
@Suite(
    "discovery over more than one broker",
    .serialized,
    .enabled(if: MosquittoBroker.isAvailable, "mosquitto is not installed (apt-get install mosquitto)"),
    .timeLimit(.minutes(10))
)
struct MultiBrokerTests {
    @Test("sites on two brokers merge what they hear; one broker stopped mid-run takes no site down")
    func twoBrokers() async throws {
        let first = try MosquittoBroker()
        let second = try MosquittoBroker()
        let alpha = try TestSite("alpha", broker: first, moreBrokers: [second])
        let bravo = try TestSite("bravo", broker: second, moreBrokers: [first])
        // Each on one broker only: they meet through the sites on both, never each other.
        let charlie = try TestSite("charlie", broker: first)
        let delta = try TestSite("delta", broker: second)
        let sites = [alpha, bravo, charlie, delta]
        for site in sites { site.start() }
        let formed = await waitUntil(.seconds(60)) {
            alpha.peerNames == ["bravo", "charlie", "delta"] && bravo.peerNames == ["alpha", "charlie", "delta"]
                && charlie.peerNames == ["alpha", "bravo"] && delta.peerNames == ["alpha", "bravo"]
                && alpha.agent.connectedBrokerCount == 2 && bravo.agent.connectedBrokerCount == 2
        }
        #expect(formed != nil, "directories: \(sites.map { ($0.name, $0.peerNames) })")

        // The first broker goes away (SIGTERM: no will is published for anyone).
        first.stop()
        let lost = await waitUntil(.seconds(60)) {
            alpha.agent.connectedBrokerCount == 1 && bravo.agent.connectedBrokerCount == 1
        }
        #expect(lost != nil)
        // A new site on the remaining broker is still found by both, and both still see each other.
        let echo = try TestSite("echo", broker: second)
        echo.start()
        let found = await waitUntil(.seconds(60)) {
            alpha.peerNames.contains("echo") && bravo.peerNames.contains("echo")
                && echo.peerNames.isSuperset(of: ["alpha", "bravo"])
        }
        #expect(found != nil, "alpha \(alpha.peerNames), bravo \(bravo.peerNames), echo \(echo.peerNames)")
        #expect(alpha.downs(of: "bravo").isEmpty && bravo.downs(of: "alpha").isEmpty)
        #expect(alpha.peerNames.contains("bravo") && bravo.peerNames.contains("alpha"))

        // The broker comes back: both reconnect to it, and charlie (only there) hears them again.
        try first.start()
        let back = await waitUntil(.seconds(60)) {
            alpha.agent.connectedBrokerCount == 2 && bravo.agent.connectedBrokerCount == 2
                && charlie.peerNames.isSuperset(of: ["alpha", "bravo"])
        }
        #expect(back != nil, "charlie \(charlie.peerNames)")
        #expect(alpha.downs(of: "bravo").isEmpty && bravo.downs(of: "alpha").isEmpty)
        // Separate brokers carry separate messages: nothing came twice.
        #expect(alpha.agent.dropCounts[.duplicate] == nil && alpha.agent.dropCounts[.replayed] == nil)

        // A clean stop is said on both brokers and seen once.
        await bravo.stop()
        let down = await waitUntil(.seconds(60)) { alpha.downs(of: "bravo") == [.stopped] }
        #expect(down != nil, "alpha saw \(alpha.downs(of: "bravo"))")
        for site in [alpha, charlie, delta, echo] { await site.stop() }
    }

    @Test("bridged brokers deliver every message twice: taken once, the copies counted as duplicates, not replays")
    func bridgedBrokers() async throws {
        let first = try MosquittoBroker()
        // The second broker bridges every topic both ways with the first, as a broker set
        // sharing one namespace does (mosquitto bridge; EMQX and VerneMQ clusters alike).
        let second = try MosquittoBroker(
            extraConfig: """
                connection weft-test-bridge
                address 127.0.0.1:\(first.port)
                topic # both 1
                cleansession true
                """)
        let alpha = try TestSite("alpha", broker: first, moreBrokers: [second])
        let bravo = try TestSite("bravo", broker: second, moreBrokers: [first])
        // One on each broker only: they meet through the bridge.
        let charlie = try TestSite("charlie", broker: first)
        let delta = try TestSite("delta", broker: second)
        for site in [alpha, bravo, charlie, delta] { site.start() }
        let formed = await waitUntil(.seconds(60)) {
            alpha.peerNames == ["bravo", "charlie", "delta"] && bravo.peerNames == ["alpha", "charlie", "delta"]
                && charlie.peerNames == ["alpha", "bravo", "delta"] && delta.peerNames == ["alpha", "bravo", "charlie"]
                && (alpha.agent.dropCounts[.duplicate] ?? 0) > 0
                // alpha and bravo each heard the other on both brokers: a last will for one
                // session (the second broker going) then leaves the other standing. Before
                // that, it would rightly mark the peer down until its next announcement.
                && alpha.agent.liveSessions(of: "bravo") == 2 && bravo.agent.liveSessions(of: "alpha") == 2
        }
        #expect(formed != nil, "alpha \(alpha.peerNames) \(alpha.agent.dropCounts), delta \(delta.peerNames)")
        for site in [alpha, bravo, charlie, delta] {
            #expect(site.agent.dropCounts[.replayed] == nil, "\(site.name): \(site.agent.dropCounts)")
        }
        // The bridge goes (the second broker stops, delta with it): nothing changes for the others.
        await delta.stop()
        second.stop()
        let lost = await waitUntil(.seconds(60)) { alpha.agent.connectedBrokerCount == 1 }
        #expect(lost != nil)
        await charlie.stop()
        let down = await waitUntil(.seconds(60)) {
            alpha.downs(of: "charlie") == [.stopped] && bravo.downs(of: "charlie") == [.stopped]
        }
        #expect(down != nil, "alpha \(alpha.events), bravo \(bravo.events)")
        #expect(alpha.downs(of: "bravo").isEmpty && bravo.downs(of: "alpha").isEmpty)
        for site in [alpha, bravo] { await site.stop() }
    }
}
