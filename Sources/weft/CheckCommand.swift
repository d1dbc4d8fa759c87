import ArgumentParser
import WeftSite

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration file and print every problem in it.",
        discussion: "Exits 0 when the file is valid (warnings allowed), 1 when it has errors."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        let file: String
        do {
            file = try ConfigLocator().locate(explicit: options.config)
        } catch {
            printDiagnostics(error.diagnostics)
            throw ExitCode(1)
        }
        do {
            let loaded = try ConfigLoader().load(file: file)
            printDiagnostics(loaded.warnings)
            let config = loaded.configuration
            print(
                "\(file): valid — site \(config.siteName), \(config.tunnel.localSockets.count) tunnel socket(s), "
                    + "\(config.localExposedApps.count) exposed app(s), \(config.remoteApps.count) remote app(s)"
                    + (loaded.warnings.isEmpty ? "" : ", \(loaded.warnings.count) warning(s)")
            )
        } catch {
            printDiagnostics(error.diagnostics)
            let count = error.errors.count
            print("\(file): \(count) error\(count == 1 ? "" : "s")")
            throw ExitCode(1)
        }
    }

    private func printDiagnostics(_ diagnostics: [ConfigDiagnostic]) {
        for diagnostic in diagnostics { print(diagnostic.description) }
    }
}
