import ArgumentParser
import WeftSite

/// Loading the configuration for commands that need a valid one.
enum ConfigFile {
    /// The exit status for an unusable configuration (sysexits' EX_CONFIG), so a supervisor can
    /// tell "fix the file" from a crash.
    static let configErrorStatus: Int32 = 78

    /// Loads or exits with every problem printed to standard error.
    static func load(_ explicit: String?) throws -> LoadedConfiguration {
        do {
            let file = try ConfigLocator().locate(explicit: explicit)
            return try ConfigLoader().load(file: file)
        } catch {
            for diagnostic in error.diagnostics { printError(diagnostic.description) }
            throw ExitCode(configErrorStatus)
        }
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    LogSink.standardError.write(line: line)
}
