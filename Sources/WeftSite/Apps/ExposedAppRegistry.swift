import WeftWire

/// Decides what a stream opened by a peer may reach: only apps listed in `localExposedApps`,
/// and for range apps only literal addresses and ports inside the ranges.
///
/// Every way around a range check is closed here: host names are refused (what is checked is
/// exactly what is connected), IPv4-mapped IPv6 addresses are checked and connected in their
/// IPv4 form, and Unix socket targets are refused for range apps.
public struct ExposedAppRegistry: Sendable {
    public enum Decision: Sendable, Equatable {
        case connect(AppSocket)
        case refuse(StreamReset.Code, String)
    }

    private let apps: [String: ExposedAppConfig]

    public init(_ apps: [ExposedAppConfig]) {
        var table: [String: ExposedAppConfig] = [:]
        for app in apps { table[app.appName] = app }
        self.apps = table
    }

    /// The PROXY header the app wants, if any.
    public func proxyProtocol(of appName: String) -> ExposedAppConfig.ProxyProtocol? {
        apps[appName]?.proxyProtocol
    }

    /// The idle timeout of the app's UDP flows.
    public func udpIdleTimeout(of appName: String) -> Duration {
        apps[appName]?.udpIdleTimeout ?? ExposedAppConfig.defaultUDPIdleTimeout
    }

    /// What to do with a stream `peer` opened to `appName` (and `target`, for range apps);
    /// `datagrams`: the stream is a UDP client's, and only a UDP socket may take it.
    public func resolve(appName: String, target: String?, peer: String, datagrams: Bool = false) -> Decision {
        guard let app = apps[appName] else {
            return .refuse(.notExposed, "no app named \"\(appName)\" is exposed here")
        }
        guard app.isAllowed(for: peer) else {
            return .refuse(.notAllowed, "\(appName) is not open to site \"\(peer)\" (allowedSites)")
        }
        switch app.mode {
        case .single(let socket):
            // A single app has one socket; a target the client names changes nothing. A UDP
            // client's datagrams never go into a byte stream, nor the other way round.
            guard socket.isDatagram == datagrams else {
                return .refuse(
                    .notExposed,
                    socket.isDatagram
                        ? "\(appName) is a UDP app; the client came over TCP"
                        : "\(appName) is not a UDP app; the client came over UDP")
            }
            return .connect(socket)
        case .range:
            guard let target, !target.isEmpty else {
                return .refuse(.targetOutOfRange, "\(appName) is a range app; the client named no target")
            }
            let parsed: AppSocket
            switch AppSocket.parse(target) {
            case .success(let socket): parsed = socket
            case .failure(let error):
                return .refuse(.targetOutOfRange, "target \"\(target)\" refused: \(error.message)")
            }
            let address: IPAddress
            let port: Int
            switch parsed {
            case .tcp(let a, let p) where !datagrams && app.protocols.contains(.tcp):
                (address, port) = (a, p)
            case .udp(let a, let p) where datagrams && app.protocols.contains(.udp):
                (address, port) = (a, p)
            default:
                let allowed = app.protocols.map(\.rawValue).sorted().joined(separator: " and ").uppercased()
                return .refuse(
                    .targetOutOfRange,
                    "\(appName) reaches \(allowed) targets only, not \(target)\(datagrams ? " (a UDP client)" : "")")
            }
            let normalized = address.normalized
            guard app.allows(normalized, port: port) else {
                return .refuse(.targetOutOfRange, "\(target) is outside the ranges of \(appName)")
            }
            return .connect(datagrams ? .udp(normalized, port: port) : .tcp(normalized, port: port))
        }
    }
}
