import WeftTransport
import WeftWire

/// One link a site keeps to a peer: to which of its endpoints (over which transport), from which
/// local address (nil lets the OS choose), and which of the `linksPerPath` links of that pair.
public struct LinkPath: Hashable, Sendable, CustomStringConvertible {
    public var remote: LinkEndpoint
    public var local: IPAddress?
    public var index: Int

    public init(remote: LinkEndpoint, local: IPAddress? = nil, index: Int = 0) {
        self.remote = remote
        self.local = local
        self.index = index
    }

    /// A TLS path to an address.
    public init(remote: HostPort, local: IPAddress? = nil, index: Int = 0) {
        self.init(
            remote: LinkEndpoint(transport: .tls, host: remote.address.description, port: remote.port), local: local,
            index: index)
    }

    public var description: String {
        let target =
            switch remote.transport {
            case .tls: String(host: remote.host, port: remote.port)
            case .quic: "quic \(String(host: remote.host, port: remote.port))"
            case .websocket: remote.url
            case .relay: "relay via \(remote.host)"
            case .punch: "punch \(String(host: remote.host, port: remote.port))"
            case .bluetooth: "bluetooth \(remote.host) channel \(remote.port)"
            case .usb: "usb gadget \(remote.host)"
            }
        return "\(local.map { "\($0)" } ?? "*")→\(target)#\(index)"
    }

    /// Endpoints of one peer that are dialed at most: a peer's announcement cannot make this
    /// site dial without end.
    public static let maxEndpoints = 16

    /// Links kept to one peer at most, however many endpoints and local addresses there are
    /// (the same bound as the links one tunnel accepts).
    public static let maxPathsPerPeer = 64

    /// Whether this site plans paths to endpoints of `type`: a Bluetooth endpoint only when the
    /// site has an adapter of its own (`EndpointPolicy.ownAdapters`), a USB gadget only when it
    /// has a USB host socket; a site without them skips such endpoints silently.
    static func plans(_ type: SiteAnnouncement.Endpoint.LinkType, policy: EndpointPolicy) -> Bool {
        switch type {
        case .punch: false
        case .bluetooth: !policy.ownAdapters.isEmpty
        case .usb: policy.dialsUSB
        default: true
        }
    }

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
        for endpoint in endpoints.prefix(maxEndpoints) {
            // A punch endpoint is reached by hole punching (`HolePuncher`), not dialed as a path.
            guard plans(endpoint.linkType, policy: policy), var remote = LinkEndpoint(announced: endpoint),
                refusal(remote, policy: policy) == nil
            else { continue }
            if remote.transport == .bluetooth || remote.transport == .usb {
                // One RFCOMM connection per adapter pair and channel (a second is refused:
                // EBUSY), one link per USB gadget: `linksPerPath` does not apply.
                let path = LinkPath(remote: remote)
                if paths.count < maxPathsPerPeer, seen.insert(path).inserted { paths.append(path) }
                continue
            }
            let address = IPAddress(remote.host)
            if let address { remote.host = address.normalized.description }
            // A host name (a WebSocket URL's) is resolved when dialed: the OS picks the source.
            let locals: [IPAddress?] =
                localAddresses.isEmpty || address == nil
                ? [nil] : localAddresses.filter { $0.family == address!.family }
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
            guard plans(endpoint.linkType, policy: policy) else { return nil }
            guard let remote = LinkEndpoint(announced: endpoint) else {
                return ("\(endpoint.linkType) \(endpoint.address) port \(endpoint.port)", .malformed)
            }
            let text =
                switch remote.transport {
                case .websocket: remote.url
                case .bluetooth: "bluetooth \(remote.host) channel \(remote.port)"
                case .usb: "usb gadget \(remote.host)"
                default: "\(remote.host) port \(remote.port)"
                }
            return refusal(remote, policy: policy).map { (text, $0) }
        }
    }

    /// Why an endpoint is not dialed: an IP host goes by the policy; a host name only in a
    /// WebSocket URL (its resolved address is checked when dialed).
    static func refusal(_ endpoint: LinkEndpoint, policy: EndpointPolicy) -> EndpointPolicy.Refusal? {
        if endpoint.transport == .bluetooth {
            return policy.bluetoothRefusal(address: endpoint.host, channel: endpoint.port)
        }
        if endpoint.transport == .usb { return policy.usbRefusal(serial: endpoint.host) }
        if IPAddress(endpoint.host) == nil && endpoint.transport == .websocket {
            return endpoint.port > 0 ? nil : .badPort
        }
        return policy.refusal(address: endpoint.host, port: endpoint.port)
    }
}
