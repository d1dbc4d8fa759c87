import WeftWire

/// The limits and timers one tunnel runs under, agreed before any link exists.
///
/// Hard limits bound what a peer can make this node hold; a peer that breaks one loses the
/// link that carried the offence, and nothing else.
public struct TunnelConfiguration: Sendable, Equatable {
    /// How long the tunnel keeps its streams while it has no link at all.
    public var noLinkGracePeriod: Duration
    /// Streams open at once, both directions together.
    public var maxStreams: Int
    /// Separate out-of-order pieces one stream may hold (`ReassemblyBuffer.maxPieces`); the
    /// bytes they hold are bounded by the stream's credit window.
    public var maxOutOfOrderPieces: Int
    /// Out-of-order pieces all streams of the tunnel may hold together: what each piece costs
    /// besides its bytes (about a hundred bytes of bookkeeping) stays bounded however many
    /// streams a peer scatters bytes over. The stream whose piece goes past it is reset.
    public var maxOutOfOrderPiecesPerTunnel: Int
    /// The initial per-stream credit window; it grows when the reader keeps up.
    public var initialStreamWindow: Int
    /// The largest per-stream window auto-tuning may reach.
    public var maxStreamWindow: Int
    /// The initial window for all streams together; it grows when the readers keep up.
    public var initialTunnelWindow: Int
    /// The largest tunnel window: what this node holds at most for the peer's streams.
    public var maxTunnelWindow: Int

    public init(
        noLinkGracePeriod: Duration = .seconds(60),
        maxStreams: Int = 16_384,
        maxOutOfOrderPieces: Int = ReassemblyBuffer.defaultMaxPieces,
        maxOutOfOrderPiecesPerTunnel: Int = 65_536,
        initialStreamWindow: Int = 256 << 10,
        maxStreamWindow: Int = 16 << 20,
        initialTunnelWindow: Int = 16 << 20,
        maxTunnelWindow: Int = 64 << 20
    ) {
        self.noLinkGracePeriod = noLinkGracePeriod
        self.maxStreams = maxStreams
        self.maxOutOfOrderPieces = maxOutOfOrderPieces
        self.maxOutOfOrderPiecesPerTunnel = maxOutOfOrderPiecesPerTunnel
        self.initialStreamWindow = initialStreamWindow
        self.maxStreamWindow = maxStreamWindow
        self.initialTunnelWindow = initialTunnelWindow
        self.maxTunnelWindow = maxTunnelWindow
    }

    /// What is inconsistent, or an empty list when the configuration can be used.
    public var problems: [String] {
        var found: [String] = []
        if noLinkGracePeriod < .zero { found.append("noLinkGracePeriod is negative") }
        if maxStreams < 1 { found.append("maxStreams must be at least 1") }
        if initialStreamWindow < 1 { found.append("initialStreamWindow must be at least 1") }
        if maxStreamWindow < initialStreamWindow { found.append("maxStreamWindow is below initialStreamWindow") }
        if maxOutOfOrderPieces < 64 {
            found.append("maxOutOfOrderPieces is below 64: streams over several links would be reset")
        }
        if maxOutOfOrderPiecesPerTunnel < maxOutOfOrderPieces {
            found.append("maxOutOfOrderPiecesPerTunnel is below maxOutOfOrderPieces")
        }
        if initialTunnelWindow < Int(WireProtocol.initialTunnelCredit) {
            found.append("initialTunnelWindow is below the protocol's initial tunnel credit (4 MiB)")
        }
        if maxTunnelWindow < initialTunnelWindow { found.append("maxTunnelWindow is below initialTunnelWindow") }
        return found
    }
}
