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
        // Streams per tunnel (each holds an app socket here) are bounded by the engine's
        // `maxStreams`, which refuses an open beyond it before it reaches this point.
        switch registry.resolve(appName: appName, target: target) {
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
