import WeftWire

/// One link a site keeps to a peer: to which of its endpoints, from which local address (nil
/// lets the OS choose), and which of the `linksPerPath` links of that pair.
public struct LinkPath: Hashable, Sendable, CustomStringConvertible {
    public var remote: HostPort
    public var local: IPAddress?
    public var index: Int

    public init(remote: HostPort, local: IPAddress? = nil, index: Int = 0) {
        self.remote = remote
        self.local = local
        self.index = index
    }

    public var description: String {
        let to =
            remote.address.family == .v6 ? "[\(remote.address)]:\(remote.port)" : "\(remote.address):\(remote.port)"
        return "\(local.map { "\($0)" } ?? "*")→\(to)#\(index)"
    }

    /// Endpoints of one peer that are dialed at most: a peer's announcement cannot make this
    /// site dial without end.
    public static let maxEndpoints = 16

    /// Every link to keep to a peer announcing `endpoints`: each endpoint from each local
    /// address of the same family, `linksPerPath` times. Endpoints that are not IP literals
    /// (a peer's mistake) or unspecified are left out, as are pairs of different families.
    public static func plan(
        endpoints: [SiteAnnouncement.Endpoint], localAddresses: [IPAddress], linksPerPath: Int
    ) -> [LinkPath] {
        var paths: [LinkPath] = []
        var seen = Set<LinkPath>()
        for endpoint in endpoints.prefix(maxEndpoints) where endpoint.linkType == .tls {
            // 0.0.0.0 or :: would dial this machine itself.
            guard let address = IPAddress(endpoint.address), !address.isUnspecified, endpoint.port > 0 else {
                continue
            }
            let remote = HostPort(address: address.normalized, port: Int(endpoint.port))
            let locals: [IPAddress?] =
                localAddresses.isEmpty ? [nil] : localAddresses.filter { $0.family == remote.address.family }
            for local in locals {
                for index in 0..<max(1, linksPerPath) {
                    let path = LinkPath(remote: remote, local: local, index: index)
                    if seen.insert(path).inserted { paths.append(path) }
                }
            }
        }
        return paths
    }
}
