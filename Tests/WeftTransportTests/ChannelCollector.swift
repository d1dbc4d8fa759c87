import Crypto
import NIOCore

/// Hashes what it reads until `expected` bytes arrived; remembers how the channel ended.
/// (`@unchecked Sendable`: used on its channel's loop; tests read it once it is done.)
final class ChannelCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private var hash = SHA256()
    private(set) var count = 0
    private let expected: Int
    let done: EventLoopPromise<String>
    let inactive: EventLoopPromise<Int>

    init(expected: Int, on eventLoop: EventLoop) {
        self.expected = expected
        done = eventLoop.makePromise().failing(after: PatternSender.deadline)
        inactive = eventLoop.makePromise().failing(after: PatternSender.deadline)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        bytes.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
        count += bytes.readableBytes
        if count == expected { done.succeed(Array(hash.finalize()).hexEncoded) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        inactive.succeed(count)
        done.fail(ChannelError.eof)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}
