import ArgumentParser
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import WeftAPI
import WeftIdentity
import WeftSite

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run this site until SIGINT or SIGTERM.",
        discussion: """
            Loads the configuration, creates the site identity in stateDir on first start, and runs \
            the site. SIGINT and SIGTERM stop it cleanly (exit 0). An invalid configuration exits 78.
            """
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let loaded = try ConfigFile.load(options.config)
        let config = loaded.configuration
        if config.crypto.key == CryptoSettings.sampleKey {
            // A site run from an unedited sample would meet every other unedited sample.
            printError(
                "weft: crypto.key is still the sample config's placeholder; "
                    + "refusing to run. Put the mesh's key there (`weft key` prints a new one).")
            throw ExitCode(ConfigFile.configErrorStatus)
        }
        do {
            LoggingSystem.bootstrap(try WeftLogging.factory(for: config.logger))
        } catch {
            printError("weft: \(error)")
            throw ExitCode(ConfigFile.configErrorStatus)
        }
        let logger = Logger(label: "weft")
        for warning in loaded.warnings {
            logger.warning("config: \(warning.description)")
        }

        let store = IdentityStore(directory: config.stateDir)
        let identity: SiteIdentity
        let endorsement: IdentityEndorsement?
        do {
            let (loadedIdentity, outcome) = try store.loadOrCreate()
            identity = loadedIdentity
            endorsement = try store.loadEndorsement(for: identity, siteName: config.siteName)
            var metadata: Logger.Metadata = [
                "fingerprint": .string(identity.fingerprint.description),
                "stateDir": .string(config.stateDir),
            ]
            if let endorsement { metadata["endorsedBy"] = .string(endorsement.previousFingerprint.description) }
            logger.info(outcome == .created ? "created site identity" : "loaded site identity", metadata: metadata)
        } catch {
            logger.error("cannot use the site identity: \(error)")
            throw ExitCode(1)
        }

        // Every `weft_` series, rendered at the API's /metrics.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let handle = SiteHandle()
        let site = SiteService(
            configuration: config,
            identity: identity,
            endorsement: endorsement,
            softwareVersion: WeftVersion.release,
            handle: handle,
            logger: logger
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: site, serviceName: "site"),
            .init(service: ReloadService(file: loaded.file, handle: handle, logger: logger), serviceName: "reload"),
        ]
        if config.restfulApi.enabled {
            services.append(
                .init(
                    service: APIService(
                        settings: config.restfulApi, handle: handle, registry: registry, logger: logger),
                    serviceName: "api"))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        logger.info("stopped")
    }
}
