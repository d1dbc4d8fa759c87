import Foundation

/// Finds the configuration file when `--config` is not given.
public struct ConfigLocator: Sendable {
    public var environment: [String: String]
    public var currentDirectory: String
    public var homeDirectory: String

    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        homeDirectory: String = ConfigLoader.defaultHomeDirectory
    ) {
        self.environment = environment
        self.currentDirectory = currentDirectory
        self.homeDirectory = homeDirectory
    }

    /// The places searched, in order: `$WEFT_CONFIG`, `./config.yaml`, `~/.weft/config.yaml`,
    /// `/etc/weft/config.yaml`.
    public var candidates: [String] {
        var list: [String] = []
        if let fromEnvironment = environment["WEFT_CONFIG"], !fromEnvironment.isEmpty {
            list.append(fromEnvironment)
        }
        list += [currentDirectory + "/config.yaml", homeDirectory + "/.weft/config.yaml", "/etc/weft/config.yaml"]
        return list
    }

    /// The explicit file if given, else the first candidate that exists.
    ///
    /// `$WEFT_CONFIG` naming a missing file is an error, not a reason to fall through to a
    /// different file the user did not mean.
    public func locate(explicit: String?) throws(ConfigurationError) -> String {
        if let explicit { return explicit }
        if let fromEnvironment = environment["WEFT_CONFIG"], !fromEnvironment.isEmpty {
            guard FileManager.default.fileExists(atPath: fromEnvironment) else {
                throw ConfigurationError(
                    code: .notFound,
                    diagnostics: [
                        .init(
                            severity: .error,
                            file: fromEnvironment,
                            line: 0,
                            column: 0,
                            path: "",
                            message: "WEFT_CONFIG names this file, which does not exist"
                        )
                    ]
                )
            }
            return fromEnvironment
        }
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) {
            return found
        }
        throw ConfigurationError(
            code: .notFound,
            diagnostics: [
                .init(
                    severity: .error,
                    file: "weft",
                    line: 0,
                    column: 0,
                    path: "",
                    message: "no configuration file found; looked in \(candidates.joined(separator: ", ")) — "
                        + "pass --config FILE or set WEFT_CONFIG"
                )
            ]
        )
    }
}
