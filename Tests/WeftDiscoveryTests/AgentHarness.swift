import Foundation
import Logging
import Synchronization
import Testing
import WeftDiscovery
import WeftIdentity
import WeftTestSupport

/// One in-process site on the message channel, with what it has seen.
final class TestSite: Sendable {
    let name: String
    let agent: DiscoveryAgent
    let identity: SiteIdentity
    let stateDirectory: String
    private let seen = Mutex<[DirectoryEvent]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(
        _ name: String,
        broker: MosquittoBroker,
        moreBrokers: [MosquittoBroker] = [],
        key: String = "mesh-key-for-tests",
        previousKeys: [String] = [],
        topic: String = "weft-test/mesh",
        apps: [String] = ["web"],
        host: String = "127.0.0.1",
        useTLS: Bool = false,
        caFile: String? = nil,
        username: String? = nil,
        password: String? = nil,
        stateDirectory: String? = nil,
        messageBufferLimit: Int = 4096
    ) throws {
        self.name = name
        self.identity = try SiteIdentity.generate()
        let directory = stateDirectory ?? NSTemporaryDirectory() + "weft-site-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.stateDirectory = directory
        var logger = Logger(label: "test.\(name)")
        logger.logLevel = .critical
        agent = try DiscoveryAgent(
            configuration: .init(
                siteName: name,
                mesh: MeshKeys(key: key, topic: topic),
                previousMeshes: previousKeys.map { MeshKeys(key: $0, topic: topic) },
                mqtt: MQTTClientConfiguration(
                    host: host,
                    port: broker.port,
                    useTLS: useTLS,
                    caFile: caFile,
                    username: username,
                    password: password,
                    clientID: "test-\(name)-\(UUID().uuidString.prefix(6))",
                    keepAlive: 5,
                    messageBufferLimit: messageBufferLimit
                ),
                moreBrokers: moreBrokers.enumerated().map { index, more in
                    MQTTClientConfiguration(
                        host: host, port: more.port, clientID: "test-\(name)-\(index)-\(UUID().uuidString.prefix(6))",
                        keepAlive: 5, messageBufferLimit: messageBufferLimit)
                },
                stateDirectory: directory,
                softwareVersion: "test",
                endpoints: [.init(linkType: .tls, address: "198.18.7.7", port: 47101)],
                apps: apps
            ),
            identity: identity,
            logger: logger
        )
    }

    func start() {
        let running = Task { [self] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.agent.run() }
                group.addTask {
                    for await event in self.agent.events { self.record(event) }
                }
            }
        }
        task.withLock { $0 = running }
    }

    /// Leaves cleanly and waits for the agent to finish.
    func stop() async {
        agent.leave()
        await task.withLock { $0 }?.value
    }

    private func record(_ event: DirectoryEvent) {
        seen.withLock { $0.append(event) }
    }

    var events: [DirectoryEvent] { seen.withLock { $0 } }
    var peerNames: Set<String> { Set(agent.peers.keys) }

    func downs(of name: String) -> [DownReason] {
        events.compactMap { if case .down(name, let reason) = $0 { reason } else { nil } }
    }

    deinit {
        agent.leave()
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }
}

/// Polls until `condition` holds; returns how long it took, or nil on timeout.
func waitUntil(_ timeout: Duration, _ condition: () -> Bool) async -> Duration? {
    let clock = ContinuousClock()
    let start = clock.now
    while clock.now - start < timeout {
        if condition() { return clock.now - start }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition() ? clock.now - start : nil
}

/// A raw MQTT client for what an attacker or an eavesdropper can do.
func rawClient(_ broker: MosquittoBroker) throws -> MQTTClient {
    let client = try MQTTClient(
        configuration: MQTTClientConfiguration(
            host: "127.0.0.1", port: broker.port, clientID: "raw-\(UUID().uuidString.prefix(8))")
    )
    try client.start()
    return client
}

/// Waits for the raw client's connection.
func connected(_ client: MQTTClient) async -> Bool {
    for await event in client.connectionEvents {
        if event == .connected { return true }
    }
    return false
}
