/// The transports a site dials over, by link type.
public struct LinkTransportSet: Sendable {
    private var byKind: [LinkEndpoint.Kind: any LinkTransport] = [:]

    /// TLS over TCP with default settings.
    public static let tcpOnly = LinkTransportSet([TCPLinkTransport()])

    public init(_ transports: [any LinkTransport]) {
        for transport in transports { byKind[transport.kind] = transport }
    }

    public subscript(kind: LinkEndpoint.Kind) -> (any LinkTransport)? {
        byKind[kind]
    }
}
