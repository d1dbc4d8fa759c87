/// Where an app listens or a local socket is opened: `tcp:IP:PORT`, `tcp:[IPv6]:PORT` or
/// `unix:/path`, as in wovenet's config, and *weft*'s `udp:IP:PORT` for UDP apps.
public enum AppSocket: Hashable, Sendable, CustomStringConvertible {
    case tcp(IPAddress, port: Int)
    case unix(path: String)
    /// A UDP app: each client address becomes a stream of datagrams.
    case udp(IPAddress, port: Int)

    /// Unix socket paths longer than this do not fit `sockaddr_un.sun_path` with its NUL.
    public static let maxUnixPathBytes = 107

    /// What the config expects, for error messages.
    public static let expected = "expected tcp:IP:PORT, tcp:[IPv6]:PORT, udp:IP:PORT or unix:/path"

    /// Parses the config form; the message explains what is wrong.
    public static func parse(_ text: String) -> Result<AppSocket, SocketParseError> {
        guard let colon = text.firstIndex(of: ":") else {
            return .failure(.init(AppSocket.expected))
        }
        let scheme = text[..<colon].lowercased()
        let rest = String(text[text.index(after: colon)...])
        switch scheme {
        case "tcp":
            return HostPort.parseLiteral(rest).map { .tcp($0.address, port: $0.port) }
        case "udp":
            return HostPort.parseLiteral(rest).map { .udp($0.address, port: $0.port) }
        case "unix":
            guard !rest.isEmpty else { return .failure(.init("empty Unix socket path; " + AppSocket.expected)) }
            guard rest.utf8.count <= maxUnixPathBytes else {
                return .failure(.init("Unix socket path is \(rest.utf8.count) bytes, the limit is \(maxUnixPathBytes)"))
            }
            guard !rest.utf8.contains(0) else { return .failure(.init("Unix socket path contains a NUL byte")) }
            return .success(.unix(path: rest))
        default:
            return .failure(.init(AppSocket.expected))
        }
    }

    public var description: String {
        switch self {
        case .tcp(let address, let port):
            address.family == .v6 ? "tcp:[\(address)]:\(port)" : "tcp:\(address):\(port)"
        case .unix(let path):
            "unix:\(path)"
        case .udp(let address, let port):
            address.family == .v6 ? "udp:[\(address)]:\(port)" : "udp:\(address):\(port)"
        }
    }

    /// Whether it is a Unix socket.
    public var isUnix: Bool {
        if case .unix = self { return true }
        return false
    }

    /// Whether it names an unspecified address (`0.0.0.0`, `::`): nothing can be reached there.
    public var unspecifiedAddress: Bool {
        switch self {
        case .tcp(let address, _), .udp(let address, _): address.isUnspecified
        case .unix: false
        }
    }

    /// Whether it carries datagrams (`udp:`) rather than a byte stream.
    public var isDatagram: Bool {
        if case .udp = self { return true }
        return false
    }
}

/// Why a socket or address string was refused.
public struct SocketParseError: Error, Hashable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// An IP literal and a port, `IP:PORT` or `[IPv6]:PORT`.
public struct HostPort: Hashable, Sendable {
    public var address: IPAddress
    public var port: Int

    public init(address: IPAddress, port: Int) {
        self.address = address
        self.port = port
    }

    /// Parses an address literal and a port from 1 to 65535. Host names are refused: what is
    /// written is exactly what is checked and connected.
    public static func parseLiteral(_ text: String, allowPortZero: Bool = false) -> Result<HostPort, SocketParseError> {
        switch split(text) {
        case .failure(let error):
            return .failure(error)
        case .success(let (host, portText)):
            if host.contains(":") && !text.hasPrefix("[") {
                return .failure(.init("IPv6 addresses need brackets, e.g. tcp:[::1]:8080"))
            }
            guard let address = IPAddress(host) else {
                return .failure(.init("\"\(host)\" is not an IP address (host names are not accepted here)"))
            }
            return parsePort(portText, allowZero: allowPortZero).map { HostPort(address: address, port: $0) }
        }
    }

    /// Splits `host:port` or `[v6]:port` without judging the host.
    public static func split(_ text: String) -> Result<(String, String), SocketParseError> {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                return .failure(.init("missing \"]\" after an IPv6 address"))
            }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else { return .failure(.init("missing :PORT after \"]\"")) }
            return .success((host, String(after.dropFirst())))
        }
        guard let colon = text.lastIndex(of: ":") else {
            return .failure(.init("missing :PORT"))
        }
        return .success((String(text[..<colon]), String(text[text.index(after: colon)...])))
    }

    /// A decimal port; 0 only when asked for.
    public static func parsePort(_ text: String, allowZero: Bool = false) -> Result<Int, SocketParseError> {
        guard !text.isEmpty, text.utf8.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(text), port <= 65535, allowZero || port > 0
        else {
            return .failure(.init("\"\(text)\" is not a port (\(allowZero ? 0 : 1)–65535)"))
        }
        return .success(port)
    }
}
