import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import WeftTransport
import WeftTunnel
import WeftWire

/// Serves streams that peers open: checks them against the exposed apps and connects the
/// allowed ones to their app, on the tunnel's event loop.
///
/// The apps may change while the site runs (API, reload): a stream is checked against the
/// apps of the moment it opens; `connections` lets a removed app's open streams be ended.
struct ExposedAppServer: Sendable {
    private let registry: NIOLockedValueBox<ExposedAppRegistry>
    let connectTimeout: TimeAmount
    let logger: Logger
    /// The app sockets of open streams, by app name.
    let connections = ConnectionTracker()
    private let refusalLog = LogLimiter()
    private let speedtest = SpeedtestPattern()
    /// The site's sockets for streams, shared with the remote apps' listeners.
    let sockets: SocketBudget
    /// `speedtest.allowDownload`, and how many download tests run now (at most
    /// `maxDownloads`, across peers: each spends this site's uplink).
    private let downloads = NIOLockedValueBox((allowed: false, running: 0))
    static let maxDownloads = 2
    /// Dropped datagrams of UDP apps, by peer and app: one log line per reason and 10 s each.
    private let udpDrops = NIOLockedValueBox<[String: UDPDropCounter]>([:])
    /// Bytes and streams per app, exposed and remote (the remote apps' listeners count here too).
    let traffic = AppTraffic()

    init(registry: ExposedAppRegistry, connectTimeout: TimeAmount, sockets: SocketBudget, logger: Logger) {
        self.registry = NIOLockedValueBox(registry)
        self.connectTimeout = connectTimeout
        self.sockets = sockets
        self.logger = logger
    }

    /// Streams opened from now on see `registry`.
    func update(_ registry: ExposedAppRegistry) {
        self.registry.withLockedValue { $0 = registry }
    }

    /// Download speed tests opened from now on are served (`true`) or refused.
    func allowSpeedtestDownload(_ allowed: Bool) {
        downloads.withLockedValue { $0.allowed = allowed }
    }

    /// A peer asks this site to send it test data: served when allowed, for a valid number of
    /// seconds, and while fewer than `maxDownloads` run; refused with a reason otherwise.
    private func openSpeedtestSource(
        _ id: StreamID, target: String?, on driver: TunnelDriver, logger: Logger
    ) -> TunnelStreamDelegate? {
        let refusal: (StreamReset.Code, String)?
        let seconds = SpeedtestSource.seconds(inTarget: target)
        if seconds == nil {
            refusal = (.notAllowed, "a download speed test takes 1 to \(SpeedtestSource.maxSeconds) seconds")
        } else {
            refusal = downloads.withLockedValue { state in
                guard state.allowed else {
                    return (.notAllowed, "this site does not send speed-test data (speedtest.allowDownload is off)")
                }
                guard state.running < Self.maxDownloads else {
                    return (.limitReached, "\(Self.maxDownloads) download speed tests are running here already")
                }
                state.running += 1
                return nil
            }
        }
        if let (code, reason) = refusal {
            driver.peerCounter("weft_streams_refused_total", [("reason", "\(code)")]).increment()
            let (allowed, suppressed) = refusalLog.admit("\(driver.peerSite) speedtest")
            if allowed {
                logger.warning(
                    "refused a download speed test",
                    metadata: ["reason": "\(reason)", "alsoRefusedSinceLastLine": "\(suppressed)"])
            }
            driver.reset(id, code: code, message: reason)
            return nil
        }
        logger.info("speed test to the peer", metadata: ["seconds": "\(seconds!)"])
        let downloads = self.downloads
        let source = SpeedtestSource(
            driver: driver, stream: id, seconds: seconds!, pattern: speedtest, logger: logger,
            onEnd: { downloads.withLockedValue { $0.running -= 1 } })
        source.start()
        return source
    }

    /// The driver's `onIncomingStream`: a relay for an allowed stream; nil (after a reset with
    /// the reason) for one that is refused.
    func open(_ id: StreamID, appName: String, target: String?, on driver: TunnelDriver) -> TunnelStreamDelegate? {
        var logger = self.logger
        logger[metadataKey: "peer"] = "\(driver.peerSite)"
        logger[metadataKey: "app"] = "\(appName)"
        logger[metadataKey: "stream"] = "\(id)"
        if let target { logger[metadataKey: "target"] = "\(target)" }
        let origin = driver.incomingOrigin
        if let origin { logger[metadataKey: "client"] = "\(origin.clientDescription)" }
        // Streams per tunnel (each holds an app socket here) are bounded by the engine's
        // `maxStreams`, which refuses an open beyond it before it reaches this point.
        let datagrams = driver.incomingDatagrams
        if datagrams && (appName == SpeedtestPattern.appName || appName == SpeedtestSource.appName) {
            driver.reset(id, code: .notExposed, message: "the speed test is not a UDP app")
            return nil
        }
        if appName == SpeedtestPattern.appName {
            logger.info("speed test from the peer")
            return SpeedtestSink(driver: driver, stream: id, pattern: speedtest, logger: logger)
        }
        if appName == SpeedtestSource.appName {
            return openSpeedtestSource(id, target: target, on: driver, logger: logger)
        }
        let (decision, proxyProtocol) = registry.withLockedValue {
            (
                $0.resolve(appName: appName, target: target, peer: driver.peerSite, datagrams: datagrams),
                $0.proxyProtocol(of: appName)
            )
        }
        switch decision {
        case .refuse(let code, let reason):
            driver.peerCounter("weft_streams_refused_total", [("reason", "\(code)")]).increment()
            // Once per peer and reason every 10 s, with the count held back: a peer that
            // repeats a refused request cannot flood the log.
            let (allowed, suppressed) = refusalLog.admit("\(driver.peerSite) \(code)")
            if allowed {
                logger.warning(
                    "refused a stream",
                    metadata: ["code": "\(code)", "reason": "\(reason)", "alsoRefusedSinceLastLine": "\(suppressed)"])
            }
            driver.reset(id, code: code, message: reason)
            return nil
        case .connect(let socket):
            guard sockets.acquire() else {
                driver.peerCounter("weft_streams_refused_total", [("reason", "\(StreamReset.Code.limitReached)")])
                    .increment()
                let (allowed, suppressed) = refusalLog.admit("\(driver.peerSite) sockets")
                if allowed {
                    logger.warning(
                        "refused a stream: the site's stream sockets are all in use",
                        metadata: ["limit": "\(sockets.limit)", "alsoRefusedSinceLastLine": "\(suppressed)"])
                }
                driver.reset(id, code: .limitReached, message: "the site has \(sockets.limit) stream sockets open")
                return nil
            }
            let sockets = self.sockets
            if case .udp(let address, let port) = socket {
                return openUDP(id, appName: appName, address: address, port: port, on: driver, logger: logger)
            }
            let relay = StreamRelay(driver: driver, meter: traffic.meter(.exposed(appName)), logger: logger)
            relay.accepted(id)
            let connectLogger = logger
            let connections = self.connections
            driver.peerCounter("weft_streams_opened_total", [("side", "app")]).increment()
            AppConnector.connect(socket, on: driver.eventLoop, timeout: connectTimeout, relay: relay)
                .whenComplete { result in
                    switch result {
                    case .success(let channel):
                        connectLogger.debug("stream connected to its app", metadata: ["socket": "\(socket)"])
                        channel.closeFuture.whenComplete { _ in sockets.release() }
                        connections.add(channel, key: appName)
                        // The header goes first (flushed now: an app that speaks first waits
                        // for it), and the relay's writes queue behind it on this loop.
                        if let proxyProtocol {
                            channel.writeAndFlush(
                                ProxyProtocolHeader(version: proxyProtocol, origin: origin).bytes, promise: nil)
                        }
                        relay.attach(channel)
                    case .failure(let error):
                        sockets.release()
                        relay.connectFailed("cannot connect to \(appName) at \(socket): \(error)")
                    }
                }
            return relay
        }
    }

    /// A UDP client's stream to a UDP app: a socket of its own, connected to the app.
    private func openUDP(
        _ id: StreamID, appName: String, address: IPAddress, port: Int, on driver: TunnelDriver, logger: Logger
    ) -> TunnelStreamDelegate? {
        guard let appAddress = try? SocketAddress(ipAddress: address.description, port: port) else {
            sockets.release()
            driver.reset(id, code: .appDown, message: "\(address) is not a usable address")
            return nil
        }
        let key = "\(driver.peerSite)/\(appName)"
        let drops = udpDrops.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            if counters.count >= 4096 { counters.removeAll() }
            let counter = UDPDropCounter(peer: driver.peerSite, app: appName, logger: self.logger)
            counters[key] = counter
            return counter
        }
        let idle = registry.withLockedValue { $0.udpIdleTimeout(of: appName) }
        let (sockets, connections) = (self.sockets, self.connections)
        driver.peerCounter("weft_streams_opened_total", [("side", "app")]).increment()
        let flow = UDPAppFlow(
            driver: driver, stream: id, app: appAddress, idleTimeout: idle, drops: drops,
            meter: traffic.meter(.exposed(appName)), logger: logger,
            onOpen: { connections.add($0, key: appName) }, onEnd: { sockets.release() })
        flow.start()
        return flow
    }
}
