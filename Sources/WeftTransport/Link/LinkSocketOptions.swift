import NIOCore

/// Socket settings every link gets.
///
/// `TCP_NODELAY`: frames leave at once. `TCP_NOTSENT_LOWAT`: the kernel keeps only a little
/// unsent data per link, so bytes wait in the engine, where the scheduler can still choose the
/// link they go on, and RTT samples are not inflated by a deep kernel queue.
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

    /// Applies the options to a connected (or connecting) channel.
    public static func apply(to channel: Channel) -> EventLoopFuture<Void> {
        channel.setOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1).flatMap {
            channel.setOption(notSentLowWaterOption, value: SocketOptionValue(notSentLowWater))
        }
    }
}
