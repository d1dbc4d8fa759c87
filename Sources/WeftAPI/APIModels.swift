import Foundation
import Hummingbird
import NIOCore
import WeftDiscovery
import WeftSite
import WeftTransport
import WeftWire

/// The JSON bodies of the API's answers (see `OpenAPIDocument` for the contract).
enum APIModels {
    struct Ping: ResponseEncodable { var message = "pong" }

    struct Site: ResponseEncodable {
        var siteName: String
        var fingerprint: String
        var version: String
        var uptimeSeconds: Double
    }

    struct RemoteSite: ResponseEncodable {
        var siteName: String
        var online: Bool
        var fingerprint: String?
        var endpoints: [String]
        var apps: [String]
        var softwareVersion: String?
        var tunnel: Bool
    }

    struct ExposedApp: ResponseEncodable {
        var appName: String
        var mode: String
        var appSocket: String?
        var portRange: [String]
        var addressRange: [String]
        var allowedSites: [String]
        var source: String

        enum CodingKeys: String, CodingKey {
            case appName, mode, appSocket, portRange, addressRange, allowedSites, source
        }

        init(_ app: ExposedAppConfig, source: AppSource) {
            let document = ExposedAppDocument(app)
            appName = document.appName
            mode = document.mode
            appSocket = document.appSocket
            portRange = document.portRange
            addressRange = document.addressRange
            allowedSites = document.allowedSites
            self.source = source.rawValue
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(appName, forKey: .appName)
            try container.encode(mode, forKey: .mode)
            try container.encode(appSocket, forKey: .appSocket)  // null for range apps
            try container.encode(portRange, forKey: .portRange)
            try container.encode(addressRange, forKey: .addressRange)
            try container.encode(allowedSites, forKey: .allowedSites)
            try container.encode(source, forKey: .source)
        }
    }

    struct RemoteApp: ResponseEncodable {
        var siteName: String
        var appName: String
        var localSocket: String
        var appSocket: String?
        /// The socket file's mode ("0660"), for `unix:` local sockets.
        var localSocketMode: String?
        var source: String

        enum CodingKeys: String, CodingKey { case siteName, appName, localSocket, appSocket, localSocketMode, source }

        init(_ app: RemoteAppConfig, source: AppSource) {
            siteName = app.siteName
            appName = app.appName
            localSocket = app.localSocket.description
            appSocket = app.appSocket?.description
            if case .unix = app.localSocket { localSocketMode = "0" + String(app.effectiveSocketMode, radix: 8) }
            self.source = source.rawValue
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(siteName, forKey: .siteName)
            try container.encode(appName, forKey: .appName)
            try container.encode(localSocket, forKey: .localSocket)
            try container.encode(appSocket, forKey: .appSocket)
            try container.encode(localSocketMode, forKey: .localSocketMode)
            try container.encode(source, forKey: .source)
        }
    }

    struct Link: Codable {
        var id: UInt32
        var localAddress: String?
        var remoteAddress: String?
        var dialed: Bool
        var state: String
        var rttMs: Double?
        var rateBitsPerSecond: Double?
        var inFlightBytes: Int
        var bytesSent: UInt64
        var bytesReceived: UInt64
    }

    struct Tunnel: ResponseEncodable {
        var peer: String
        var incarnation: String
        var peerIncarnation: String
        var openStreams: Int
        var resentBytes: Int
        var bytesSent: UInt64
        var bytesReceived: UInt64
        var links: [Link]

        init(_ snapshot: TunnelSnapshot) {
            peer = snapshot.peer
            incarnation = String(snapshot.localIncarnation, radix: 16)
            peerIncarnation = String(snapshot.peerIncarnation, radix: 16)
            openStreams = snapshot.openStreams
            resentBytes = snapshot.resentBytes
            bytesSent = snapshot.bytesSent
            bytesReceived = snapshot.bytesReceived
            links = snapshot.links.map { link in
                Link(
                    id: link.id.rawValue,
                    localAddress: link.localAddress.map(Self.describe),
                    remoteAddress: link.remoteAddress.map(Self.describe),
                    dialed: link.dialed,
                    state: link.statistics?.suspect == true ? "suspect" : "up",
                    rttMs: link.statistics?.smoothedRTT.map { Self.seconds($0) * 1000 },
                    rateBitsPerSecond: link.statistics?.deliveryRate.map { $0 * 8 },
                    inFlightBytes: link.statistics?.inFlightBytes ?? 0,
                    bytesSent: link.bytesSent,
                    bytesReceived: link.bytesReceived
                )
            }
        }

        static func describe(_ address: SocketAddress) -> String {
            guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
            return String(host: ip, port: port)
        }

        static func seconds(_ duration: Duration) -> Double { duration.inSeconds }
    }
}
