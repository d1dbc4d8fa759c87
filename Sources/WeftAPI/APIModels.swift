import WeftSite

/// The JSON bodies of the API's answers, one set for both ends: the server encodes them
/// (`SiteAPI`, `SpeedtestRoute`) and `weft status` / `weft speedtest` decode them. The
/// contract is `Resources/openapi.yaml`.
public enum APIModels {
    public struct Site: Codable, Sendable {
        public var siteName: String
        public var fingerprint: String
        public var version: String
        public var uptimeSeconds: Double
    }

    public struct RemoteSite: Codable, Sendable {
        public var siteName: String
        public var online: Bool
        public var fingerprint: String?
        public var endpoints: [String]
        public var apps: [String]
        public var softwareVersion: String?
        public var tunnel: Bool
        /// Why this site has no path to the site (no endpoint either way, no punching, no
        /// relay): its clients are refused meanwhile. Absent while a path exists or may come.
        public var noPath: String?
    }

    /// An app in effect: its entry (the keys of config.yaml's `localExposedApps` or
    /// `remoteApps`), where it comes from (`config` or `api`) and what it carried, in one flat
    /// object.
    @dynamicMemberLookup
    public struct InEffect<Document: Codable & Sendable>: Codable, Sendable {
        public var app: Document
        public var source: String
        /// Bytes and streams since the app was added or the site started (absent from older sites).
        public var traffic: AppTrafficCounts?

        public subscript<Value>(dynamicMember keyPath: KeyPath<Document, Value>) -> Value {
            app[keyPath: keyPath]
        }

        private enum CodingKeys: String, CodingKey { case source, traffic }

        public init(app: Document, source: String, traffic: AppTrafficCounts? = nil) {
            self.app = app
            self.source = source
            self.traffic = traffic
        }

        public init(from decoder: any Decoder) throws {
            app = try Document(from: decoder)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            source = try container.decode(String.self, forKey: .source)
            traffic = try container.decodeIfPresent(AppTrafficCounts.self, forKey: .traffic)
        }

        public func encode(to encoder: any Encoder) throws {
            try app.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(source, forKey: .source)
            try container.encodeIfPresent(traffic, forKey: .traffic)
        }
    }

    public typealias ExposedApp = InEffect<ExposedAppDocument>
    /// For `unix:` local sockets, `localSocketMode` is the socket file's mode in effect ("0660").
    public typealias RemoteApp = InEffect<RemoteAppDocument>

    public struct Link: Codable, Sendable {
        public var id: UInt32
        public var localAddress: String?
        public var remoteAddress: String?
        /// What the link travels over: `tls`, `quic`, `websocket`, `relay`.
        public var transport: String
        /// `direct`, `punched`, or `relayed via SITE` (absent from older sites).
        public var path: String?
        /// `primary`, or `backup`: data only while no primary link is up.
        public var role: String
        /// Blocked by this site's operator: no data while another link is up.
        public var blocked: Bool
        /// Blocked by the peer's operator (this site cannot lift it).
        public var blockedByPeer: Bool
        public var dialed: Bool
        public var state: String
        public var rttMs: Double?
        public var rateBitsPerSecond: Double?
        public var inFlightBytes: Int
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
    }

    public struct Tunnel: Codable, Sendable {
        public var peer: String
        public var incarnation: String
        public var peerIncarnation: String
        public var openStreams: Int
        public var resentBytes: Int
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
        public var links: [Link]
    }

    /// One line of the speed test's NDJSON stream: `progress`, then `result` or `error`.
    public struct SpeedtestLine: Codable, Sendable {
        public var type: String
        /// `upload` or `download` (absent from a weft before downloads: upload).
        public var direction: String?
        public var site: String?
        public var seconds: Double?
        public var bytes: UInt64?
        public var bitsPerSecond: Double?
        public var verified: Bool?
        public var verifiedBytes: UInt64?
        public var message: String?

        public init(
            type: String, direction: String? = nil, site: String? = nil, seconds: Double? = nil, bytes: UInt64? = nil,
            bitsPerSecond: Double? = nil, verified: Bool? = nil, verifiedBytes: UInt64? = nil, message: String? = nil
        ) {
            self.type = type
            self.direction = direction
            self.site = site
            self.seconds = seconds
            self.bytes = bytes
            self.bitsPerSecond = bitsPerSecond
            self.verified = verified
            self.verifiedBytes = verifiedBytes
            self.message = message
        }
    }
}
