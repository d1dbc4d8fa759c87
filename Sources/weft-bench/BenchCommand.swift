import ArgumentParser

/// `weft-bench`: benchmarks that print figures and ratios against a baseline measured in the
/// same run. Not tests: nothing here passes or fails on speed.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft-bench",
        abstract: "weft benchmarks: figures and ratios against baselines measured in the same run.",
        subcommands: [DiscoveryBench.self, TLSRelayBench.self]
    )
}
