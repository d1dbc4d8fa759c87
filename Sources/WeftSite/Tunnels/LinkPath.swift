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
        "\(local.map { "\($0)" } ?? "*")→\(String(host: remote.address.description, port: remote.port))#\(index)"
    }

    /// Endpoints of one peer that are dialed at most: a peer's announcement cannot make this
    /// site dial without end.
    public static let maxEndpoints = 16

    /// Links kept to one peer at most, however many endpoints and local addresses there are
    /// (the same bound as the links one tunnel accepts).
    public static let maxPathsPerPeer = 64

    /// Every link to keep to a peer announcing `endpoints`: each endpoint from each local
    /// address of the same family, `linksPerPath` times, at most `maxPathsPerPeer`. Endpoints
    /// the policy refuses (not an IP literal, unspecified, link-local, multicast, this site's own
    /// listener, ...) are left out, as are pairs of different families.
    public static func plan(
        endpoints: [SiteAnnouncement.Endpoint], localAddresses: [IPAddress], linksPerPath: Int,
        policy: EndpointPolicy = EndpointPolicy()
    ) -> [LinkPath] {
        var paths: [LinkPath] = []
        var seen = Set<LinkPath>()
        for endpoint in endpoints.prefix(maxEndpoints) where endpoint.linkType == .tls {
            guard policy.refusal(address: endpoint.address, port: Int(endpoint.port)) == nil,
                let address = IPAddress(endpoint.address)
            else { continue }
            let remote = HostPort(address: address.normalized, port: Int(endpoint.port))
            let locals: [IPAddress?] =
                localAddresses.isEmpty ? [nil] : localAddresses.filter { $0.family == remote.address.family }
            for local in locals {
                for index in 0..<max(1, linksPerPath) where paths.count < maxPathsPerPeer {
                    let path = LinkPath(remote: remote, local: local, index: index)
                    if seen.insert(path).inserted { paths.append(path) }
                }
            }
        }
        return paths
    }
}

extension LinkPath {
    /// The announced endpoints the policy refuses, each with why: logged once per announcement.
    public static func refused(
        endpoints: [SiteAnnouncement.Endpoint], policy: EndpointPolicy
    ) -> [(endpoint: String, refusal: EndpointPolicy.Refusal)] {
        endpoints.prefix(maxEndpoints).compactMap { endpoint in
            policy.refusal(address: endpoint.address, port: Int(endpoint.port)).map {
                ("\(endpoint.address) port \(endpoint.port)", $0)
            }
        }
    }
}
