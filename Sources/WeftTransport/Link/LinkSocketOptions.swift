import NIOCore

/// Socket settings every TCP link gets.
///
/// `TCP_NODELAY`: frames leave at once. `TCP_NOTSENT_LOWAT`: the kernel keeps only a little
/// unsent data per link, so bytes wait in the engine, where the scheduler can still choose the
/// link they go on, and RTT samples are not inflated by a deep kernel queue. `TCP_CONGESTION`,
/// when the site sets one (`tunnel.congestionControl`): `bbr` keeps a lossy path's rate where
/// `cubic` halves it.
public enum LinkSocketOptions {
    /// Unsent bytes the kernel may hold per link.
    public static let notSentLowWater = 128 << 10

    #if os(Linux)
        static let notSentLowWaterOption = ChannelOptions.Types.SocketOption(
            level: NIOBSDSocket.OptionLevel.tcp, name: NIOBSDSocket.Option(rawValue: 25))  // TCP_NOTSENT_LOWAT
    #else
        static let notSentLowWaterOption = ChannelOptions.Types.SocketOption(
            level: NIOBSDSocket.OptionLevel.tcp, name: NIOBSDSocket.Option(rawValue: 0x201))  // TCP_NOTSENT_LOWAT
    #endif

    /// Longest congestion-control name the kernel takes (`TCP_CA_NAME_MAX` less its NUL).
    public static let maxCongestionControlName = 15

    /// Applies the options to a connected (or connecting) channel. A congestion control the
    /// kernel refuses leaves the system's default (the site checks the name when it starts).
    public static func apply(to channel: Channel, congestionControl: String? = nil) -> EventLoopFuture<Void> {
        channel.setOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1).flatMap {
            channel.setOption(notSentLowWaterOption, value: SocketOptionValue(notSentLowWater))
        }.flatMap {
            guard let congestionControl else { return channel.eventLoop.makeSucceededVoidFuture() }
            return setCongestionControl(congestionControl, on: channel).recover { _ in }
        }
    }

    /// Sets `TCP_CONGESTION` on the channel's socket.
    public static func setCongestionControl(_ name: String, on channel: Channel) -> EventLoopFuture<Void> {
        #if os(Linux)
            guard let provider = channel as? SocketOptionProvider else {
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            var bytes = Array(name.utf8.prefix(maxCongestionControlName))
            bytes += Array(repeating: 0, count: 16 - bytes.count)
            let value: (UInt64, UInt64) = bytes.withUnsafeBytes { $0.loadUnaligned(as: (UInt64, UInt64).self) }
            return provider.unsafeSetSocketOption(
                level: .tcp, name: NIOBSDSocket.Option(rawValue: 13), value: value)  // TCP_CONGESTION
        #else
            return channel.eventLoop.makeSucceededVoidFuture()
        #endif
    }
}
