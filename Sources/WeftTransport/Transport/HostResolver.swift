import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Resolves a host name of a WebSocket URL before anything connects, so every address it
/// leads to is checked against the endpoint policy first: a member that announces a name
/// cannot get a TCP handshake (or, through a proxy, a request) out of this site towards an
/// address it could not announce as a literal. getaddrinfo blocks, so it runs on NIO's thread
/// pool, never on an event loop.
enum HostResolver {
    /// Addresses of `host` (TCP, both families), or an empty list when it does not resolve.
    static func resolve(_ host: String, port: Int, on eventLoop: EventLoop) -> EventLoopFuture<[SocketAddress]> {
        NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { lookUp(host, port: port) }
    }

    static func lookUp(_ host: String, port: Int) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var result: [SocketAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let address = current.pointee.ai_addr {
                switch current.pointee.ai_family {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        result.append(SocketAddress($0.pointee, host: host))
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        result.append(SocketAddress($0.pointee, host: host))
                    }
                default:
                    break
                }
            }
            entry = current.pointee.ai_next
        }
        return result
    }
}
