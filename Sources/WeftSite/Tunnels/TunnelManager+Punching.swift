import NIOConcurrencyHelpers
import NIOCore
import WeftDiscovery
import WeftTransport
import WeftTunnel
import WeftWire

/// The manager's side of hole punching: what `HolePuncher` asks of it (is a punched link
/// wanted, dial one) and what it tells the puncher (peers' punch endpoints, rendezvous).
extension TunnelManager {
    /// Starts telling `puncher` about peers, and lets it dial.
    func attach(_ puncher: HolePuncher) {
        let peers = state.withLockedValue { state in
            self.puncher.withLockedValue { $0 = puncher }
            return state.planner.upPeers
        }
        for info in peers { puncher.peer(info.siteName, announces: Self.punchCandidates(info.announcement)) }
    }

    /// The directory's events that concern the puncher.
    func tellPuncher(_ event: DirectoryEvent) {
        guard let puncher = puncher.withLockedValue({ $0 }) else { return }
        switch event {
        case .up(let info), .changed(let info):
            puncher.peer(info.siteName, announces: Self.punchCandidates(info.announcement))
        case .down(let name, _):
            puncher.peer(name, announces: [])
        case .rendezvous(let name, let rendezvous):
            puncher.rendezvous(from: name, rendezvous)
        }
    }

    static func punchCandidates(_ announcement: SiteAnnouncement) -> [PunchCandidate] {
        announcement.endpoints.prefix(LinkPath.maxEndpoints).compactMap { endpoint in
            guard endpoint.linkType == .punch, endpoint.port > 0, let address = IPAddress(endpoint.address) else {
                return nil
            }
            return PunchCandidate(address: address.normalized.description, port: endpoint.port)
        }
    }

    /// Whether a punched link to `peer` is wanted: this site wants a tunnel to it and the
    /// tunnel has no direct link (relayed links do not count).
    func needsPunchedLink(_ peer: String) -> Bool {
        state.withLockedValue { state in
            guard state.planner.wantsTunnel(to: peer) else { return false }
            guard let driver = state.tunnels[peer]?.driver else { return true }
            return driver.establishedLinks <= driver.relayedLinks
        }
    }

    /// Dials a QUIC link to `peer` at `remote` from the punching socket `local`, into the
    /// current tunnel (made if there is none). The future has the link once it is attached.
    func dialPunched(
        _ peer: String, to remote: SocketAddress, from local: SocketAddress, over transport: QUICLinkTransport
    ) -> EventLoopFuture<Channel> {
        let loop = eventLoop(for: peer)
        guard let endpoint = LinkEndpoint.quic(remote) else {
            return loop.makeFailedFuture(LinkError(.transport, "not an IP address: \(remote)"))
        }
        let job = withTunnel(to: peer, peerHalf: LinkHandshake.unknownIncarnation, on: nil) {
            state, tunnel -> TunnelChoice<(TunnelDriver, LinkDialer.Target, UInt32)?> in
            guard state.planner.isUp(peer), let info = state.planner.info(of: peer) else { return .done(nil) }
            guard let tunnel else { return .needsTunnel }
            state.nextLinkNumber &+= 1
            return .done(
                (
                    tunnel.driver,
                    LinkDialer.Target(
                        endpoint: endpoint, localAddress: local, peerSite: peer, peerIncarnation: tunnel.peerHalf,
                        localIncarnation: tunnel.driver.localIncarnation, fingerprint: info.fingerprint),
                    state.nextLinkNumber
                ))
        }
        guard let (driver, target, number) = job else {
            return loop.makeFailedFuture(LinkError(.closed, "\(peer) is not up here"))
        }
        let held = NIOLockedValueBox<Channel?>(nil)
        return LinkDialer.dial(
            target, over: transport, on: driver.eventLoop, site: site, linkNumber: number,
            stillWanted: { [weak self] in self?.isCurrentTunnel(driver) ?? false }
        ) { [weak self] channel, established in
            guard let self, self.adoptPunched(established, driver: driver) else {
                channel.close(promise: nil)
                return
            }
            held.withLockedValue { $0 = channel }
            driver.attach(
                channel, leftover: established.leftover, transport: transport.kind, backup: established.backup,
                peerCapabilities: established.peerCapabilities, punched: true)
        }.flatMapErrorThrowing { [weak self] error in
            // The peer knows no tunnel like ours (it restarted): ours ends, the next link starts anew.
            if let refusal = (error as? LinkError)?.refusal, refusal.reason == .unknownTunnel {
                self?.tunnelUnknownAtPeer(driver, reason: refusal.message)
            }
            throw error
        }.flatMapThrowing { _ in
            guard let channel = held.withLockedValue({ $0 }) else {
                throw LinkError(.closed, "the tunnel to \(peer) was replaced while the link was dialed")
            }
            return channel
        }
    }

    private func isCurrentTunnel(_ driver: TunnelDriver) -> Bool {
        state.withLockedValue { $0.tunnels[driver.peerSite]?.driver === driver }
    }

    /// A punched link finished its handshake: kept if its tunnel is still the current one.
    private func adoptPunched(_ established: LinkHandshake.Established, driver: TunnelDriver) -> Bool {
        let current = state.withLockedValue { state in
            guard state.tunnels[driver.peerSite]?.driver === driver else { return false }
            return state.tunnels[driver.peerSite]?.adopt(peerHalf: established.peerIncarnation) ?? false
        }
        return current && driver.adopt(peerIncarnation: established.peerIncarnation)
    }
}
