import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import WeftDiscovery
import WeftIdentity
import WeftTransport
import WeftWire

/// The running site: the root service that the daemon's `ServiceGroup` keeps alive.
///
/// It owns the site's lifetime: the message channel (presence and the directory of peers),
/// the link listeners, the tunnel manager, the local sockets of remote apps and public
/// address detection. A graceful shutdown closes the local sockets, ends every tunnel with a
/// goodbye to its peer and says goodbye on the message channel before the process exits.
public struct SiteService: Service {
    public let configuration: SiteConfiguration
    public let identity: SiteIdentity
    /// The previous identity's endorsement of this one, announced after a rotation.
    public let endorsement: IdentityEndorsement?
    public let softwareVersion: String
    /// Where the API and the reload find the running site.
    public let handle: SiteHandle
    private let logger: Logger

    public init(
        configuration: SiteConfiguration, identity: SiteIdentity, endorsement: IdentityEndorsement? = nil,
        softwareVersion: String, handle: SiteHandle = SiteHandle(), logger: Logger
    ) {
        self.configuration = configuration
        self.identity = identity
        self.endorsement = endorsement
        self.softwareVersion = softwareVersion
        self.handle = handle
        self.logger = logger
    }

    public func run() async throws {
        // Apps changed over the API earlier, on top of the file's.
        let overlay: AppOverlay
        do {
            overlay = try AppOverlay.load(stateDirectory: configuration.stateDir)
        } catch {
            logger.error(
                "cannot read the apps changed over the API; fix or remove the file",
                metadata: ["file": "\(configuration.stateDir)/\(AppOverlay.fileName)", "error": "\(error)"])
            throw error
        }
        // The runtime logs the overlay's entries that no longer decode.
        let inEffect = AppsInEffect(
            exposed: configuration.localExposedApps, remote: configuration.remoteApps, overlay: overlay,
            ownSite: configuration.siteName, loader: ConfigLoader())
        let exposedApps = inEffect.exposed.map(\.app)
        let remoteApps = inEffect.remote.map(\.app)
        logger.info(
            "site running",
            metadata: [
                "site": .string(configuration.siteName),
                "fingerprint": .string(identity.fingerprint.description),
                "broker": .string(configuration.messageChannel.mqtt.brokers.map(\.description).joined(separator: ",")),
                "exposedApps": .stringConvertible(exposedApps.count),
                "remoteApps": .stringConvertible(remoteApps.count),
            ]
        )
        let group = MultiThreadedEventLoopGroup.singleton
        // A Bluetooth socket is announced with its adapter's address once the adapter is up;
        // one missing or down is waited for (`BluetoothAdapterWatch`).
        let (adapters, waitingAdapters) = resolveBluetoothAdapters()
        let adaptersUp = NIOLockedValueBox(adapters)
        // A USB gadget presents a serial number of this site's own, which peers look for.
        let usbSerial = "weft-" + identity.fingerprint.bytes.prefix(8).hexEncoded
        let gadgetSocket = configuration.tunnel.localSockets.first { $0.mode == .usbGadget }
        let dialsUSB = configuration.tunnel.localSockets.contains { $0.mode == .usbHost }
        // Bluetooth and USB endpoints: the adapter's address and the gadget's serial number.
        let deviceEndpoints =
            configuration.tunnel.localSockets.indices.compactMap { index in
                adapters[index].map {
                    SiteAnnouncement.Endpoint(
                        linkType: .bluetooth, address: $0.description,
                        port: UInt16(configuration.tunnel.localSockets[index].listenPort))
                }
            }
            + (gadgetSocket == nil ? [] : [SiteAnnouncement.Endpoint(linkType: .usb, address: usbSerial, port: 1)])
        // A nat-traversal socket's mapping is learned through the socket itself (`HolePuncher`);
        // a Bluetooth socket is announced with its adapter's address.
        let detector = PublicAddressMonitor(
            sockets: configuration.tunnel.localSockets.filter {
                $0.mode != .natTraversal && $0.publicAddress != .adapter
            },
            stunServers: configuration.stun, logger: logger)
        var discovery = discoveryConfiguration(endpoints: detector.literalEndpoints + deviceEndpoints)
        discovery.apps = exposedApps.map(\.appName)
        let agent = try DiscoveryAgent(configuration: discovery, identity: identity, logger: logger)
        let site = LocalLinkSite(
            siteName: configuration.siteName, tls: try LinkTLS(identity: identity))
        let policy = EndpointPolicy(
            ownListeners: configuration.tunnel.localSockets.filter { $0.publicAddress != .adapter }.map {
                HostPort(address: $0.listenAddress, port: $0.listenPort)
            },
            ownAdapters: adapters.keys.sorted().compactMap { adapters[$0] },
            dialsUSB: dialsUSB, ownUSBSerial: gadgetSocket == nil ? nil : usbSerial)
        let transportContext = LinkTransportContext(
            congestionControl: configuration.tunnel.congestionControl,
            proxy: configuration.tunnel.proxy,
            refuse: { address in policy.refusal(resolved: address).map { "\($0)" } })
        let caFile = configuration.tunnel.caFile
        // One QUIC transport for dialing and listening: a wildcard QUIC socket also carries
        // the links this site dials.
        let quic = try QUICLinkTransport(
            identity: identity,
            configuration: QUICConfiguration(
                congestionControl: QUICCongestionControl(kernelName: configuration.tunnel.congestionControl)))
        var dialers: [any LinkTransport] = [
            TCPLinkTransport(context: transportContext),
            try WebSocketLinkTransport(context: transportContext, caFile: caFile),
            quic,
        ]
        // Bluetooth links leave from the adapter of the site's first Bluetooth socket that is up,
        // so two sites on one machine (the VM lab) each keep to their own.
        if configuration.tunnel.localSockets.contains(where: { $0.transportProtocol == .bluetooth }) {
            dialers.append(
                BluetoothLinkTransport(current: {
                    adaptersUp.withLockedValue { up in up.keys.min().flatMap { up[$0] } }
                }))
        }
        var usbHost: USBHostLinkTransport?
        if dialsUSB {
            do {
                usbHost = try USBHostLinkTransport()
            } catch {
                let key =
                    "tunnel.localSockets[\(configuration.tunnel.localSockets.firstIndex { $0.mode == .usbHost }!)]"
                logger.error("\(key): USB host side cannot start", metadata: ["error": "\(error)"])
                throw SiteRuntimeError(.cannotListen, "\(key): \(error)", field: key)
            }
            dialers.append(usbHost!)
        }
        let transports = LinkTransportSet(dialers)
        if let proxy = configuration.tunnel.proxy {
            logger.info("links are dialed through a proxy", metadata: ["proxy": "\(proxy)"])
        }
        var managerConfiguration = TunnelManager.Configuration(
            siteName: configuration.siteName,
            usedSites: Set(remoteApps.map(\.siteName)),
            exposesApps: !exposedApps.isEmpty,
            localAddresses: LocalAddresses.resolve(configuration.tunnel.interfaces, logger: logger),
            linksPerPath: configuration.tunnel.linksPerPath,
            endpointPolicy: policy,
            transports: transports
        )
        managerConfiguration.backupLocalAddresses = Set(
            LocalAddresses.resolve(configuration.tunnel.backupInterfaces, logger: logger))
        managerConfiguration.relay = configuration.tunnel.relay
        managerConfiguration.relayLimits = configuration.tunnel.relayLimits
        // One cap on handshakes in progress for all of the site's link ports and relayed links.
        let admission = HandshakeAdmission()
        let manager = TunnelManager(
            configuration: managerConfiguration,
            site: site,
            exposedApps: exposedApps,
            announcesEndpoints: !discovery.endpoints.isEmpty,
            group: group,
            sockets: SocketBudget.fromProcessLimit(logger: logger),
            linkAdmission: admission,
            logger: logger
        )
        manager.allowSpeedtestDownload(configuration.speedtest.allowDownload)
        var linkListeners: [LinkListener] = []
        var punchListener: (LinkListener, LocalSocketConfig)?
        let runtime = SiteRuntime(
            configuration: configuration, fingerprint: identity.fingerprint.description,
            softwareVersion: softwareVersion,
            overlay: overlay, manager: manager, agent: agent, logger: logger)
        do {
            if let usbHost {
                // A weft gadget plugged in: the runs waiting to dial one dial now.
                usbHost.onArrival { manager.transportChanged(.usb) }
                logger.info(
                    "dialing USB gadgets that peers announce",
                    metadata: ["hotplug": "\(usbHost.hasHotplug ? "yes" : "no: re-linking waits for the backoff")"])
            }
            for (index, socket) in configuration.tunnel.localSockets.enumerated()
            where socket.listens && waitingAdapters[index] == nil {
                let transport: any LinkTransport =
                    switch socket.transportProtocol {
                    case .tls: TCPLinkTransport(context: transportContext)
                    case .quic: quic
                    case .websocket: try WebSocketLinkTransport(context: transportContext, path: socket.path)
                    case .bluetooth: BluetoothLinkTransport(adapter: adapters[index])
                    case .usb: USBGadgetLinkTransport(serial: usbSerial, logger: logger)
                    }
                let host =
                    socket.transportProtocol == .usb
                    ? socket.usbController ?? "" : adapters[index]?.description ?? socket.listenAddress.description
                let listener: LinkListener
                do {
                    listener = try await LinkListener.bind(
                        host: host, port: socket.listenPort, over: transport, group: group,
                        site: site, admission: admission, backup: socket.backup,
                        handlers: manager.listenerHandlers(punched: socket.mode == .natTraversal),
                        logger: logger
                    ).get()
                } catch  where socket.transportProtocol == .usb {
                    // No controller, no configfs, no root: say which socket could not start.
                    let key = "tunnel.localSockets[\(index)]"
                    throw SiteRuntimeError(.cannotListen, "\(key): \(error)", field: key)
                }
                linkListeners.append(listener)
                if socket.mode == .natTraversal {
                    if punchListener == nil {
                        punchListener = (listener, socket)
                    } else {
                        logger.warning(
                            "only the first nat-traversal socket punches; this one listens only",
                            metadata: ["address": "\(listener.localAddress.map { "\($0)" } ?? "?")"])
                    }
                }
                var metadata: Logger.Metadata = [
                    "address": "\(listener.localAddress.map { "\($0)" } ?? "?")", "transport": "\(transport.kind)",
                ]
                if let adapter = adapters[index] {
                    metadata["address"] = "\(adapter) channel \(socket.listenPort)"
                    if let named = socket.bluetoothAdapter, case .index = named { metadata["adapter"] = "\(named)" }
                }
                if socket.mode == .usbGadget {
                    metadata["address"] = "usb gadget \(usbSerial)"
                    metadata["controller"] = "\(socket.usbController ?? "the first in /sys/class/udc")"
                }
                if socket.transportProtocol == .websocket { metadata["path"] = "\(socket.path)" }
                if let url = socket.publicURL { metadata["publicUrl"] = "\(url.url)" }
                if socket.backup { metadata["role"] = "backup" }
                logger.info("listening for links", metadata: metadata)
            }
            try await runtime.start()
        } catch {
            logger.error("cannot open the site's sockets: \(error)")
            for listener in linkListeners { try? await listener.close().get() }
            throw error
        }
        // What the site announces: the detected endpoints and the punching socket's mapping.
        let ownEndpoints = NIOLockedValueBox(
            (detected: detector.literalEndpoints, devices: deviceEndpoints, punch: [SiteAnnouncement.Endpoint]()))
        let announceEndpoints: @Sendable () -> Void = {
            let (detected, devices, punch) = ownEndpoints.withLockedValue { ($0.detected, $0.devices, $0.punch) }
            agent.update(endpoints: detected + devices + punch)
            manager.ownEndpointsChanged(announced: !detected.isEmpty || !devices.isEmpty)
        }
        // Listeners of adapters that came up after start.
        let lateListeners = NIOLockedValueBox([LinkListener]())
        let adapterCameUp: @Sendable (Int, BluetoothAddress) async -> Bool = { index, address in
            let socket = configuration.tunnel.localSockets[index]
            let key = "tunnel.localSockets[\(index)].listenAddress"
            let listener: LinkListener
            do {
                listener = try await LinkListener.bind(
                    host: address.description, port: socket.listenPort,
                    over: BluetoothLinkTransport(adapter: address), group: group,
                    site: site, admission: admission, backup: socket.backup,
                    handlers: manager.listenerHandlers(punched: false), logger: logger
                ).get()
            } catch {
                logger.error(
                    "\(key): Bluetooth adapter \(socket.bluetoothAdapter.map { "\($0)" } ?? "?") is up, but cannot listen",
                    metadata: ["error": "\(error)"])
                return false
            }
            lateListeners.withLockedValue { $0.append(listener) }
            let all = adaptersUp.withLockedValue { up in
                up[index] = address
                return up.keys.sorted().compactMap { up[$0] }
            }
            ownEndpoints.withLockedValue {
                $0.devices.append(
                    .init(linkType: .bluetooth, address: address.description, port: UInt16(socket.listenPort)))
            }
            var metadata: Logger.Metadata = [
                "address": "\(address) channel \(socket.listenPort)", "transport": "bluetooth",
            ]
            if let named = socket.bluetoothAdapter, case .index = named { metadata["adapter"] = "\(named)" }
            if socket.backup { metadata["role"] = "backup" }
            logger.info("Bluetooth adapter is up: listening for links", metadata: metadata)
            announceEndpoints()
            manager.ownAdaptersChanged(all)
            return true
        }
        let puncher = punchListener.flatMap { listener, socket in
            makePuncher(
                listener: listener, socket: socket, quic: quic, policy: policy, manager: manager, agent: agent,
                mappingChanged: { mapping in
                    ownEndpoints.withLockedValue {
                        $0.punch = mapping.map { [.init(linkType: .punch, address: $0.address, port: $0.port)] } ?? []
                    }
                    announceEndpoints()
                })
        }
        handle.publish(runtime)
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await TunnelReaper(manager: manager).run() }
                group.addTask {
                    // Once the site has settled (first announcements, first links), what only
                    // starting needed goes back to the system.
                    try? await Task.sleep(for: .seconds(5))
                    guard !Task.isCancelled else { return }
                    let before = ResidentMemory.residentBytes()
                    ResidentMemory.trim()
                    if let before, let after = ResidentMemory.residentBytes() {
                        logger.debug(
                            "returned startup memory",
                            metadata: ["rssBefore": "\(before / 1024) KiB", "rssAfter": "\(after / 1024) KiB"])
                    }
                }
                group.addTask {
                    await detector.run { endpoints in
                        ownEndpoints.withLockedValue { $0.detected = endpoints }
                        announceEndpoints()
                    }
                }
                if let puncher { group.addTask { await puncher.run() } }
                if !waitingAdapters.isEmpty {
                    group.addTask {
                        var watch = BluetoothAdapterWatch(waiting: waitingAdapters, clock: ContinuousClock())
                        await watch.run(found: adapterCameUp)
                    }
                }
                // The agent runs until a graceful shutdown; its events end with it.
                await withTaskGroup(of: Void.self) { inner in
                    inner.addTask { await agent.run() }
                    inner.addTask {
                        for await event in agent.events { manager.handle(event) }
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            agent.leave()
        }
        handle.publish(nil)
        puncher?.stop()
        usbHost?.shutdown()
        await runtime.stop()
        for listener in linkListeners + lateListeners.withLockedValue({ $0 }) { try? await listener.close().get() }
        await manager.stop()
        logger.info("site stopping", metadata: ["site": .string(configuration.siteName)])
    }

    /// The address of each Bluetooth socket's adapter that is up, by the socket's index, and
    /// the adapters that are not, each logged as an error naming the key and the adapter: the
    /// site runs on without them and picks each up when it appears.
    private func resolveBluetoothAdapters() -> (up: [Int: BluetoothAddress], waiting: [Int: BluetoothAdapter]) {
        var adapters: [Int: BluetoothAddress] = [:]
        var waiting: [Int: BluetoothAdapter] = [:]
        for (index, socket) in configuration.tunnel.localSockets.enumerated() {
            guard socket.transportProtocol == .bluetooth, let adapter = socket.bluetoothAdapter else { continue }
            do {
                adapters[index] = try adapter.resolve()
            } catch {
                let key = "tunnel.localSockets[\(index)].listenAddress"
                logger.error(
                    "\(key): Bluetooth adapter \(adapter) cannot be used; the socket waits for it",
                    metadata: ["error": "\(error)"])
                waiting[index] = adapter
            }
        }
        return (adapters, waiting)
    }

    /// The hole puncher of the site's first nat-traversal socket, started and attached.
    private func makePuncher(
        listener: LinkListener, socket: LocalSocketConfig, quic: QUICLinkTransport, policy: EndpointPolicy,
        manager: TunnelManager, agent: DiscoveryAgent, mappingChanged: @escaping @Sendable (PunchCandidate?) -> Void
    ) -> HolePuncher? {
        guard let sideband = quic.sideband(for: listener.channel), let local = listener.localAddress else {
            return nil
        }
        let puncher = HolePuncher(
            ownName: configuration.siteName, router: SidebandRouter(sideband: sideband),
            stunServers: socket.stunServer.map { [$0] } ?? configuration.stun, policy: policy,
            hooks: .init(
                send: { agent.send($0) },
                needsLink: { [weak manager] peer in manager?.needsPunchedLink(peer) ?? false },
                dial: { [weak manager] peer, address in
                    guard let manager else {
                        return MultiThreadedEventLoopGroup.singleton.next().makeFailedFuture(
                            LinkError(.closed, "the site is stopping"))
                    }
                    return manager.dialPunched(peer, to: address, from: local, over: quic)
                },
                mappingChanged: mappingChanged),
            logger: logger)
        puncher.start()
        manager.attach(puncher)
        logger.info(
            "hole punching on the QUIC socket", metadata: ["address": "\(local)", "stun": "\(puncher.stunServers)"])
        return puncher
    }

    /// The message channel's settings, from the config.
    /// `endpoints`: those known at start (literal addresses); detected ones follow.
    func discoveryConfiguration(endpoints: [SiteAnnouncement.Endpoint]) -> DiscoveryAgent.Configuration {
        let mqtt = configuration.messageChannel.mqtt
        let ring = configuration.meshKeyRing  // derives each key once
        let clientID = "weft-\(identity.siteID.prefix(12))-\(UInt32.random(in: 0...UInt32.max))"
        // Each broker its own client id: two nodes of one cluster would take a shared id for one
        // client connecting twice, and drop the older connection each time.
        let brokers = mqtt.brokers.enumerated().map { index, broker in
            MQTTClientConfiguration(
                host: broker.host,
                port: broker.port,
                useTLS: broker.useTLS,
                caFile: mqtt.caFile,
                username: mqtt.username,
                password: mqtt.password,
                clientID: index == 0 ? clientID : "\(clientID)-\(index)",
                keepAlive: mqtt.keepAlive
            )
        }
        return DiscoveryAgent.Configuration(
            siteName: configuration.siteName,
            mesh: ring.current,
            previousMeshes: ring.previous,
            mqtt: brokers[0],
            moreBrokers: Array(brokers.dropFirst()),
            stateDirectory: configuration.stateDir,
            softwareVersion: softwareVersion,
            capabilities: configuration.tunnel.relay ? SiteAnnouncement.relaysLinks : 0,
            endpoints: endpoints,
            apps: configuration.localExposedApps.map(\.appName),
            trust: configuration.crypto.trust,
            configuredPins: configuration.crypto.pinnedSites,
            revokers: Set(configuration.crypto.revokers),
            endorsement: endorsement
        )
    }
}
