import NIOCore

/// Socket settings every link gets.
///
/// `TCP_NODELAY`: frames leave at once. `TCP_NOTSENT_LOWAT`: the kernel keeps only a little
/// unsent data per link, so bytes wait in the engine, where the scheduler can still choose the
/// link they go on, and RTT samples are not inflated by a deep kernel queue. The channel's write
/// buffer watermarks do the same one level up: the engine sends new frames only to a writable
/// link, so NIO holds at most about `writeBufferHigh` per link (plus acks and pings), even
/// when the peer stops reading.
public enum LinkSocketOptions {
    /// Unsent bytes the kernel may hold per link.
    public static let notSentLowWater = 128 << 10
    /// NIO's write buffer per link: unwritable above the high mark, writable again below the low.
    public static let writeBufferLow = 128 << 10
    public static let writeBufferHigh = 256 << 10

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
        }.flatMap {
            channel.setOption(
                ChannelOptions.writeBufferWaterMark, value: .init(low: writeBufferLow, high: writeBufferHigh))
        }
    }
}
