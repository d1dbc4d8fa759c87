/// `speedtest` (weft): what this site does for peers' speed tests. Every site takes an upload
/// (its built-in sink only counts and checks bytes); sending data to a peer that asks
/// (`weft speedtest --download`) is off unless the operator allows it, since it spends this
/// site's uplink at a peer's word.
public struct SpeedtestSettings: Sendable, Equatable {
    /// `allowDownload`: peers may have this site send them test data (at most 60 s per test,
    /// two tests at a time).
    public var allowDownload: Bool

    public init(allowDownload: Bool = false) {
        self.allowDownload = allowDownload
    }
}
