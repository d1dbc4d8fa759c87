/// The API's answers as `weft status` reads them (the contract: `/openapi.yaml`).
enum APIDocuments {
    struct Site: Decodable {
        var siteName: String
        var fingerprint: String
        var version: String
        var uptimeSeconds: Double
    }

    struct RemoteSite: Decodable {
        var siteName: String
        var online: Bool
        var endpoints: [String]
        var apps: [String]
        var softwareVersion: String?
        var tunnel: Bool
    }

    struct Link: Decodable {
        var id: UInt32
        var localAddress: String?
        var remoteAddress: String?
        var dialed: Bool
        var state: String
        var rttMs: Double?
        var rateBitsPerSecond: Double?
        var bytesSent: UInt64
        var bytesReceived: UInt64
    }

    struct Tunnel: Decodable {
        var peer: String
        var openStreams: Int
        var resentBytes: Int
        var bytesSent: UInt64
        var bytesReceived: UInt64
        var links: [Link]
    }

    struct ExposedApp: Decodable {
        var appName: String
        var mode: String
        var appSocket: String?
        var portRange: [String]
        var addressRange: [String]
        var source: String
    }

    struct RemoteApp: Decodable {
        var siteName: String
        var appName: String
        var localSocket: String
        var appSocket: String?
        var source: String
    }
}
