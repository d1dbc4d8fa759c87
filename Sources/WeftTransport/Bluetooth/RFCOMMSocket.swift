import CBluetooth
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// RFCOMM sockets through BlueZ's libbluetooth: opened, bound and connected here, then handed
/// to NIO as ordinary socket channels (`ServerBootstrap.withBoundSocket`,
/// `ClientBootstrap.withConnectedSocket`; NIO skips TCP options on a family it does not know,
/// and gives such channels no addresses). `connect` may block for its timeout, so it runs on
/// NIO's thread pool, never on an event loop.
enum RFCOMMSocket {
    /// RFCOMM server channels.
    static let channels: ClosedRange<Int> = 1...30

    /// Connects wait here, each for up to its dial timeout: a few peers out of range must not
    /// hold NIO's shared pool (host-name lookups) for that long.
    static let connectPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        return pool
    }()

    /// The address of a local adapter that is up, found by its address or its kernel name.
    static func address(of adapter: BluetoothAdapter) throws -> BluetoothAddress {
        let id = adapter.description.withCString { hci_devid($0) }
        guard id >= 0 else {
            throw LinkError(.transport, "no Bluetooth adapter \(adapter) is present and up")
        }
        var address = weft_bdaddr_t()
        guard hci_devba(id, &address) == 0 else {
            let code = errno
            throw LinkError(.transport, "the Bluetooth adapter \(adapter) is down: \(errorText(code))")
        }
        guard let parsed = BluetoothAddress(kernelOrder: bytes(of: address)) else {
            throw LinkError(.transport, "the Bluetooth adapter \(adapter) has no address")
        }
        return parsed
    }

    /// A non-blocking RFCOMM socket bound to `adapter`'s `channel`, for a listener: NIO's
    /// server channel (`ServerBootstrap.withBoundSocket`) calls `listen` itself.
    static func bound(adapter: BluetoothAddress, channel: Int) throws -> CInt {
        // Channel 0 would have the kernel pick one: a listener must be where it was announced.
        guard channels.contains(channel) else { throw LinkError(.transport, "RFCOMM channel \(channel) is not 1–30") }
        let fd = try open()
        do {
            try bind(fd, adapter: adapter, channel: channel)
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Connects from `adapter` (nil: the kernel picks) to `channel` at `peer`, waiting at most
    /// `timeout`. Returns the connected, non-blocking socket.
    static func connect(
        from adapter: BluetoothAddress?, to peer: BluetoothAddress, channel: Int, timeout: TimeAmount
    ) throws -> CInt {
        guard channels.contains(channel) else { throw LinkError(.transport, "RFCOMM channel \(channel) is not 1–30") }
        let fd = try open()
        do {
            if let adapter { try bind(fd, adapter: adapter, channel: 0) }
            var address = socketAddress(peer, channel: channel)
            let result = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<weft_sockaddr_rc>.size))
                }
            }
            if result != 0 {
                let code = errno
                guard code == EINPROGRESS || code == EAGAIN else {
                    throw LinkError(.transport, "RFCOMM connect to \(peer) channel \(channel): \(errorText(code))")
                }
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let milliseconds = CInt(clamping: max(timeout.nanoseconds / 1_000_000, 1))
                var ready: CInt
                repeat { ready = poll(&poller, 1, milliseconds) } while ready < 0 && errno == EINTR
                guard ready > 0 else {
                    throw LinkError(.handshakeTimeout, "RFCOMM connect to \(peer) channel \(channel) timed out")
                }
                var failure: CInt = 0
                var length = socklen_t(MemoryLayout<CInt>.size)
                guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == 0, failure == 0 else {
                    throw LinkError(
                        .transport,
                        "RFCOMM connect to \(peer) channel \(channel): \(errorText(failure == 0 ? errno : failure))")
                }
            }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    private static func open() throws -> CInt {
        let fd = socket(
            WEFT_AF_BLUETOOTH, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue),
            WEFT_BTPROTO_RFCOMM)
        guard fd >= 0 else {
            throw LinkError(.transport, "no RFCOMM sockets on this machine: \(errorText(errno))")
        }
        return fd
    }

    private static func bind(_ fd: CInt, adapter: BluetoothAddress, channel: Int) throws {
        var address = socketAddress(adapter, channel: channel)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<weft_sockaddr_rc>.size))
            }
        }
        guard result == 0 else {
            throw LinkError(.transport, "bind to \(adapter) RFCOMM channel \(channel): \(errorText(errno))")
        }
    }

    private static func socketAddress(_ address: BluetoothAddress, channel: Int) -> weft_sockaddr_rc {
        var socketAddress = weft_sockaddr_rc()
        socketAddress.rc_family = UInt16(WEFT_AF_BLUETOOTH)
        let kernel = address.kernelOrder
        socketAddress.rc_bdaddr.b = (kernel[0], kernel[1], kernel[2], kernel[3], kernel[4], kernel[5])
        socketAddress.rc_channel = UInt8(clamping: channel)
        return socketAddress
    }

    private static func bytes(of address: weft_bdaddr_t) -> [UInt8] {
        withUnsafeBytes(of: address.b) { Array($0) }
    }

    static func errorText(_ code: CInt) -> String {
        String(cString: strerror(code))
    }
}
