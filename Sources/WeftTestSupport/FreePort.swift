import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Loopback ports for test servers.
///
/// Ports come from below the kernel's ephemeral range (`ip_local_port_range`, 32768–60999 by
/// default), never from it: a port the kernel handed out for port 0 and that the test then
/// released is the next source port of some outgoing connection (curl, a link being dialed), and
/// the test's server then fails with "Address already in use". Each port is handed out once per
/// process, and only when TCP and UDP can both bind it on 127.0.0.1 right now.
public enum FreePort {
    /// The range handed out: below the ephemeral range, above the registered services people run.
    public static let range = 20_000..<32_768

    private static let next = Mutex(Int.random(in: range))

    /// A port free on 127.0.0.1 for TCP and UDP, not handed out before in this process.
    public static func find() throws -> Int {
        for _ in 0..<range.count {
            let port = next.withLock { next in
                let port = next
                next = next + 1 == range.upperBound ? range.lowerBound : next + 1
                return port
            }
            if bindable(port, type: SOCK_STREAM), bindable(port, type: SOCK_DGRAM) { return port }
        }
        throw BrokerError(message: "no free loopback port in \(range)")
    }

    private static func bindable(_ port: Int, type: __socket_type) -> Bool {
        withLoopbackSocket(port, type: type) { fd, address, length in bind(fd, address, length) == 0 }
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func accepts(_ port: Int) -> Bool {
        withLoopbackSocket(port, type: SOCK_STREAM) { fd, address, length in connect(fd, address, length) == 0 }
    }

    /// Whether something accepts TCP connections on [::1]:`port`.
    public static func acceptsIPv6(_ port: Int) -> Bool {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        address.sin6_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
            }
        }
    }

    /// Runs `body` with a fresh close-on-exec socket and 127.0.0.1:`port`; the socket is closed after.
    private static func withLoopbackSocket(
        _ port: Int, type: __socket_type, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool
    ) -> Bool {
        let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}
