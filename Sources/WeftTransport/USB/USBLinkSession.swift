import NIOConcurrencyHelpers
import NIOCore
import WeftWire

#if canImport(Glibc)
    import Glibc
#endif

/// One link over a USB cable, joined to NIO by a socket pair: NIO owns one end as an ordinary
/// stream channel (`ClientBootstrap.withConnectedSocket`), and the USB side moves bytes between
/// the other end and the bulk endpoints on threads of its own, since a bulk endpoint is a
/// blocking file (FunctionFS) or a blocking call (libusb's synchronous transfers).
///
/// Bytes from the cable are written into the pair (`deliver`); a thread reads what NIO wrote,
/// frames it (`USBLinkSerializer`) and hands whole transfers to `send`. Either side ends the
/// session: the cable (a `close` frame, an unbound gadget, a device gone) with `end`, NIO by
/// closing its channel, after which a `close` frame tells the peer. The pair's USB end is
/// closed only when nothing uses the session any more (`deinit`), so no thread ever reads or
/// writes a descriptor number that was closed and handed out again.
final class USBLinkSession: @unchecked Sendable {
    let session: UInt32
    /// NIO's end: handed to NIO once, which closes it.
    let channelEnd: CInt
    private let usbEnd: CInt
    private let ended = NIOLockedValueBox(false)

    init(session: UInt32) throws {
        var pair: [CInt] = [0, 0]
        guard socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw LinkError(.transport, "USB link: no socket pair: \(String(cString: strerror(errno)))")
        }
        _ = fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK)
        self.session = session
        self.channelEnd = pair[0]
        self.usbEnd = pair[1]
    }

    deinit {
        close(usbEnd)
    }

    var isEnded: Bool { ended.withLockedValue { $0 } }

    /// Hands bytes from the cable to NIO; blocks while NIO's side is full (the cable then waits,
    /// which is USB's own flow control). False once the session has ended.
    @discardableResult
    func deliver(_ bytes: ByteBuffer) -> Bool {
        guard !isEnded else { return false }
        return bytes.withUnsafeReadableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = send(usbEnd, buffer.baseAddress! + offset, buffer.count - offset, CInt(MSG_NOSIGNAL))
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }

    /// Ends the session from the cable's side: NIO reads the end of its stream and closes the
    /// channel, and the pump (`pump`) stops.
    func end() {
        let first = ended.withLockedValue { done in
            defer { done = true }
            return !done
        }
        if first { shutdown(usbEnd, CInt(SHUT_RDWR)) }
    }

    /// Reads what NIO writes, framed into transfers for `send`, until NIO closes its channel or
    /// the session ends; then sends a `close` frame unless the cable ended it. `send` returns
    /// false when the cable cannot take more (the session then ends). Runs on its own thread.
    func pump(_ serializer: USBLinkSerializer, send: (ByteBuffer) -> Bool) {
        let capacity = serializer.maxPayload
        var buffer = ByteBufferAllocator().buffer(capacity: capacity)
        while true {
            buffer.clear()
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { pointer in
                var got: Int
                repeat { got = recv(usbEnd, pointer.baseAddress!, capacity, 0) } while got < 0 && errno == EINTR
                return max(got, 0)
            }
            guard count > 0 else { break }
            for transfer in serializer.transfers(carrying: buffer) where !send(transfer) {
                end()
                return
            }
        }
        if !isEnded { _ = send(serializer.close()) }
        end()
    }
}
