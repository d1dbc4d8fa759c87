import Testing
import WeftSite

/// Loads YAML with a fixed home and base directory, so paths in the results are predictable.
func loadConfig(_ yaml: String) throws(ConfigurationError) -> LoadedConfiguration {
    try ConfigLoader(homeDirectory: "/home/tester").parse(yaml: yaml, file: "config.yaml", baseDirectory: "/etc/weft")
}

/// The errors a YAML text produces; records an issue when it loads.
func configErrors(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ConfigDiagnostic] {
    do {
        let loaded = try loadConfig(yaml)
        Issue.record(
            "expected errors, but the config loaded: \(loaded.configuration.siteName)", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.errors
    }
}

/// The smallest valid file; cases append to it.
let minimalConfig = """
    siteName: site01
    crypto:
      key: "0123456789abcdef"
    messageChannel:
      mqtt:
        brokerServer: mqtt://127.0.0.1:1883

    """
