import Logging
import WeftDiscovery
import WeftTransport

/// The running site's apps, changed while it runs: over the API, and by a reload of
/// `config.yaml` (SIGHUP). Changes run one at a time, start to finish (`exclusively`): an
/// actor alone would let a second change in at the first one's `await` (binding a socket),
/// past a duplicate check the first had not yet made true. Each is applied whole or not at
/// all: a local socket that cannot be opened, or a state file that cannot be written, leaves
/// everything as it was.
///
/// An app removed or changed ends its own open streams (their sockets get an RST) and no other;
/// tunnels and every other stream carry on.
public actor SiteRuntime {
    public nonisolated let siteName: String
    public nonisolated let fingerprint: String
    public nonisolated let softwareVersion: String
    public nonisolated let startedAt = ContinuousClock.now
    nonisolated let manager: TunnelManager
    nonisolated let agent: DiscoveryAgent
    private var configuration: SiteConfiguration
    private var overlay: AppOverlay
    private let loader = ConfigLoader()
    /// The apps in effect, computed again whenever the file's lists or the overlay change.
    private var apps: AppsInEffect
    /// Whether a change is running, and the changes waiting for it to end.
    private var changing = false
    private var waitingChanges: [CheckedContinuation<Void, Never>] = []
    private var listeners: [String: RemoteAppListener] = [:]
    private let remoteConnections = ConnectionTracker()
    private let logger: Logger

    public init(
        configuration: SiteConfiguration, fingerprint: String, softwareVersion: String, overlay: AppOverlay,
        manager: TunnelManager, agent: DiscoveryAgent, logger: Logger
    ) {
        self.siteName = configuration.siteName
        self.fingerprint = fingerprint
        self.softwareVersion = softwareVersion
        self.configuration = configuration
        self.overlay = overlay
        self.manager = manager
        self.agent = agent
        self.logger = logger
        self.apps = Self.appsInEffect(configuration, overlay, loader: loader, logger: logger)
    }

    private static func appsInEffect(
        _ configuration: SiteConfiguration, _ overlay: AppOverlay, loader: ConfigLoader, logger: Logger
    ) -> AppsInEffect {
        let apps = AppsInEffect(
            exposed: configuration.localExposedApps, remote: configuration.remoteApps, overlay: overlay,
            ownSite: configuration.siteName, loader: loader)
        for entry in apps.undecodable {
            logger.error(
                "an app added over the API no longer decodes and is not in effect; remove it over the API or from \(AppOverlay.fileName)",
                metadata: ["entry": "\(entry)"])
        }
        return apps
    }

    /// Runs one change at a time, start to finish, however many callers await here.
    private func exclusively<Result, Failure: Error>(
        _ change: () async throws(Failure) -> Result
    ) async throws(Failure) -> Result {
        while changing {
            await withCheckedContinuation { waitingChanges.append($0) }
        }
        changing = true
        defer {
            changing = false
            if !waitingChanges.isEmpty { waitingChanges.removeFirst().resume() }
        }
        return try await change()
    }

    // MARK: reading

    /// The peers the directory has up now, by name.
    public nonisolated var peers: [String: PeerInfo] { agent.peers }

    /// Peers this site has no path to, with the reason (see `NoPathWatch`).
    public nonisolated var peersWithoutPath: [String: String] { manager.peersWithoutPath }

    /// Every tunnel as it is now, by peer name.
    public nonisolated func tunnels() async -> [TunnelSnapshot] { await manager.tunnelSnapshots() }

    /// Blocks or unblocks one link of a tunnel (no data on it; it stays up); false if unknown.
    public nonisolated func setLinkBlocked(peer: String, link: UInt32, _ blocked: Bool) async -> Bool {
        await manager.setBlocked(peer: peer, link: link, blocked)
    }

    /// Whether `peer` is known at all: up in the directory, or with a tunnel.
    public nonisolated func knows(peer: String) -> Bool {
        agent.peers[peer] != nil || manager.currentTunnel(to: peer) != nil
    }

    /// The tunnel to `peer` once it has a link (see `TunnelManager.tunnel(to:within:)`).
    public nonisolated func tunnel(to peer: String, within timeout: Duration) async -> TunnelDriver? {
        await manager.tunnel(to: peer, within: timeout)
    }

    /// The exposed apps in effect, with where each comes from.
    public var exposedApps: [(app: ExposedAppConfig, source: AppSource)] { apps.exposed }

    /// The remote apps in effect, with where each comes from.
    public var remoteApps: [(app: RemoteAppConfig, source: AppSource)] { apps.remote }

    // MARK: starting and stopping

    /// Opens the local socket of every remote app in effect; throws (and closes those opened)
    /// if one cannot be opened. Tells the tunnel manager and the message channel the apps.
    public func start() async throws {
        try await exclusively { () async throws -> Void in try await startListeners() }
    }

    private func startListeners() async throws {
        for (app, _) in remoteApps {
            do {
                listeners[RemoteAppListener.key(app)] = try await bind(app)
            } catch {
                await closeListeners()
                throw error
            }
        }
        publishApps()
    }

    /// Closes every remote app's local socket.
    public func stop() async {
        await exclusively { await closeListeners() }
    }

    private func closeListeners() async {
        for listener in listeners.values { await listener.close() }
        listeners.removeAll()
    }

    private func bind(_ app: RemoteAppConfig) async throws -> RemoteAppListener {
        try await RemoteAppListener.bind(
            app, manager: manager, connectTimeout: .seconds(configuration.tunnel.connectTimeout),
            connections: remoteConnections, sockets: manager.socketBudget, logger: logger)
    }

    /// The tunnel manager serves and dials for the apps in effect; the peers learn them.
    private func publishApps() {
        let exposed = exposedApps.map(\.app)
        manager.appsChanged(usedSites: Set(remoteApps.map(\.app.siteName)), exposedApps: exposed)
        agent.update(apps: exposed.map(\.appName))
        manager.appTraffic.keep(
            only: Set(
                exposed.map { AppTraffic.Key.exposed($0.appName) }
                    + remoteApps.map { AppTraffic.Key.remote(site: $0.app.siteName, app: $0.app.appName) }))
    }

    /// What an app in effect carried (bytes both ways, streams).
    public nonisolated func traffic(_ key: AppTraffic.Key) -> AppTrafficCounts { manager.appTraffic.counts(key) }

    // MARK: changes over the API

    public func addExposedApp(_ app: ExposedAppConfig) async throws(SiteRuntimeError) {
        try await exclusively { () throws(SiteRuntimeError) in try addExposed(app) }
    }

    private func addExposed(_ app: ExposedAppConfig) throws(SiteRuntimeError) {
        if let conflict = apps.conflict(exposing: app) { throw conflict }
        var changed = overlay
        changed.addedExposedApps.append(ExposedAppDocument(app))
        try save(changed)
        publishApps()
        logger.notice("exposed app added", metadata: ["app": "\(app.appName)", "via": "api"])
    }

    public func removeExposedApp(named name: String) async throws(SiteRuntimeError) {
        try await exclusively { () throws(SiteRuntimeError) in try removeExposed(named: name) }
    }

    private func removeExposed(named name: String) throws(SiteRuntimeError) {
        guard exposedApps.contains(where: { $0.app.appName == name }) else {
            throw SiteRuntimeError(.notFound, "no exposed app named \"\(name)\"")
        }
        var changed = overlay
        changed.addedExposedApps.removeAll { $0.appName == name }
        if configuration.localExposedApps.contains(where: { $0.appName == name }) {
            changed.remove(exposed: name)
        }
        try save(changed)
        publishApps()
        let ended = manager.endStreams(ofExposedApp: name)
        logger.notice("exposed app removed", metadata: ["app": "\(name)", "via": "api", "streamsEnded": "\(ended)"])
    }

    /// Puts `app` in place of the exposed app named `name` (which it may rename): the change is
    /// kept like an added app, and the old app's open streams end.
    public func replaceExposedApp(named name: String, with app: ExposedAppConfig) async throws(SiteRuntimeError) {
        try await exclusively { () throws(SiteRuntimeError) in try replaceExposed(named: name, with: app) }
    }

    private func replaceExposed(named name: String, with app: ExposedAppConfig) throws(SiteRuntimeError) {
        guard let old = exposedApps.first(where: { $0.app.appName == name })?.app else {
            throw SiteRuntimeError(.notFound, "no exposed app named \"\(name)\"")
        }
        if let conflict = apps.conflict(exposing: app, replacing: name) { throw conflict }
        var changed = overlay
        changed.addedExposedApps.removeAll { $0.appName == name }
        if app.appName != name && configuration.localExposedApps.contains(where: { $0.appName == name }) {
            changed.remove(exposed: name)
        }
        changed.addedExposedApps.append(ExposedAppDocument(app))
        try save(changed)
        publishApps()
        let ended = old == app ? 0 : manager.endStreams(ofExposedApp: name)
        logger.notice(
            "exposed app changed",
            metadata: ["app": "\(name)", "now": "\(app.appName)", "via": "api", "streamsEnded": "\(ended)"])
    }

    public func addRemoteApp(_ app: RemoteAppConfig) async throws(SiteRuntimeError) {
        try await exclusively { () async throws(SiteRuntimeError) in try await addRemote(app) }
    }

    private func addRemote(_ app: RemoteAppConfig) async throws(SiteRuntimeError) {
        let name = AppOverlay.key(site: app.siteName, app: app.appName)
        if let conflict = apps.conflict(using: app) { throw conflict }
        if case .unix(let path) = app.localSocket,
            let problem = configuration.restfulApi.problem(withAPISocketPath: path)
        {
            logger.warning("remote app refused", metadata: ["app": "\(name)", "via": "api", "reason": "\(problem)"])
            throw SiteRuntimeError(.forbidden, problem, field: "localSocket")
        }
        let listener: RemoteAppListener
        do {
            listener = try await bind(app)
        } catch {
            throw SiteRuntimeError(.cannotListen, "cannot listen on \(app.localSocket): \(error)", field: "localSocket")
        }
        var changed = overlay
        changed.addedRemoteApps.append(RemoteAppDocument(app))
        do {
            try save(changed)
        } catch {
            await listener.close()
            throw error
        }
        listeners[RemoteAppListener.key(app)] = listener
        publishApps()
        logger.notice("remote app added", metadata: ["app": "\(name)", "via": "api"])
    }

    public func removeRemoteApp(site: String, app name: String) async throws(SiteRuntimeError) {
        try await exclusively { () async throws(SiteRuntimeError) in try await removeRemote(site: site, app: name) }
    }

    private func removeRemote(site: String, app name: String) async throws(SiteRuntimeError) {
        let key = AppOverlay.key(site: site, app: name)
        let entries = remoteApps.filter { $0.app.siteName == site && $0.app.appName == name }.map(\.app)
        guard !entries.isEmpty else {
            throw SiteRuntimeError(.notFound, "no remote app \(key)")
        }
        var changed = overlay
        changed.addedRemoteApps.removeAll { AppOverlay.key(site: $0.siteName, app: $0.appName) == key }
        if configuration.remoteApps.contains(where: { $0.siteName == site && $0.appName == name }) {
            changed.remove(remote: key)
        }
        try save(changed)
        var ended = 0
        for entry in entries {
            await listeners.removeValue(forKey: RemoteAppListener.key(entry))?.close()
            ended += remoteConnections.abortAll(RemoteAppListener.key(entry))
        }
        publishApps()
        logger.notice("remote app removed", metadata: ["app": "\(key)", "via": "api", "clientsEnded": "\(ended)"])
    }

    /// Puts `app` in place of the remote app `site/name` (every entry of it). A new local
    /// socket opens before the old ones close; on the same socket the old one closes first and
    /// opens again if the new cannot: either way a failure leaves the app as it was.
    public func replaceRemoteApp(site: String, app name: String, with app: RemoteAppConfig)
        async throws(SiteRuntimeError)
    {
        try await exclusively { () async throws(SiteRuntimeError) in
            try await replaceRemote(site: site, app: name, with: app)
        }
    }

    private func replaceRemote(site: String, app name: String, with app: RemoteAppConfig) async throws(SiteRuntimeError)
    {
        let key = AppOverlay.key(site: site, app: name)
        let entries = remoteApps.filter { $0.app.siteName == site && $0.app.appName == name }.map(\.app)
        guard !entries.isEmpty else {
            throw SiteRuntimeError(.notFound, "no remote app \(key)")
        }
        let newKey = AppOverlay.key(site: app.siteName, app: app.appName)
        if let conflict = apps.conflict(using: app, replacing: key) { throw conflict }
        if case .unix(let path) = app.localSocket,
            let problem = configuration.restfulApi.problem(withAPISocketPath: path)
        {
            logger.warning("remote app refused", metadata: ["app": "\(newKey)", "via": "api", "reason": "\(problem)"])
            throw SiteRuntimeError(.forbidden, problem, field: "localSocket")
        }
        var changed = overlay
        changed.addedRemoteApps.removeAll { AppOverlay.key(site: $0.siteName, app: $0.appName) == key }
        if newKey != key && configuration.remoteApps.contains(where: { $0.siteName == site && $0.appName == name }) {
            changed.remove(remote: key)
        }
        changed.addedRemoteApps.append(RemoteAppDocument(app))
        // Nothing changed but where the app is kept (a file's app saved as is): its socket
        // and its clients stay.
        if entries == [app] {
            try save(changed)
            publishApps()
            logger.notice("remote app saved unchanged", metadata: ["app": "\(key)", "via": "api"])
            return
        }
        // The entry on the same socket, if any, gives its socket up first; its clients are
        // ended only once the change is made (a failure leaves them be).
        let sameSocket = entries.filter { $0.localSocket == app.localSocket }
        let clients = entries.flatMap { remoteConnections.sockets(RemoteAppListener.key($0)) }
        for entry in sameSocket {
            await listeners.removeValue(forKey: RemoteAppListener.key(entry))?.close()
        }
        let listener: RemoteAppListener
        do {
            listener = try await bind(app)
        } catch {
            await reopen(sameSocket)
            throw SiteRuntimeError(.cannotListen, "cannot listen on \(app.localSocket): \(error)", field: "localSocket")
        }
        do {
            try save(changed)
        } catch {
            await listener.close()
            await reopen(sameSocket)
            throw error
        }
        for entry in entries where entry.localSocket != app.localSocket {
            await listeners.removeValue(forKey: RemoteAppListener.key(entry))?.close()
        }
        let ended = ConnectionTracker.abort(clients)
        listeners[RemoteAppListener.key(app)] = listener
        publishApps()
        logger.notice(
            "remote app changed",
            metadata: ["app": "\(key)", "now": "\(newKey)", "via": "api", "clientsEnded": "\(ended)"])
    }

    /// Opens the sockets of `entries` again after a change that failed (logged if one cannot).
    private func reopen(_ entries: [RemoteAppConfig]) async {
        for entry in entries {
            do {
                listeners[RemoteAppListener.key(entry)] = try await bind(entry)
            } catch {
                logger.error(
                    "cannot listen again after a failed change; the app stays closed until the next change or reload",
                    metadata: ["app": "\(RemoteAppListener.key(entry))", "error": "\(error)"])
            }
        }
    }

    private func save(_ changed: AppOverlay) throws(SiteRuntimeError) {
        do {
            try changed.save(stateDirectory: configuration.stateDir)
        } catch {
            throw SiteRuntimeError(.cannotSave, "cannot save the change in \(configuration.stateDir): \(error)")
        }
        overlay = changed
        apps = Self.appsInEffect(configuration, overlay, loader: loader, logger: logger)
    }

    // MARK: reload

    /// What a reload changed.
    public struct ReloadSummary: Sendable, CustomStringConvertible {
        public var exposedAdded: [String] = []
        public var exposedRemoved: [String] = []
        public var exposedChanged: [String] = []
        public var remoteAdded: [String] = []
        public var remoteRemoved: [String] = []
        public var remoteChanged: [String] = []
        /// Remote apps whose socket could not be opened (they stay closed until the next reload).
        public var failed: [String] = []
        /// Settings that changed but take effect only after a restart.
        public var needRestart: [String] = []
        /// Trust mode and pins in force after the reload (the trust file is read again).
        public var trust: String?
        /// The mesh keys, when `crypto.key` or `crypto.previousKeys` changed.
        public var keys: String?
        /// `speedtest.allowDownload`, when it changed.
        public var speedtest: String?

        public var description: String {
            var parts: [String] = []
            for (label, names) in [
                ("exposed added", exposedAdded), ("exposed removed", exposedRemoved),
                ("exposed changed", exposedChanged), ("remote added", remoteAdded),
                ("remote removed", remoteRemoved), ("remote changed", remoteChanged), ("failed", failed),
                ("need a restart", needRestart),
            ] where !names.isEmpty {
                parts.append("\(label): \(names.joined(separator: ", "))")
            }
            if parts.isEmpty { parts.append("no app changed") }
            if let trust { parts.append("trust: \(trust)") }
            if let keys { parts.append("mesh keys: \(keys)") }
            if let speedtest { parts.append("speed test: \(speedtest)") }
            return parts.joined(separator: "; ")
        }
    }

    /// Takes a new `config.yaml`: apps added, removed or changed take effect at once (changes
    /// made over the API stay on top); tunnels and the streams of unchanged apps carry on.
    /// The trust file and `crypto.trust`/`pinnedSites` are read again; a new `crypto.key` or
    /// `previousKeys` is taken by the message channel (a key rotation: tunnels carry on). Other
    /// settings that changed are named in the summary: they need a restart.
    @discardableResult
    public func reload(_ new: SiteConfiguration) async -> ReloadSummary {
        await exclusively { await apply(new) }
    }

    private func apply(_ new: SiteConfiguration) async -> ReloadSummary {
        var summary = ReloadSummary()
        // A topic derived from the key moves with the key: that is a key change, not a channel change.
        var newChannel = new.messageChannel
        if newChannel.mqtt.topicIsDerived && configuration.messageChannel.mqtt.topicIsDerived {
            newChannel.mqtt.topic = configuration.messageChannel.mqtt.topic
        }
        let keysChanged =
            new.crypto.key != configuration.crypto.key || new.crypto.previousKeys != configuration.crypto.previousKeys
        let channelChanged = newChannel != configuration.messageChannel
        for (name, changed) in [
            ("siteName", new.siteName != configuration.siteName),
            // Keys move without a restart, but not together with a channel that does not.
            ("crypto.key", keysChanged && channelChanged),
            ("messageChannel", channelChanged),
            ("tunnel", new.tunnel != configuration.tunnel), ("restfulApi", new.restfulApi != configuration.restfulApi),
            ("stateDir", new.stateDir != configuration.stateDir), ("stun", new.stun != configuration.stun),
            ("logger", new.logger != configuration.logger),
        ] where changed {
            summary.needRestart.append(name)
        }
        // Pins are read again (after `weft trust pin` or `forget`); peers no longer trusted go down.
        do {
            let pins = try agent.reloadTrust(
                trust: new.crypto.trust, configuredPins: new.crypto.pinnedSites, revokers: Set(new.crypto.revokers))
            configuration.crypto.trust = new.crypto.trust
            configuration.crypto.pinnedSites = new.crypto.pinnedSites
            configuration.crypto.revokers = new.crypto.revokers
            summary.trust = "\(new.crypto.trust.rawValue), \(pins) pinned, \(agent.revokedCount) revoked"
        } catch {
            summary.failed.append("trust (\(error))")
            logger.error("reload: cannot read the trusted peers", metadata: ["error": "\(error)"])
        }
        if keysChanged && !channelChanged {
            let keyChanged = new.crypto.key != configuration.crypto.key
            configuration.crypto.key = new.crypto.key
            configuration.crypto.previousKeys = new.crypto.previousKeys
            configuration.messageChannel.mqtt.topic = new.messageChannel.mqtt.topic
            agent.replaceKeys(configuration.meshKeyRing)
            summary.keys = "\(keyChanged ? "new key" : "same key"), \(new.crypto.previousKeys.count) previous"
        }
        if new.speedtest != configuration.speedtest {
            configuration.speedtest = new.speedtest
            manager.allowSpeedtestDownload(new.speedtest.allowDownload)
            summary.speedtest = new.speedtest.allowDownload ? "downloads allowed" : "downloads refused"
        }
        // Identity, channel and sockets stay as started; only the app lists, trust, keys and the
        // speed-test setting move.
        let oldExposed = Dictionary(exposedApps.map { ($0.app.appName, $0.app) }, uniquingKeysWith: { a, _ in a })
        let oldRemote = Dictionary(
            remoteApps.map { (RemoteAppListener.key($0.app), $0.app) }, uniquingKeysWith: { a, _ in a })
        configuration.localExposedApps = new.localExposedApps
        configuration.remoteApps = new.remoteApps
        apps = Self.appsInEffect(configuration, overlay, loader: loader, logger: logger)
        let newExposed = Dictionary(exposedApps.map { ($0.app.appName, $0.app) }, uniquingKeysWith: { a, _ in a })
        let newRemote = Dictionary(
            remoteApps.map { (RemoteAppListener.key($0.app), $0.app) }, uniquingKeysWith: { a, _ in a })

        for (name, app) in oldExposed where newExposed[name] != app {
            if newExposed[name] == nil {
                summary.exposedRemoved.append(name)
            } else {
                summary.exposedChanged.append(name)
            }
        }
        summary.exposedAdded = newExposed.keys.filter { oldExposed[$0] == nil }
        publishApps()
        for name in summary.exposedRemoved + summary.exposedChanged { manager.endStreams(ofExposedApp: name) }

        // Keyed by entry (one app may be offered on several sockets); reported by app name.
        var removedNames: Set<String> = []
        var addedNames: Set<String> = []
        for (key, app) in oldRemote where newRemote[key] != app {
            await listeners.removeValue(forKey: key)?.close()
            remoteConnections.abortAll(key)
            removedNames.insert(AppOverlay.key(site: app.siteName, app: app.appName))
        }
        for (key, app) in newRemote where oldRemote[key] != app {
            let name = AppOverlay.key(site: app.siteName, app: app.appName)
            addedNames.insert(name)
            do {
                listeners[key] = try await bind(app)
            } catch {
                summary.failed.append(name)
                logger.error(
                    "reload: cannot listen for a remote app", metadata: ["app": "\(key)", "error": "\(error)"])
            }
        }
        summary.remoteChanged = Array(removedNames.intersection(addedNames))
        summary.remoteRemoved = Array(removedNames.subtracting(addedNames))
        summary.remoteAdded = Array(addedNames.subtracting(removedNames))
        for keyPath in [
            \ReloadSummary.exposedAdded, \.exposedRemoved, \.exposedChanged, \.remoteAdded, \.remoteRemoved,
            \.remoteChanged,
        ] {
            summary[keyPath: keyPath].sort()
        }
        return summary
    }
}
