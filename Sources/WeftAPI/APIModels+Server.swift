import Foundation
import Hummingbird
import NIOCore
import WeftSite
import WeftTransport
import WeftWire

// The server's side of the models: answers built from the running site.

extension APIModels.Site: ResponseEncodable {}
extension APIModels.RemoteSite: ResponseEncodable {}
extension APIModels.InEffect: ResponseEncodable {}
extension APIModels.Tunnel: ResponseEncodable {}

extension APIModels.InEffect<ExposedAppDocument> {
    init(_ app: ExposedAppConfig, source: AppSource, traffic: AppTrafficCounts? = nil) {
        self.init(app: ExposedAppDocument(app), source: source.rawValue, traffic: traffic)
    }
}

extension APIModels.InEffect<RemoteAppDocument> {
    init(_ app: RemoteAppConfig, source: AppSource, traffic: AppTrafficCounts? = nil) {
        var document = RemoteAppDocument(app)
        // The mode in effect, not only one written in the entry; none for TCP.
        document.localSocketMode = nil
        if case .unix = app.localSocket { document.localSocketMode = "0" + String(app.effectiveSocketMode, radix: 8) }
        self.init(app: document, source: source.rawValue, traffic: traffic)
    }
}

extension APIModels.Tunnel {
    init(_ snapshot: TunnelSnapshot) {
        self.init(
            peer: snapshot.peer,
            incarnation: String(snapshot.localIncarnation, radix: 16),
            peerIncarnation: String(snapshot.peerIncarnation, radix: 16),
            openStreams: snapshot.openStreams,
            resentBytes: snapshot.resentBytes,
            bytesSent: snapshot.bytesSent,
            bytesReceived: snapshot.bytesReceived,
            links: snapshot.links.map { link in
                APIModels.Link(
                    id: link.id.rawValue,
                    localAddress: link.remoteName == nil ? link.localAddress.map(Self.describe) : nil,
                    remoteAddress: link.remoteName ?? link.remoteAddress.map(Self.describe),
                    transport: "\(link.transport)",
                    path: link.path,
                    role: link.statistics?.backup == true ? "backup" : "primary",
                    blocked: link.statistics?.blocked ?? false,
                    blockedByPeer: link.statistics?.blockedByPeer ?? false,
                    dialed: link.dialed,
                    state: link.statistics?.suspect == true ? "suspect" : "up",
                    rttMs: link.statistics?.smoothedRTT.map { $0.inSeconds * 1000 },
                    rateBitsPerSecond: link.statistics?.deliveryRate.map { $0 * 8 },
                    inFlightBytes: link.statistics?.inFlightBytes ?? 0,
                    bytesSent: link.bytesSent,
                    bytesReceived: link.bytesReceived
                )
            })
    }

    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return String(host: ip, port: port)
    }
}

extension APIModels.SpeedtestLine {
    /// The line as NDJSON: sorted keys, one newline.
    var buffer: ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var buffer = ByteBuffer(bytes: (try? encoder.encode(self)) ?? Data("{}".utf8))
        buffer.writeString("\n")
        return buffer
    }
}
