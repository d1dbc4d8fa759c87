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
    /// Bytes buffered out of order for one stream.
    public var maxReassemblyBytesPerStream: Int
    /// Bytes buffered out of order for the whole tunnel.
    public var maxReassemblyBytes: Int
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
        maxReassemblyBytesPerStream: Int = 16 << 20,
        maxReassemblyBytes: Int = 256 << 20,
        initialStreamWindow: Int = 256 << 10,
        maxStreamWindow: Int = 16 << 20,
        initialTunnelWindow: Int = 16 << 20,
        maxTunnelWindow: Int = 64 << 20
    ) {
        self.noLinkGracePeriod = noLinkGracePeriod
        self.maxStreams = maxStreams
        self.maxReassemblyBytesPerStream = maxReassemblyBytesPerStream
        self.maxReassemblyBytes = maxReassemblyBytes
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
        if maxReassemblyBytesPerStream < maxStreamWindow {
            found.append("maxReassemblyBytesPerStream is below maxStreamWindow: a full window could not be held")
        }
        if initialTunnelWindow < Int(WireProtocol.initialTunnelCredit) {
            found.append("initialTunnelWindow is below the protocol's initial tunnel credit (4 MiB)")
        }
        if maxTunnelWindow < initialTunnelWindow { found.append("maxTunnelWindow is below initialTunnelWindow") }
        if maxReassemblyBytes < maxReassemblyBytesPerStream {
            found.append("maxReassemblyBytes is below maxReassemblyBytesPerStream")
        }
        return found
    }
}
