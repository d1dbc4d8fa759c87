import Logging
import NIOCore
import WeftTransport
import WeftTunnel
import WeftWire

/// Serves streams that peers open: checks them against the exposed apps and connects the
/// allowed ones to their app, on the tunnel's event loop.
struct ExposedAppServer: Sendable {
    let registry: ExposedAppRegistry
    let connectTimeout: TimeAmount
    let logger: Logger
    /// Streams one tunnel may have at its apps at once (each holds a socket here); the engine's
    /// own stream limit, so that the scale benchmark's 10,000 streams fit with room to spare.
    static let maxStreamsPerTunnel = 16_384
    private let refusalLog = LogLimiter()

    init(registry: ExposedAppRegistry, connectTimeout: TimeAmount, logger: Logger) {
        self.registry = registry
        self.connectTimeout = connectTimeout
        self.logger = logger
    }

    /// The driver's `onIncomingStream`: a relay for an allowed stream; nil (after a reset with
    /// the reason) for one that is refused.
    func open(_ id: StreamID, appName: String, target: String?, on driver: TunnelDriver) -> TunnelStreamDelegate? {
        var logger = self.logger
        logger[metadataKey: "peer"] = "\(driver.peerSite)"
        logger[metadataKey: "app"] = "\(appName)"
        logger[metadataKey: "stream"] = "\(id)"
        if let target { logger[metadataKey: "target"] = "\(target)" }
        var decision = registry.resolve(appName: appName, target: target)
        if case .connect = decision, driver.streamCount >= Self.maxStreamsPerTunnel {
            decision = .refuse(.limitReached, "\(Self.maxStreamsPerTunnel) streams to apps are open already")
        }
        switch decision {
        case .refuse(let code, let reason):
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
            let relay = StreamRelay(driver: driver, logger: logger)
            relay.accepted(id)
            let connectLogger = logger
            AppConnector.connect(socket, on: driver.eventLoop, timeout: connectTimeout, relay: relay)
                .whenComplete { result in
                    switch result {
                    case .success(let channel):
                        connectLogger.debug("stream connected to its app", metadata: ["socket": "\(socket)"])
                        relay.attach(channel)
                    case .failure(let error):
                        relay.connectFailed("cannot connect to \(appName) at \(socket): \(error)")
                    }
                }
            return relay
        }
    }
}
