import Logging
import ServiceLifecycle
import UnixSignals
import WeftSite

/// Reloads `config.yaml` on SIGHUP: the app lists take effect at once, without dropping tunnels
/// or the streams of apps that did not change. A file that does not load changes nothing (its
/// problems are logged); settings that need a restart are named in the log.
struct ReloadService: Service {
    let file: String
    let handle: SiteHandle
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            logger.notice("SIGHUP: reloading the configuration", metadata: ["file": "\(file)"])
            let loaded: LoadedConfiguration
            do {
                loaded = try ConfigLoader().load(file: file)
            } catch {
                for diagnostic in error.diagnostics { logger.error("reload refused: \(diagnostic)") }
                continue
            }
            for warning in loaded.warnings { logger.warning("config: \(warning.description)") }
            guard let runtime = handle.runtime else {
                logger.warning("reload: the site is not running")
                continue
            }
            let summary = await runtime.reload(loaded.configuration)
            logger.notice("configuration reloaded", metadata: ["changes": "\(summary)"])
            if !summary.needRestart.isEmpty {
                logger.warning(
                    "changed settings take effect after a restart",
                    metadata: ["settings": "\(summary.needRestart.joined(separator: ", "))"])
            }
        }
    }
}
