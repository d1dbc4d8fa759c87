import Foundation
import Testing
import WeftDiscovery
import WeftTestSupport

@Suite(
    "mesh key rotation over a real mosquitto broker",
    .serialized,
    .enabled(if: MosquittoBroker.isAvailable, "mosquitto is not installed (apt-get install mosquitto)"),
    .timeLimit(.minutes(10))
)
struct KeyRotationBrokerTests {
    static let oldKey = "the-old-mesh-key-for-tests"
    static let newKey = "the-new-mesh-key-for-tests"
    static let topic = "weft-test/rotation"

    static func ring(_ key: String, _ previous: String...) -> MeshKeyRing {
        MeshKeyRing(
            current: MeshKeys(key: key, topic: topic), previous: previous.map { MeshKeys(key: $0, topic: topic) })
    }

    @Test(
        "a site holding both keys is seen by sites on either one and sees both; moving each site in turn drops no peer")
    func rotateOneSiteAtATime() async throws {
        let broker = try MosquittoBroker()
        let old = try TestSite("old-site", broker: broker, key: Self.oldKey, topic: Self.topic)
        let both = try TestSite(
            "both-site", broker: broker, key: Self.newKey, previousKeys: [Self.oldKey], topic: Self.topic)
        let new = try TestSite("new-site", broker: broker, key: Self.newKey, topic: Self.topic)
        let sites = [old, both, new]
        for site in sites { site.start() }
        let formed = await waitUntil(.seconds(60)) {
            old.peerNames == ["both-site"] && new.peerNames == ["both-site"]
                && both.peerNames == ["old-site", "new-site"]
        }
        #expect(formed != nil, "directories: \(sites.map { ($0.name, $0.peerNames) })")
        // One key each, and they have never met.
        #expect(!old.peerNames.contains("new-site") && !new.peerNames.contains("old-site"))

        // The old site takes the new key, keeping the old one: now everyone meets everyone.
        old.agent.replaceKeys(Self.ring(Self.newKey, Self.oldKey))
        let met = await waitUntil(.seconds(60)) {
            old.peerNames == ["both-site", "new-site"] && new.peerNames == ["both-site", "old-site"]
        }
        #expect(met != nil, "directories: \(sites.map { ($0.name, $0.peerNames) })")

        // Then every site drops the old key; a change each announces after that is heard by the
        // others under the new key alone.
        old.agent.replaceKeys(Self.ring(Self.newKey))
        both.agent.replaceKeys(Self.ring(Self.newKey))
        for site in sites { site.agent.update(apps: ["after-rotation-\(site.name)"]) }
        let heard = await waitUntil(.seconds(60)) {
            sites.allSatisfy { site in
                site.agent.peers.count == 2
                    && site.agent.peers.values.allSatisfy { $0.announcement.apps == ["after-rotation-\($0.siteName)"] }
            }
        }
        #expect(heard != nil, "directories: \(sites.map { ($0.name, $0.agent.peers.mapValues(\.announcement.apps)) })")
        for site in sites {
            #expect(
                !site.events.contains { if case .down = $0 { true } else { false } },
                "\(site.name) saw a peer go down: \(site.events)")
        }
        for site in sites { await site.stop() }
    }

    @Test("a site that drops a key clears its retained announcement under that key")
    func droppedKeyIsCleared() async throws {
        let broker = try MosquittoBroker()
        let site = try TestSite(
            "rotating-site", broker: broker, key: Self.newKey, previousKeys: [Self.oldKey], topic: Self.topic)
        let watcher = try TestSite("watcher", broker: broker, key: Self.oldKey, topic: Self.topic)
        site.start()
        watcher.start()
        #expect(await waitUntil(.seconds(60)) { watcher.peerNames == ["rotating-site"] } != nil)
        site.agent.replaceKeys(Self.ring(Self.newKey))
        // Whatever the broker retains on the old-key topic is delivered on subscribing, before a
        // probe published after the subscription on the same topic: the probe is the event.
        let oldTopic = MeshKeys(key: Self.oldKey, topic: Self.topic).presenceTopic(for: "rotating-site")
        var retained: [[UInt8]]? = nil
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < .seconds(60) {
            retained = try await retainedPayloads(broker, topic: oldTopic)
            if retained == [] { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(retained == [], "the announcement under the dropped key is still retained")
        await site.stop()
        await watcher.stop()
    }
}

/// The payloads the broker delivers on subscribing to `topic` (its retained message, if any),
/// told apart from live ones by a probe published after subscribing.
private func retainedPayloads(_ broker: MosquittoBroker, topic: String) async throws -> [[UInt8]] {
    let client = try rawClient(broker)
    defer { client.stop() }
    guard await connected(client) else { return [[]] }
    try client.subscribe(topic)
    let probe = Array("probe-\(UUID().uuidString)".utf8)
    try client.publish(topic: topic, payload: probe, qos: 1, retain: false)
    var before: [[UInt8]] = []
    for await message in client.messages {
        if message.payload == probe { return before }
        if !message.payload.isEmpty { before.append(message.payload) }
    }
    return [[]]
}
