import NIOCore
import NIOPosix

/// Opens the socket of an exposed app, on the tunnel's event loop so its bytes need no hop.
///
/// The socket starts with reading off (the relay turns it on once attached) and allows a
/// half-close, so an app's EOF and a client's EOF both travel end to end.
enum AppConnector {
    static func connect(
        _ socket: AppSocket, on eventLoop: EventLoop, timeout: TimeAmount, relay: StreamRelay
    ) -> EventLoopFuture<Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RelayChannelHandler(relay: relay))
                }
            }
        switch socket {
        case .tcp(let address, let port):
            do {
                return bootstrap.connect(to: try SocketAddress(ipAddress: address.description, port: port))
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
        case .unix(let path):
            return bootstrap.connect(unixDomainSocketPath: path)
        case .udp:
            // A UDP app is reached by `UDPAppFlow`, never through a byte-stream relay.
            return eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
    }
}
