/// The proxy that links are dialed through (`tunnel.proxy`): an HTTP proxy's CONNECT method, or
/// SOCKS5, as corporate networks require. Only the dialing side uses it.
public struct LinkProxy: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable {
        case http
        case socks5
    }

    public var kind: Kind
    public var host: String
    public var port: Int
    /// HTTP: sent as `Proxy-Authorization: Basic`.
    public var username: String?
    public var password: String?

    public init(kind: Kind, host: String, port: Int, username: String? = nil, password: String? = nil) {
        self.kind = kind
        self.host = host
        self.port = port
        self.username = username
        self.password = password
    }

    /// Never prints the password.
    public var description: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let user = username.map { "\($0):***@" } ?? ""
        return "\(kind.rawValue)://\(user)\(bracketed):\(port)"
    }

    /// Why `url` is not a proxy this build can use, or the proxy: `http://[USER:PASS@]HOST:PORT`
    /// or `socks5://HOST:PORT` (SOCKS5 without authentication: NIOSOCKS offers no other).
    public static func parse(_ url: String) -> Result<LinkProxy, ParseError> {
        let lowered = url.lowercased()
        let kind: Kind
        let rest: Substring
        if lowered.hasPrefix("http://") {
            kind = .http
            rest = url.dropFirst(7)
        } else if lowered.hasPrefix("socks5://") {
            kind = .socks5
            rest = url.dropFirst(9)
        } else {
            return .failure(ParseError("expected http://HOST:PORT or socks5://HOST:PORT"))
        }
        var authority = rest.hasSuffix("/") ? rest.dropLast() : rest
        guard !authority.contains("/") else { return .failure(ParseError("a proxy URL has no path")) }
        var username: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            guard kind == .http else {
                return .failure(
                    ParseError("SOCKS5 with a user name and password is not supported; use an http:// proxy"))
            }
            let parts = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty,
                let user = parts[0].removingPercentEncoding, let pass = parts[1].removingPercentEncoding
            else { return .failure(ParseError("expected USER:PASSWORD@ before the host")) }
            username = user
            password = pass
        }
        var host: Substring
        var portText: Substring
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            guard after.hasPrefix(":") else { return .failure(ParseError("expected a port after the host")) }
            portText = after.dropFirst()
        } else {
            guard let colon = authority.lastIndex(of: ":") else {
                return .failure(ParseError("expected a port after the host"))
            }
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:".contains($0)) })
        else { return .failure(ParseError("expected a host name or IP address")) }
        guard let port = Int(portText), (1...65_535).contains(port) else {
            return .failure(ParseError("expected a port from 1 to 65535"))
        }
        return .success(
            LinkProxy(kind: kind, host: String(host), port: port, username: username, password: password))
    }

    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}

extension Substring {
    /// `%XX` escapes decoded (for user names and passwords in URLs); nil if malformed.
    fileprivate var removingPercentEncoding: String? {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
