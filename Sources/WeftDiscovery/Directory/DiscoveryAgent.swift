import Foundation
import Logging
import Metrics
import Synchronization
import WeftIdentity
import WeftWire

/// Runs this site's presence on the message channel and keeps the directory of the others.
///
/// It announces the site (retained, on its opaque presence topic) when it connects and on a
/// period, leaves a sealed last will that the broker publishes if the site vanishes, says
/// goodbye on a clean stop, and turns what it hears into `DirectoryEvent`s. The rules live in
/// `DirectoryStateMachine`; this type only carries its actions out.
///
/// With more than one broker (`messageChannel.mqtt.brokerServers`) it keeps a connection to
/// each, every connection with its own session and will: it announces on every broker it
/// reaches and merges what it hears, so one broker going away changes nothing while another
/// is up. A message heard through two brokers (bridged or clustered) is taken once.
public final class DiscoveryAgent: Sendable {
    public struct Configuration: Sendable {
        public var siteName: String
        /// The mesh key in force: what this site writes with.
        public var mesh: MeshKeys
        /// Keys being rotated out (`crypto.previousKeys`): read, and announced under too.
        public var previousMeshes: [MeshKeys]
        /// The brokers, the first being `messageChannel.mqtt.brokerServer`. Never empty.
        public var brokers: [MQTTClientConfiguration]
        /// The first broker.
        public var mqtt: MQTTClientConfiguration { brokers[0] }
        /// Where pinned peer fingerprints are kept.
        public var stateDirectory: String
        public var softwareVersion: String
        public var capabilities: UInt32
        public var endpoints: [SiteAnnouncement.Endpoint]
        public var apps: [String]
        /// How often the announcement is refreshed.
        public var refreshInterval: Duration
        public var freshnessWindow: Duration
        public var allowedClockSkew: Duration
        /// Whom to believe for a name without a pin (`crypto.trust`).
        public var trust: TrustMode
        /// Pins from the config (`crypto.pinnedSites`); they win over the trust file's.
        public var configuredPins: [String: CertificateFingerprint]
        /// Sites whose announced revocations apply here too (`crypto.revokers`).
        public var revokers: Set<String>
        /// The previous identity's endorsement of this one, after `weft identity --rotate`.
        public var endorsement: IdentityEndorsement?

        public init(
            siteName: String,
            mesh: MeshKeys,
            previousMeshes: [MeshKeys] = [],
            mqtt: MQTTClientConfiguration,
            moreBrokers: [MQTTClientConfiguration] = [],
            stateDirectory: String,
            softwareVersion: String,
            capabilities: UInt32 = 0,
            endpoints: [SiteAnnouncement.Endpoint] = [],
            apps: [String] = [],
            refreshInterval: Duration = .seconds(30),
            freshnessWindow: Duration = .seconds(120),
            allowedClockSkew: Duration = .seconds(30),
            trust: TrustMode = .firstUse,
            configuredPins: [String: CertificateFingerprint] = [:],
            revokers: Set<String> = [],
            endorsement: IdentityEndorsement? = nil
        ) {
            self.siteName = siteName
            self.mesh = mesh
            self.previousMeshes = previousMeshes
            self.brokers = [mqtt] + moreBrokers.prefix(DirectoryStateMachine.maxBrokers - 1)
            self.stateDirectory = stateDirectory
            self.softwareVersion = softwareVersion
            self.capabilities = capabilities
            self.endpoints = endpoints
            self.apps = apps
            self.refreshInterval = refreshInterval
            self.freshnessWindow = freshnessWindow
            self.allowedClockSkew = allowedClockSkew
            self.trust = trust
            self.configuredPins = configuredPins
            self.revokers = revokers
            self.endorsement = endorsement
        }
    }

    /// Directory changes, in order. Ends when the agent stops.
    public let events: AsyncStream<DirectoryEvent>

    let configuration: Configuration
    let identity: SiteIdentity
    let logger: Logger
    /// One per broker, in the configuration's order; the index is the broker's `via`.
    let clients: [MQTTClient]
    let shared: Shared
    private let keyCache = PublicKeyCache()
    private let trustStore: PeerTrustStore
    private let revocationStore: RevocationStore
    /// Random per process start, announced: peers see a restart as a new value.
    public let instance = UInt64.random(in: 1...UInt64.max)
    private let eventContinuation: AsyncStream<DirectoryEvent>.Continuation
    private let leaveSignal: AsyncStream<Void>
    private let leaveContinuation: AsyncStream<Void>.Continuation
    let clock = ContinuousClock()
    let started: ContinuousClock.Instant

    /// State shared with libmosquitto's thread (the will provider) and the agent's tasks.
    final class Shared: Sendable {
        /// One broker connection's state.
        struct Broker {
            var session: [UInt8]
            /// The session the next connection takes, announced before this one ends.
            var nextSession: [UInt8]?
            /// The key generation this connection's last will was sealed under.
            var willGeneration = 0
            /// A disconnect now is the agent's own, to take new keys.
            var rekeying = false
            var connected = false
        }

        struct State {
            var machine: DirectoryStateMachine
            var brokers: [Broker]
            /// The keys in force; `ringGeneration` counts changes.
            var ring: MeshKeyRing
            var ringGeneration = 0
            /// Connected to at least one broker.
            var connected: Bool { brokers.contains { $0.connected } }
            /// The brokers connected now, by index.
            var connectedBrokers: [Int] { brokers.indices.filter { brokers[$0].connected } }
            var lastReannounce: Duration = .seconds(-3600)
            var pinsDirty = false
            /// Names pinned on first use since the last save: only these are written, so a
            /// `weft trust forget` or a pin removed from the config is never written back.
            var learned: Set<String> = []
            var lastPinSave: Duration = .seconds(-3600)
            var lastAnnounce: Duration = .seconds(-3600)
            var lastDropLog: [DropReason: Duration] = [:]
            var budget: IntakeBudget
            var apps: [String]
            var endpoints: [SiteAnnouncement.Endpoint]
            /// The agent is leaving: a disconnect now is the one it asked for.
            var leaving = false
            /// When the certificate's expiry was last looked at.
            var lastExpiryCheck: Duration?
            /// When ignored revocations were last logged, by announcing site.
            var lastIgnoredLog: [String: Duration] = [:]
        }

        let state: Mutex<State>
        /// Held while an announcement is built and handed to the client: two announcing at
        /// once (the connection coming up, an endpoint learned) must not publish the older
        /// content last, which the broker would then retain.
        let announcing = Mutex<Int>(0)

        init(_ state: State) {
            self.state = Mutex(state)
        }
    }

    public init(configuration: Configuration, identity: SiteIdentity, logger: Logger) throws {
        self.configuration = configuration
        self.identity = identity
        self.logger = logger
        self.started = clock.now
        self.trustStore = PeerTrustStore(directory: configuration.stateDirectory)
        self.revocationStore = RevocationStore(directory: configuration.stateDirectory)
        let pins = try trustStore.load().merging(configuration.configuredPins) { _, configured in configured }
        let machine = DirectoryStateMachine(
            configuration: .init(
                ownName: configuration.siteName,
                ownFingerprint: identity.fingerprint,
                freshnessWindow: configuration.freshnessWindow,
                allowedClockSkew: configuration.allowedClockSkew,
                trust: configuration.trust,
                revokers: Self.pinnedRevokers(configuration.revokers, configuration.configuredPins, logger)
            ),
            pins: pins,
            revoked: try revocationStore.load()
        )
        // A site announces on every broker, so its honest rate through the intake is that many times one's.
        var budget = IntakeBudget.Configuration(queueLimit: configuration.mqtt.messageBufferLimit)
        budget.knownBurst *= Double(configuration.brokers.count)
        budget.knownPerSecond *= Double(configuration.brokers.count)
        let shared = Shared(
            .init(
                machine: machine,
                brokers: configuration.brokers.map { _ in Shared.Broker(session: Self.newSession()) },
                ring: MeshKeyRing(current: configuration.mesh, previous: configuration.previousMeshes),
                budget: IntakeBudget(configuration: budget),
                apps: configuration.apps,
                endpoints: configuration.endpoints))
        self.shared = shared
        (events, eventContinuation) = AsyncStream.makeStream(of: DirectoryEvent.self)
        (leaveSignal, leaveContinuation) = AsyncStream.makeStream(of: Void.self)

        self.clients = try configuration.brokers.indices.map { index in
            try Self.makeClient(
                configuration.brokers[index], broker: index, name: configuration.siteName, identity: identity,
                shared: shared, logger: logger)
        }
        for (index, client) in clients.enumerated() {
            client.setIntake { [weak self] message in self?.intake(&message, via: index) ?? false }
        }
    }

    /// Each connection gets a new session and a will bound to it: an old will, replayed, can
    /// never take down a site that has since reconnected, and one broker's will ends only the
    /// session on that broker.
    private static func makeClient(
        _ mqtt: MQTTClientConfiguration, broker index: Int, name: String, identity: SiteIdentity,
        shared: Shared, logger: Logger
    ) throws -> MQTTClient {
        try MQTTClient(configuration: mqtt) {
            let (keys, session) = shared.state.withLock { state in
                let session = state.brokers[index].nextSession ?? Self.newSession()
                state.brokers[index].nextSession = nil
                state.brokers[index].session = session
                state.brokers[index].willGeneration = state.ringGeneration
                return (state.ring.current, session)
            }
            let goodbye = SiteGoodbye(session: session, reason: .lastWill)
            let topic = keys.presenceTopic(for: name)
            do {
                let payload = try EnvelopeSealer(keys: keys).seal(
                    Self.message(.goodbye, name: name, identity: identity, body: goodbye.serialized()),
                    identity: identity,
                    topic: topic
                )
                return (topic, payload)
            } catch {
                logger.error("cannot seal the last will: \(error)")
                return nil
            }
        }
    }

    /// How a broker is named in log lines.
    func brokerName(_ index: Int) -> String {
        let mqtt = configuration.brokers[index]
        let host = mqtt.host.contains(":") ? "[\(mqtt.host)]" : mqtt.host
        return "\(mqtt.useTLS ? "mqtts" : "mqtt")://\(host):\(mqtt.port)"
    }

    /// Peers currently up.
    public var peers: [String: PeerInfo] {
        shared.state.withLock { $0.machine.peersUp }
    }

    /// The broker sessions `siteName` is up on here: one per broker its announcements came
    /// from (a last will ends one; the peer is down when none is left).
    public func liveSessions(of siteName: String) -> Int {
        shared.state.withLock { $0.machine.liveSessions(of: siteName) }
    }

    /// How many identities are revoked here (by this site or by revokers).
    public var revokedCount: Int {
        shared.state.withLock { $0.machine.revoked.count }
    }

    /// How many peers are up.
    public var peerCount: Int {
        shared.state.withLock { $0.machine.peersUpCount }
    }

    /// Messages lost because the queue to the directory was full (the intake keeps floods out,
    /// so this stays 0 unless the directory itself falls behind).
    public var messagesLostInQueue: Int { clients.reduce(0) { $0 + $1.droppedMessages } }

    /// How many brokers this site is connected to now, of `configuration.brokers.count`.
    public var connectedBrokerCount: Int {
        shared.state.withLock { $0.connectedBrokers.count }
    }

    /// Messages refused so far, by reason.
    public var dropCounts: [DropReason: Int] {
        shared.state.withLock { $0.machine.dropCounts }
    }

    /// Announces new endpoints (a detected public address changed), at once when connected.
    public func update(endpoints: [SiteAnnouncement.Endpoint]) {
        let announceNow = shared.state.withLock { state -> Bool in
            guard state.endpoints != endpoints else { return false }
            state.endpoints = endpoints
            return state.connected
        }
        if announceNow { announce() }
    }

    /// Announces a new list of exposed apps (changed over the API or by a reload).
    public func update(apps: [String]) {
        let announceNow = shared.state.withLock { state -> Bool in
            guard state.apps != apps else { return false }
            state.apps = apps
            return state.connected
        }
        if announceNow { announce() }
    }

    /// Reads the trust file again and takes `trust` and `configuredPins` (SIGHUP after
    /// `weft trust pin` or `forget`): peers no longer trusted go down at once, newly pinned ones
    /// come up from their retained announcements. Returns how many names are pinned now.
    ///
    /// The revocation file and `revokers` are taken too (after `weft trust revoke`): a peer now
    /// revoked goes down at once, and the announcement carries the new list.
    public func reloadTrust(
        trust: TrustMode, configuredPins: [String: CertificateFingerprint], revokers: Set<String> = []
    ) throws(IdentityError) -> Int {
        // The file is the truth (a pin learned in the last second and not yet saved is learned
        // again from the peer's next announcement).
        let pins = try trustStore.load().merging(configuredPins) { _, configured in configured }
        let stored = try revocationStore.load()
        let (actions, connected, revokedHereChanged) = shared.state.withLock { state in
            state.pinsDirty = false
            state.learned.removeAll()
            state.budget.keep(only: Set(pins.keys))
            let before = state.machine.revokedHere
            var actions = state.machine.replaceTrust(pins: pins, trust: trust)
            actions += state.machine.replaceRevocations(
                stored, revokers: Self.pinnedRevokers(revokers, configuredPins, logger))
            return (actions, state.connected, state.machine.revokedHere != before)
        }
        if revokedHereChanged && connected { announce() }
        // Subscribing again makes the broker send every retained announcement again, so a
        // site pinned just now is up at once instead of at its next refresh.
        if connected { subscribe() }
        let count = pins.count
        perform(actions, now: now())
        return count
    }

    /// Takes a new mesh key or new previous keys (SIGHUP after `crypto.key` or
    /// `crypto.previousKeys` changed). Peers and tunnels are untouched: the agent reconnects to
    /// the broker (cleanly, so no will is published) to subscribe under the new keys and to
    /// leave a will sealed under the new current key, then announces under every key. Its
    /// retained announcements under keys it no longer has are cleared.
    public func replaceKeys(_ ring: MeshKeyRing) {
        // Under the keys each connection's will was sealed with, first.
        for index in shared.state.withLock({ $0.connectedBrokers }) { announceNextSession(on: index) }
        let (dropped, connected) = shared.state.withLock { state in
            let kept = Set(ring.all.map { $0.presenceTopic(for: configuration.siteName) })
            let dropped = state.ring.all.map { $0.presenceTopic(for: configuration.siteName) }.filter {
                !kept.contains($0)
            }
            state.ring = ring
            state.ringGeneration += 1
            let connected = state.connectedBrokers
            for index in connected { state.brokers[index].rekeying = true }
            return (dropped, connected)
        }
        logger.notice(
            "message channel: new mesh keys",
            metadata: ["previousKeys": .stringConvertible(ring.previous.count)])
        // A broker not connected now takes them with its next connection.
        for index in connected {
            for topic in dropped {
                do {
                    try clients[index].publish(topic: topic, payload: [], qos: 1, retain: true)
                } catch {
                    logger.warning(
                        "message channel: cannot clear an old announcement: \(error)",
                        metadata: ["broker": .string(brokerName(index))])
                }
            }
            clients[index].reconnect()
        }
    }

    /// Stops the agent: goodbye, clean disconnect, `run()` returns.
    public func leave() {
        leaveContinuation.yield()
    }

    /// Runs until `leave()` or cancellation.
    public func run() async {
        for (index, client) in clients.enumerated() {
            do {
                try client.start()
            } catch {
                logger.error("message channel: \(error)", metadata: ["broker": .string(brokerName(index))])
            }
        }
        logger.info(
            "message channel starting",
            metadata: ["broker": .string(clients.indices.map(brokerName).joined(separator: ","))]
        )
        await withTaskGroup(of: Void.self) { group in
            for (index, client) in clients.enumerated() {
                group.addTask {
                    for await event in client.connectionEvents { self.handle(event, broker: index) }
                }
                group.addTask {
                    for await message in client.messages { self.handle(message, via: index) }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: .milliseconds(250))
                    } catch {
                        return
                    }
                    self.tick()
                }
            }
            group.addTask {
                for await _ in self.leaveSignal { return }
            }
            await group.next()
            self.savePins(now: self.now(), force: true)
            self.sayGoodbye()
            self.shared.state.withLock { $0.leaving = true }
            for client in self.clients { client.stop() }
            group.cancelAll()
        }
        eventContinuation.finish()
        logger.info("message channel stopped")
    }

    // MARK: carrying out

    private func handle(_ event: MQTTConnectionEvent, broker index: Int) {
        let broker: Logger.Metadata = ["broker": .string(brokerName(index))]
        switch event {
        case .connected:
            let staleWill = shared.state.withLock { state in
                state.brokers[index].rekeying = false
                return state.brokers[index].willGeneration != state.ringGeneration
            }
            logger.info("message channel connected", metadata: broker)
            if staleWill {
                // The keys changed while this connection was being made: its will is sealed
                // under the old ones. Connect again (cleanly) to leave one under the new keys.
                shared.state.withLock {
                    $0.brokers[index].connected = true
                    $0.brokers[index].rekeying = true
                }
                announceNextSession(on: index)
                clients[index].reconnect()
                return
            }
            // Subscribed before anything announces this site on this connection (an endpoint
            // update waits for `connected`): a peer answering the announcement with a
            // rendezvous finds the subscription in place.
            subscribe(on: index)
            let up = shared.state.withLock { state in
                state.brokers[index].connected = true
                return state.connectedBrokers.count
            }
            Gauge(label: "weft_discovery_brokers_connected").record(up)
            announce(on: [index])
        case .refused(let reason):
            logger.error("message channel: the broker refused the connection: \(reason)", metadata: broker)
        case .disconnected(let reason):
            let (wasConnected, leaving, rekeying, stillUp) = shared.state.withLock { state in
                let before = state.brokers[index]
                state.brokers[index].connected = false
                return (before.connected, state.leaving, before.rekeying, state.connectedBrokers.count)
            }
            Gauge(label: "weft_discovery_brokers_connected").record(stillUp)
            var metadata = broker
            if clients.count > 1 { metadata["brokersUp"] = .string("\(stillUp)/\(clients.count)") }
            if leaving {
                logger.debug("message channel disconnected on leaving", metadata: metadata)
            } else if rekeying {
                logger.info("message channel: reconnecting under the new keys", metadata: metadata)
            } else if wasConnected {
                logger.warning("message channel disconnected: \(reason); reconnecting", metadata: metadata)
            } else {
                logger.debug("message channel: cannot reach the broker: \(reason); retrying", metadata: metadata)
            }
        }
    }

    /// Judges a message on libmosquitto's thread, before it is queued: junk, forgeries and a
    /// sender over its budget never take a place in the queue that real messages need.
    private func intake(_ message: inout MQTTMessage, via: Int) -> Bool {
        if message.payload.isEmpty && !message.oversized { return true }  // a cleared retained message
        let now = self.now()
        if message.oversized {
            refuse(.oversized, now: now)
            return false
        }
        let (ring, generation) = shared.state.withLock { ($0.ring, $0.ringGeneration) }
        let retained = message.retained
        // Revoked senders, repeats and stale messages go before the signature check: they are
        // dropped whatever it says. (Nothing is recorded here: only a verified message is.)
        let opened = ring.open(message.payload, topic: message.topic, keyCache: keyCache) { unverified, fingerprint in
            self.shared.state.withLock { state in
                state.machine.revoked[fingerprint] != nil
                    ? .revoked
                    : state.machine.precheck(unverified, retained: retained, via: via, now: now)
            }
        }
        switch opened {
        case .failure(let reason):
            refuse(reason, now: now)
            return false
        case .success(let verified):
            message.opened = (verified, generation)
            let name = verified.message.senderName
            let admitted = shared.state.withLock { state in
                let pinned =
                    state.machine.pins[name] == verified.fingerprint
                    || (name == configuration.siteName && verified.fingerprint == identity.fingerprint)
                return state.budget.admit(pinned ? .known(name) : .unknown, now: now.uptime)
            }
            if !admitted { refuse(.flooded, now: now) }
            return admitted
        }
    }

    private func refuse(_ reason: DropReason, now: DirectoryStateMachine.Now) {
        let actions = shared.state.withLock { $0.machine.refused(reason) }
        count(actions)
        perform(actions, now: now)
    }

    private func handle(_ message: MQTTMessage, via: Int) {
        if message.payload.isEmpty { return }  // a cleared retained message
        let now = self.now()
        let actions: [DirectoryStateMachine.Action]
        // Admitted by `intake`, which opened it; opened again only if the keys changed since.
        let (ring, generation) = shared.state.withLock { ($0.ring, $0.ringGeneration) }
        let opened =
            if let opened = message.opened, opened.keyGeneration == generation {
                Result<VerifiedDiscoveryMessage, DropReason>.success(opened.message)
            } else {
                ring.open(message.payload, topic: message.topic, keyCache: keyCache)
            }
        switch opened {
        case .failure(let reason):
            actions = shared.state.withLock { $0.machine.refused(reason) }
        case .success(let verified):
            actions = shared.state.withLock {
                $0.machine.receive(verified, retained: message.retained, via: via, now: now)
            }
        }
        count(actions)
        perform(actions, now: now)
    }

    private func count(_ actions: [DirectoryStateMachine.Action]) {
        var dropped = false
        for case .drop(let reason, _, _) in actions {
            dropped = true
            Counter(label: "weft_discovery_messages_dropped_total", dimensions: [("reason", "\(reason)")]).increment()
        }
        if !dropped { Counter(label: "weft_discovery_messages_accepted_total").increment() }
    }

    private func tick() {
        let now = self.now()
        warnIfExpiring(now)
        let (actions, announceNow) = shared.state.withLock { state in
            let actions = state.machine.tick(now: now)
            let due = state.connected && now.uptime - state.lastAnnounce >= configuration.refreshInterval
            return (actions, due)
        }
        perform(actions, now: now)
        savePins(now: now)
        if announceNow { announce() }
    }

    private func perform(_ actions: [DirectoryStateMachine.Action], now: DirectoryStateMachine.Now) {
        for action in actions {
            switch action {
            case .emit(let event):
                log(event)
                eventContinuation.yield(event)
            case .pin(let name, let fingerprint):
                logger.info(
                    "trusting site \(name) on first use", metadata: ["fingerprint": .string(fingerprint.description)])
                shared.state.withLock {
                    $0.pinsDirty = true
                    $0.learned.insert(name)
                }
            case .drop(let reason, let sender, let quiet):
                logDrop(reason, sender: sender, quiet: quiet, now: now)
            case .saveRevocations(let lifted):
                saveRevocations()
                // A lifted identity's retained announcement was refused: the broker sends it
                // again on subscribing, so the site is up now rather than at its next refresh.
                if lifted && shared.state.withLock({ $0.connected }) { subscribe() }
            case .ignoredRevocations(let site, let count):
                // At most once a minute per site: a member changing its list cannot flood the log.
                let due = shared.state.withLock { state in
                    if let last = state.lastIgnoredLog[site], now.uptime - last < .seconds(60) { return false }
                    if state.lastIgnoredLog.count >= 1024 { state.lastIgnoredLog.removeAll() }
                    state.lastIgnoredLog[site] = now.uptime
                    return true
                }
                guard due else { continue }
                logger.warning(
                    "not applying revocations announced by a site that is not in crypto.revokers",
                    metadata: ["site": .string(site), "revocations": .stringConvertible(count)])
            case .repinned(let site, let old, let new):
                logger.notice(
                    "re-pinned a site that rotated its identity: its pinned identity endorsed the new one",
                    metadata: ["peer": .string(site), "from": .string(old.description), "to": .string(new.description)])
                if configuration.configuredPins[site] != nil {
                    logger.warning(
                        "crypto.pinnedSites still pins the old identity: update it, or a reload or restart refuses the site",
                        metadata: ["peer": .string(site), "fingerprint": .string(new.description)])
                }
            case .ownWillHeard:
                // At most every 5 s: a member replaying an old will of ours gets little for it.
                let due = shared.state.withLock { state in
                    guard state.connected, now.uptime - state.lastReannounce >= .seconds(5) else { return false }
                    state.lastReannounce = now.uptime
                    return true
                }
                if due {
                    logger.info("message channel: a broker published a last will of this site; announcing again")
                    announce()
                }
            case .revokedHere(let site):
                logger.error(
                    "this site's identity was revoked by another site: sites that take its revocations refuse this one",
                    metadata: ["revoker": .string(site), "fingerprint": .string(identity.fingerprint.description)])
            }
        }
    }

    /// Writes the revocations learned from revokers; the operator's own (`weft trust revoke`,
    /// which writes the file while the site runs) are taken from the file as they are there.
    /// The revokers whose identity the operator pinned; any other is left out (the config
    /// refuses them too): a name learned on first use is whoever claimed it first.
    static func pinnedRevokers(
        _ revokers: Set<String>, _ configuredPins: [String: CertificateFingerprint], _ logger: Logger
    ) -> Set<String> {
        let unpinned = revokers.filter { configuredPins[$0] == nil }
        if !unpinned.isEmpty {
            logger.error(
                "ignoring revokers not pinned in crypto.pinnedSites",
                metadata: ["revokers": .string(unpinned.sorted().joined(separator: ","))])
        }
        return revokers.subtracting(unpinned)
    }

    private func saveRevocations() {
        let learned = shared.state.withLock { $0.machine.revoked.filter { $0.value.revokedBy != nil } }
        do {
            try revocationStore.update { file in
                file = learned.merging(file.filter { $0.value.revokedBy == nil }) { _, own in own }
            }
        } catch {
            logger.error("cannot save revoked peers: \(error)")
        }
    }

    /// Says, at start and then once a day, that this site's certificate is about to expire (or
    /// has): peers refuse an expired identity, and only `weft identity --rotate` makes a new one.
    private func warnIfExpiring(_ now: DirectoryStateMachine.Now) {
        let due = shared.state.withLock { state in
            guard state.lastExpiryCheck.map({ now.uptime - $0 >= .seconds(86_400) }) ?? true else { return false }
            state.lastExpiryCheck = now.uptime
            return true
        }
        guard due else { return }
        let left = identity.notValidAfter.timeIntervalSince1970 - Double(now.wallMillis) / 1000
        let metadata: Logger.Metadata = [
            "notValidAfter": .string(identity.notValidAfter.formatted(.iso8601)),
            "fingerprint": .string(identity.fingerprint.description),
        ]
        if left <= 0 {
            logger.error(
                "this site's identity has expired and peers refuse it: run `weft identity --rotate` and restart",
                metadata: metadata)
        } else if left < SiteIdentity.renewalWarning {
            logger.warning(
                "this site's identity expires in \(Int(left / 86_400)) days: run `weft identity --rotate` and restart",
                metadata: metadata)
        }
    }

    /// Writes new pins to disk, at most once a second (a mesh forming pins many sites at once).
    private func savePins(now: DirectoryStateMachine.Now, force: Bool = false) {
        let learned = shared.state.withLock { state -> [String: CertificateFingerprint]? in
            guard state.pinsDirty, force || now.uptime - state.lastPinSave >= .seconds(1) else { return nil }
            state.pinsDirty = false
            state.lastPinSave = now.uptime
            defer { state.learned.removeAll() }
            return state.machine.pins.filter { state.learned.contains($0.key) }
        }
        guard let learned, !learned.isEmpty else { return }
        do {
            try trustStore.update { stored in stored.merge(learned) { _, new in new } }
        } catch {
            logger.error("cannot save trusted peers: \(error)")
        }
    }

    private func log(_ event: DirectoryEvent) {
        switch event {
        case .up(let peer):
            logger.info(
                "peer up",
                metadata: [
                    "peer": .string(peer.siteName), "fingerprint": .string(peer.fingerprint.description),
                    "endpoints": .stringConvertible(peer.announcement.endpoints.count),
                    "apps": .string(peer.announcement.apps.joined(separator: ",")),
                ]
            )
        case .changed(let peer):
            logger.info("peer changed", metadata: ["peer": .string(peer.siteName)])
        case .down(let name, let reason):
            logger.info("peer down", metadata: ["peer": .string(name), "reason": .string(reason.rawValue)])
        case .rendezvous(let name, let rendezvous):
            logger.debug(
                "rendezvous", metadata: ["peer": .string(name), "answer": .stringConvertible(rendezvous.answer)])
        }
    }

    /// Drops are logged, but at most once per reason every 10 s, with the running count, so a
    /// flood of garbage cannot flood the log too.
    private func logDrop(_ reason: DropReason, sender: String?, quiet: Bool, now: DirectoryStateMachine.Now) {
        if quiet {
            logger.debug("message channel: ignored a message", metadata: ["reason": .string(reason.description)])
            return
        }
        let (shouldLog, count) = shared.state.withLock { state -> (Bool, Int) in
            let count = state.machine.dropCounts[reason] ?? 0
            if let last = state.lastDropLog[reason], now.uptime - last < .seconds(10) { return (false, count) }
            state.lastDropLog[reason] = now.uptime
            return (true, count)
        }
        guard shouldLog else { return }
        var metadata: Logger.Metadata = ["reason": .string(reason.description), "total": .stringConvertible(count)]
        if let sender { metadata["claimedSender"] = .string(sender) }
        logger.warning("message channel: dropped a message", metadata: metadata)
    }
}
