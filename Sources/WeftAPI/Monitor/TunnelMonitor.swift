import Foundation
import WeftWire

/// What `weft top` shows, as a value: samples of `GET /api/v1/tunnels` and the operator's keys
/// go in, the screen's lines come out. Rates are the byte counters' growth between two samples,
/// so the view needs nothing from the site but what the API already serves; the command only
/// reads keys, fetches, and draws what `lines` returns.
public struct TunnelMonitor: Sendable {
    /// A key the operator pressed.
    public enum Key: Sendable, Equatable {
        case nextPeer, previousPeer, nextSort, quit
    }

    /// What to do after a key.
    public enum Action: Sendable, Equatable {
        case redraw, quit, none
    }

    /// The order of the selected peer's links.
    public enum Sort: String, Sendable, CaseIterable {
        case link = "link id"
        case sent = "sent/s"
        case received = "received/s"
        case rtt = "RTT"
    }

    /// One tunnel, with its rates over the last interval (nil before a second sample).
    public struct PeerRow: Sendable, Equatable {
        public var peer: String
        public var links: Int
        public var streams: Int
        public var sentPerSecond: Double?
        public var receivedPerSecond: Double?
        public var resentPerSecond: Double?
        public var resentBytes: Int
        /// The least smoothed RTT of its links, in milliseconds.
        public var bestRTT: Double?
    }

    /// One link of the selected peer, with its rates over the last interval.
    public struct LinkRow: Sendable {
        public var link: APIModels.Link
        public var sentPerSecond: Double?
        public var receivedPerSecond: Double?
    }

    public private(set) var peers: [PeerRow] = []
    public private(set) var links: [LinkRow] = []
    public private(set) var selectedPeer: String?
    public private(set) var sort: Sort = .link
    /// Why the last fetch failed, shown until one succeeds.
    public var problem: String?

    /// Whether the operator chose the selected peer (then it stays selected while absent).
    private var pinned = false
    private var last: (at: Duration, tunnels: [String: APIModels.Tunnel])?
    private var latest: [APIModels.Tunnel] = []
    private var peerRates: [String: (sent: Double?, received: Double?, resent: Double?)] = [:]
    private var linkRates: [String: [UInt32: (sent: Double?, received: Double?)]] = [:]

    /// `peer`: the peer to show first; it stays selected while its tunnel is away.
    public init(peer: String? = nil) {
        selectedPeer = peer
        pinned = peer != nil
    }

    /// A new sample, taken at `now` (any monotonic clock). Rates need the same tunnel (same
    /// incarnations) in the previous sample; a new tunnel or link shows none until the next.
    public mutating func update(_ tunnels: [APIModels.Tunnel], at now: Duration) {
        problem = nil
        let previous = last
        let seconds = previous.map { (now - $0.at).inSeconds } ?? 0
        func rate(_ new: UInt64, _ old: UInt64?) -> Double? {
            guard let old, seconds > 0, new >= old else { return nil }
            return Double(new - old) / seconds
        }
        peerRates = [:]
        linkRates = [:]
        for tunnel in tunnels {
            let before = previous?.tunnels[tunnel.peer].flatMap {
                $0.incarnation == tunnel.incarnation && $0.peerIncarnation == tunnel.peerIncarnation ? $0 : nil
            }
            peerRates[tunnel.peer] = (
                rate(tunnel.bytesSent, before?.bytesSent), rate(tunnel.bytesReceived, before?.bytesReceived),
                rate(UInt64(max(0, tunnel.resentBytes)), before.map { UInt64(max(0, $0.resentBytes)) })
            )
            var rates: [UInt32: (sent: Double?, received: Double?)] = [:]
            for link in tunnel.links {
                let old = before?.links.first { $0.id == link.id }
                rates[link.id] = (rate(link.bytesSent, old?.bytesSent), rate(link.bytesReceived, old?.bytesReceived))
            }
            linkRates[tunnel.peer] = rates
        }
        last = (now, Dictionary(tunnels.map { ($0.peer, $0) }, uniquingKeysWith: { a, _ in a }))
        latest = tunnels.sorted { $0.peer < $1.peer }
        if selectedPeer == nil || (!pinned && !latest.contains { $0.peer == selectedPeer }) {
            selectedPeer = latest.first?.peer
        }
        rebuild()
    }

    /// The keys in `bytes` as a terminal in raw mode sends them.
    public static func keys(in bytes: [UInt8]) -> [Key] {
        var keys: [Key] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x1B, index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "[") {
                switch bytes[index + 2] {
                case UInt8(ascii: "C"), UInt8(ascii: "B"): keys.append(.nextPeer)
                case UInt8(ascii: "D"), UInt8(ascii: "A"): keys.append(.previousPeer)
                case UInt8(ascii: "Z"): keys.append(.previousPeer)  // shift-tab
                default: break
                }
                index += 3
                continue
            }
            switch byte {
            case UInt8(ascii: "q"), UInt8(ascii: "Q"), 0x03, 0x04: keys.append(.quit)
            case UInt8(ascii: "n"), UInt8(ascii: "j"), 0x09: keys.append(.nextPeer)
            case UInt8(ascii: "p"), UInt8(ascii: "k"): keys.append(.previousPeer)
            case UInt8(ascii: "s"), UInt8(ascii: "S"): keys.append(.nextSort)
            default: break
            }
            index += 1
        }
        return keys
    }

    public mutating func handle(_ key: Key) -> Action {
        switch key {
        case .quit:
            return .quit
        case .nextSort:
            let all = Sort.allCases
            sort = all[(all.firstIndex(of: sort)! + 1) % all.count]
        case .nextPeer, .previousPeer:
            guard !latest.isEmpty else { return .none }
            let names = latest.map(\.peer)
            if let current = names.firstIndex(where: { $0 == selectedPeer }) {
                let step = key == .nextPeer ? 1 : names.count - 1
                selectedPeer = names[(current + step) % names.count]
            } else {
                selectedPeer = names[0]
            }
            pinned = true
        }
        rebuild()
        return .redraw
    }

    private mutating func rebuild() {
        peers = latest.map { tunnel in
            let rates = peerRates[tunnel.peer]
            return PeerRow(
                peer: tunnel.peer, links: tunnel.links.count, streams: tunnel.openStreams,
                sentPerSecond: rates?.sent ?? nil, receivedPerSecond: rates?.received ?? nil,
                resentPerSecond: rates?.resent ?? nil, resentBytes: tunnel.resentBytes,
                bestRTT: tunnel.links.compactMap(\.rttMs).min())
        }
        let selected = latest.first { $0.peer == selectedPeer }
        let rates = selectedPeer.flatMap { linkRates[$0] } ?? [:]
        links = (selected?.links ?? []).map { link in
            LinkRow(
                link: link, sentPerSecond: rates[link.id]?.sent ?? nil,
                receivedPerSecond: rates[link.id]?.received ?? nil)
        }
        switch sort {
        case .link: links.sort { $0.link.id < $1.link.id }
        case .sent: links.sort { ($0.sentPerSecond ?? -1, $1.link.id) > ($1.sentPerSecond ?? -1, $0.link.id) }
        case .received:
            links.sort { ($0.receivedPerSecond ?? -1, $1.link.id) > ($1.receivedPerSecond ?? -1, $0.link.id) }
        case .rtt: links.sort { ($0.link.rttMs ?? .infinity, $0.link.id) < ($1.link.rttMs ?? .infinity, $1.link.id) }
        }
    }

    /// The screen: a title, the peers (the selected one marked), the selected peer's links, and
    /// the keys; each line cut to `width`, the links cut to fit `height`.
    public func lines(site: String, width: Int, height: Int) -> [String] {
        func rate(_ value: Double?) -> String { value.map { Units.bits(perSecond: $0 * 8) } ?? "-" }
        var out: [String] = []
        out.append("weft top — site \(WireText.escaped(site))   sort links by: \(sort.rawValue)")
        if let problem { out.append("! \(WireText.escaped(problem))") }
        out.append("")
        var peerTable = TextTable(
            "", "PEER", "LINKS", "STREAMS", "SENT/S", "RECEIVED/S", "RE-SENT/S", "RE-SENT", "BEST RTT")
        for peer in peers {
            peerTable.add(
                peer.peer == selectedPeer ? ">" : " ", peer.peer, "\(peer.links)", "\(peer.streams)",
                rate(peer.sentPerSecond), rate(peer.receivedPerSecond), rate(peer.resentPerSecond),
                Units.bytes(Double(peer.resentBytes)), peer.bestRTT.map { String(format: "%.2f ms", $0) } ?? "-")
        }
        out += peers.isEmpty ? ["  (no tunnels)"] : peerTable.lines()
        out.append("")
        if let selectedPeer {
            out.append("LINKS TO \(WireText.escaped(selectedPeer))")
            var linkTable = TextTable(
                "LINK", "TRANSPORT", "PATH", "ROLE", "STATE", "RTT", "RATE EST.", "IN FLIGHT", "SENT/S", "RECEIVED/S",
                "SENT", "RECEIVED")
            for row in links {
                let link = row.link
                linkTable.add(
                    "\(link.id)", link.transport, link.path ?? "-", link.role,
                    link.blocked ? "blocked" : link.blockedByPeer ? "blocked by peer" : link.state,
                    link.rttMs.map { String(format: "%.2f ms", $0) } ?? "-",
                    link.rateBitsPerSecond.map { Units.bits(perSecond: $0) } ?? "-",
                    Units.bytes(Double(link.inFlightBytes)), rate(row.sentPerSecond), rate(row.receivedPerSecond),
                    Units.bytes(Double(link.bytesSent)), Units.bytes(Double(link.bytesReceived)))
            }
            out += links.isEmpty ? ["  (no links)"] : linkTable.lines(indent: "  ")
        }
        let footer = "q quit   n/p or ←/→ peer   s sort links"
        let room = max(1, height - 1)
        if out.count > room { out = Array(out.prefix(room)) }
        out += Array(repeating: "", count: max(0, room - out.count))
        out.append(footer)
        return out.map { String($0.prefix(max(1, width))) }
    }
}
