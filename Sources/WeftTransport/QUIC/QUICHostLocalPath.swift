import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// A path to a peer on this very host, and the datagrams it carries.
///
/// ngtcp2 0.12 discovers a path's MTU only up to 1452 bytes, which is right for a network: a
/// larger datagram may vanish in a router nobody here can see. A peer on this host is reached
/// over the loopback device, and then the kernel knows the whole path: its MTU (64 KiB on
/// Linux) is the route's. Every QUIC packet costs an AEAD call, header protection and its share
/// of a system call, so on loopback 16 KB packets carry about twice what 1452-byte ones do.
enum QUICHostLocalPath {
    /// The largest UDP payload a datagram to `remote` can carry when `remote` is this host and
    /// the kernel hands a run of datagrams to one read (UDP GRO, so the peer's reads take
    /// 64 KiB); nil for any other path, which keeps ngtcp2's path MTU discovery.
    static func datagramPayload(to remote: SocketAddress) -> Int? {
        guard System.supportsUDPReceiveOffload else { return nil }
        let family: CInt
        let headers: Int
        switch remote {
        case .v4:
            family = AF_INET
            headers = 20 + 8
        case .v6:
            family = AF_INET6
            headers = 40 + 8
        case .unixDomainSocket:
            return nil
        }
        let probe = socket(family, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return nil }
        defer { close(probe) }
        // Connecting a UDP socket sends nothing: it asks the kernel for the route.
        let connected = remote.withSockAddr { address, length in
            connect(probe, address, socklen_t(length)) == 0
        }
        guard connected, isThisHost(remote, source: boundAddress(of: probe)) else { return nil }
        var mtu: CInt = 0
        var size = socklen_t(MemoryLayout<CInt>.size)
        let level = family == AF_INET ? CInt(IPPROTO_IP) : CInt(IPPROTO_IPV6)
        let option = family == AF_INET ? ipMTU : ipv6MTU
        guard getsockopt(probe, level, option, &mtu, &size) == 0, Int(mtu) > headers else { return nil }
        return Int(mtu) - headers
    }

    /// A destination is this host when it is a loopback address, or when the kernel picks the
    /// destination itself as the source (a route in the local table: one of this host's own
    /// addresses, carried over the loopback device whatever interface holds it).
    static func isThisHost(_ remote: SocketAddress, source: SocketAddress?) -> Bool {
        guard let remoteIP = remote.ipAddress else { return false }
        if remoteIP.hasPrefix("127.") || remoteIP == "::1" || remoteIP.hasPrefix("::ffff:127.") { return true }
        guard let sourceIP = source?.ipAddress else { return false }
        return sourceIP == remoteIP
    }

    private static func boundAddress(of socket: CInt) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let read = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard read == 0 else { return nil }
        switch CInt(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: storage) { SocketAddress($0.load(as: sockaddr_in.self)) }
        case AF_INET6:
            return withUnsafeBytes(of: storage) { SocketAddress($0.load(as: sockaddr_in6.self)) }
        default:
            return nil
        }
    }

    /// `IP_MTU` and `IPV6_MTU` from <linux/in.h>: the route MTU of a connected socket.
    private static let ipMTU: CInt = 14
    private static let ipv6MTU: CInt = 24
}
