import NIOCore

/// What a site tells the mesh about itself: how to reach it and what it offers.
public struct SiteAnnouncement: Hashable, Sendable {
    /// A socket peers may dial for a link.
    public struct Endpoint: Hashable, Sendable {
        /// How a link to the endpoint travels (see `LinkTransport`).
        public enum LinkType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
            /// TLS 1.3 over TCP.
            case tls = 1
            /// weft's TLS inside WebSocket binary messages (HTTP/1.1 upgrade), reachable through
            /// reverse proxies; `address` holds the `ws://` or `wss://` URL.
            case websocket = 2
            /// QUIC over UDP: the link is one bidirectional stream, QUIC's TLS 1.3 carries the
            /// site certificates.
            case quic = 3
            /// A link relayed by another site of the mesh (`RelayProtocol`): `address` names the
            /// relay, which the announcing site holds a direct tunnel to; `port` is 0.
            case relay = 4
            /// A QUIC socket behind NAT (`nat-traversal`): `address` and `port` are its public
            /// mapping, reached only by hole punching (a rendezvous first), never dialed as is.
            case punch = 5
            /// RFCOMM over Bluetooth: `address` is the adapter's address (`00:1A:7D:DA:71:13`),
            /// `port` the RFCOMM channel (1–30). Older builds skip it, as a peer without
            /// Bluetooth does.
            case bluetooth = 6
            /// A USB cable to a weft gadget (`mode: usb-gadget`): `address` is the gadget's serial
            /// number, `port` 1. Dialed only by a site with a USB host socket.
            case usb = 7

            public var description: String {
                switch self {
                case .tls: "tls"
                case .websocket: "websocket"
                case .quic: "quic"
                case .relay: "relay"
                case .punch: "punch"
                case .bluetooth: "bluetooth"
                case .usb: "usb"
                }
            }
        }

        public var linkType: LinkType
        /// An IP literal (no brackets); for `websocket`, the URL to dial; for `bluetooth`, a
        /// Bluetooth address; for `usb`, a gadget's serial number.
        public var address: String
        public var port: UInt16

        public init(linkType: LinkType, address: String, port: UInt16) {
            self.linkType = linkType
            self.address = address
            self.port = port
        }
    }

    public enum Limits {
        public static let siteID = 64
        public static let softwareVersion = 64
        public static let endpoints = 64
        public static let address = 64
        public static let apps = 1024
        public static let appName = 255
        public static let revoked = 64
        public static let previousCertificate = DiscoveryMessage.Limits.certificate
        public static let previousSignature = 255
    }

    /// A revoked identity: the SHA-256 of its certificate.
    public static let fingerprintLength = 32

    public static let sessionLength = 16

    /// The tunnel protocol version the site speaks.
    public var protocolVersion: UInt16
    /// Capability bit: the site relays links between other sites (`tunnel.relay`).
    public static let relaysLinks: UInt32 = 1 << 0

    /// Feature bits; unknown bits are ignored.
    public var capabilities: UInt32
    /// Random per process start: a new value means the site restarted. (Not a tunnel's
    /// incarnation: those are per tunnel, in the link handshake.)
    public var instance: UInt64
    /// Random per broker connection: binds the site's last will to this connection.
    public var session: [UInt8]
    /// The random id in the site's certificate.
    public var siteID: String
    public var softwareVersion: String
    /// How often the site re-announces, so receivers know when silence means gone.
    public var refreshSeconds: UInt16
    public var endpoints: [Endpoint]
    /// Names of the apps the site exposes.
    public var apps: [String]
    /// Endpoints of link types this build does not know, skipped when parsing (not serialized):
    /// a newer peer may offer transports this one cannot dial.
    public var skippedEndpoints: Int = 0
    /// Identities this site's operator revoked (`weft trust revoke`), as certificate SHA-256s:
    /// sites that name this one in `crypto.revokers` refuse them too.
    public var revoked: [[UInt8]]
    /// After an identity rotation: the previous identity's certificate (DER) and its signature
    /// endorsing the current one, so peers that pinned the old re-pin the new. Empty otherwise.
    public var previousCertificate: [UInt8]
    public var previousSignature: [UInt8]

    public init(
        protocolVersion: UInt16,
        capabilities: UInt32,
        instance: UInt64,
        session: [UInt8],
        siteID: String,
        softwareVersion: String,
        refreshSeconds: UInt16,
        endpoints: [Endpoint],
        apps: [String],
        revoked: [[UInt8]] = [],
        previousCertificate: [UInt8] = [],
        previousSignature: [UInt8] = []
    ) {
        self.protocolVersion = protocolVersion
        self.capabilities = capabilities
        self.instance = instance
        self.session = session
        self.siteID = siteID
        self.softwareVersion = softwareVersion
        self.refreshSeconds = refreshSeconds
        self.endpoints = endpoints
        self.apps = apps
        self.revoked = revoked
        self.previousCertificate = previousCertificate
        self.previousSignature = previousSignature
    }

    /// Serializes: `u16 version | u32 caps | u64 instance | 16 session | u8+siteID |
    /// u8+software | u16 refresh | u8 count, (u8 type | u8+address | u16 port)* | u16 count, (u8+name)*
    /// u8 count, (32 fingerprint)* | u16+previous certificate | u8+previous signature`.
    public func serialized() -> [UInt8] {
        precondition(session.count == Self.sessionLength)
        precondition(revoked.count <= Limits.revoked && revoked.allSatisfy { $0.count == Self.fingerprintLength })
        precondition(
            previousCertificate.count <= Limits.previousCertificate
                && previousSignature.count <= Limits.previousSignature)
        var buffer = ByteBuffer()
        buffer.writeInteger(protocolVersion)
        buffer.writeInteger(capabilities)
        buffer.writeInteger(instance)
        buffer.writeBytes(session)
        buffer.writePrefixedString(UInt8.self, siteID)
        buffer.writePrefixedString(UInt8.self, softwareVersion)
        buffer.writeInteger(refreshSeconds)
        buffer.writeInteger(UInt8(endpoints.count))
        for endpoint in endpoints {
            buffer.writeInteger(endpoint.linkType.rawValue)
            buffer.writePrefixedString(UInt8.self, endpoint.address)
            buffer.writeInteger(endpoint.port)
        }
        buffer.writeInteger(UInt16(apps.count))
        for app in apps { buffer.writePrefixedString(UInt8.self, app) }
        buffer.writeInteger(UInt8(revoked.count))
        for fingerprint in revoked { buffer.writeBytes(fingerprint) }
        buffer.writePrefixedBytes(UInt16.self, previousCertificate)
        buffer.writePrefixedBytes(UInt8.self, previousSignature)
        return Array(buffer.readableBytesView)
    }

    /// Parses with hard limits; endpoints of unknown link types are skipped (a newer peer may
    /// offer link types this build cannot dial), anything else malformed is an error.
    public init(parsing bytes: [UInt8]) throws(WireError) {
        var buffer = ByteBuffer(bytes: bytes)
        protocolVersion = try buffer.readWireInteger(field: "protocol version")
        capabilities = try buffer.readWireInteger(field: "capabilities")
        instance = try buffer.readWireInteger(field: "instance")
        session = try buffer.readWireBytes(length: Self.sessionLength, field: "session")
        siteID = try buffer.readPrefixedName(UInt8.self, limit: Limits.siteID, field: "site id")
        softwareVersion = try buffer.readPrefixedString(
            UInt8.self,
            limit: Limits.softwareVersion,
            field: "software version"
        )
        refreshSeconds = try buffer.readWireInteger(field: "refresh")
        let endpointCount = Int(try buffer.readWireInteger(UInt8.self, field: "endpoint count"))
        guard endpointCount <= Limits.endpoints else { throw WireError(.limitExceeded, field: "endpoint count") }
        endpoints = []
        for _ in 0..<endpointCount {
            let rawType = try buffer.readWireInteger(UInt8.self, field: "link type")
            let address = try buffer.readPrefixedName(UInt8.self, limit: Limits.address, field: "address")
            let port = try buffer.readWireInteger(UInt16.self, field: "port")
            if let type = Endpoint.LinkType(rawValue: rawType) {
                endpoints.append(Endpoint(linkType: type, address: address, port: port))
            } else {
                skippedEndpoints += 1
            }
        }
        let appCount = Int(try buffer.readWireInteger(UInt16.self, field: "app count"))
        guard appCount <= Limits.apps else { throw WireError(.limitExceeded, field: "app count") }
        apps = []
        for _ in 0..<appCount {
            apps.append(try buffer.readPrefixedName(UInt8.self, limit: Limits.appName, field: "app name"))
        }
        let revokedCount = Int(try buffer.readWireInteger(UInt8.self, field: "revoked count"))
        guard revokedCount <= Limits.revoked else { throw WireError(.limitExceeded, field: "revoked count") }
        revoked = []
        for _ in 0..<revokedCount {
            revoked.append(try buffer.readWireBytes(length: Self.fingerprintLength, field: "revoked fingerprint"))
        }
        previousCertificate = try buffer.readPrefixedBytes(
            UInt16.self, limit: Limits.previousCertificate, field: "previous certificate")
        previousSignature = try buffer.readPrefixedBytes(
            UInt8.self, limit: Limits.previousSignature, field: "previous signature")
        guard buffer.readableBytes == 0 else { throw WireError(.trailingBytes, field: "announcement") }
    }
}
