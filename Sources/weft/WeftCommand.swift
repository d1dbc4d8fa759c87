import ArgumentParser

/// `weft`: a site-to-site application-layer VPN.
@main
struct WeftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "Site-to-site application-layer VPN: expose local apps by name, reach other sites' apps "
            + "through local sockets, over tunnels of aggregated links.",
        discussion: """
            Without --config, the configuration is looked up in $WEFT_CONFIG, ./config.yaml, \
            ~/.weft/config.yaml and /etc/weft/config.yaml, in that order.
            """,
        version: WeftVersion.full,
        subcommands: [
            RunCommand.self, StatusCommand.self, TopCommand.self, SpeedtestCommand.self, CheckCommand.self,
            IdentityCommand.self,
            TrustCommand.self, KeyCommand.self,
            VersionCommand.self,
        ]
    )
}

/// The `--config` option shared by the commands that read a configuration.
struct ConfigOption: ParsableArguments {
    @Option(
        name: [.customShort("c"), .long],
        help: ArgumentHelp(
            "The configuration file.",
            discussion: "Default: $WEFT_CONFIG, ./config.yaml, ~/.weft/config.yaml, /etc/weft/config.yaml.",
            valueName: "file"
        )
    )
    var config: String?
}
