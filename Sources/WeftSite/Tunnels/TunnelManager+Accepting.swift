import NIOCore
import NIOPosix
import WeftIdentity
import WeftTransport
import WeftTunnel
import WeftWire

/// The link acceptor: which tunnel a link that a peer dialed joins.
extension TunnelManager {
    /// The listener's handlers: only pinned peers, as the site their certificate belongs to.
    public var listenerHandlers: LinkListener.Handlers { listenerHandlers(punched: false) }

    /// The handlers of one listener; `punched` for a `nat-traversal` socket, which nobody dials
    /// but through a hole punched for it (its links show as `punched`).
    public func listenerHandlers(punched: Bool) -> LinkListener.Handlers {
        LinkListener.Handlers(
            trusts: { fingerprint in self.state.withLockedValue { $0.planner.knows(fingerprint) } },
            decide: { hello, fingerprint in self.decide(hello, fingerprint) },
            onLink: { channel, established, transport in
                self.linkAccepted(channel, established, over: transport, punched: punched)
            }
        )
    }

    /// The listener's handlers for links relayed to this site through another site's tunnel
    /// (held by every tunnel's drivers: the manager only weakly).
    var relayedLinkHandlers: LinkListener.Handlers {
        LinkListener.Handlers(
            trusts: { [weak self] fingerprint in
                self?.state.withLockedValue { $0.planner.knows(fingerprint) } ?? false
            },
            decide: { [weak self] hello, fingerprint in
                self?.decide(hello, fingerprint) ?? .refuse(.shuttingDown, "the site is stopping")
            },
            onLink: { [weak self] channel, established, transport in
                guard let self else {
                    channel.close(promise: nil)
                    return
                }
                self.linkAccepted(channel, established, over: transport)
            }
        )
    }

    /// Which half of which tunnel an accepted link joins (see `LinkPlacement`): the current
    /// tunnel when the hello names it or asks for a new one that it already is; a new tunnel
    /// (the old one ended) when the dialer started a new one; a refusal when the hello names a
    /// tunnel that is gone here, so the dialer starts a new one.
    func decide(_ hello: LinkHello, _ fingerprint: CertificateFingerprint) -> LinkDecision {
        let name = hello.siteName
        // A peer whose apps this site does not use reaches it only through links it dials
        // here: a new tunnel lives on this first link's loop, so at least it never hops.
        let used = state.withLockedValue { $0.planner.usedSites.contains(name) }
        let loop = used ? eventLoop(for: name) : MultiThreadedEventLoopGroup.currentEventLoop ?? eventLoop(for: name)
        var replaced: [TunnelDriver] = []
        var created = false
        var kicks: [DialPlanner.Action] = []
        let (decision, joined) = withTunnel(to: name, peerHalf: hello.incarnation, on: loop) {
            state, tunnel -> TunnelChoice<(LinkDecision, TunnelDriver?)> in
            guard !state.planner.stopped else { return .done((.refuse(.shuttingDown, "the site is stopping"), nil)) }
            guard let known = state.planner.info(of: name)?.fingerprint else {
                return .done((.refuse(.wrongIdentity, "\(name) is not in this site's directory"), nil))
            }
            guard known == fingerprint else {
                return .done((.refuse(.wrongIdentity, "that certificate is not the one \(name) announced"), nil))
            }
            let current = tunnel.map {
                LinkPlacement.Current(localIncarnation: $0.driver.localIncarnation, peerIncarnation: $0.peerHalf)
            }
            switch LinkPlacement.place(hello, acceptor: site.siteName, current: current) {
            case .join(let incarnation):
                // Learn the dialer's half now, so a second new-tunnel hello from another half
                // cannot join too.
                guard var tunnel, tunnel.adopt(peerHalf: hello.incarnation) else {
                    return .done((.refuse(.unknownTunnel, "this tunnel belongs to another half of \(name)"), nil))
                }
                guard tunnel.links < Self.maxLinksPerTunnel else {
                    return .done(
                        (.refuse(.tooManyLinks, "\(Self.maxLinksPerTunnel) links is the most one tunnel takes"), nil))
                }
                state.tunnels[name] = tunnel
                if created {
                    // Paths waiting to dial the old tunnel dial this one now.
                    kicks = state.planner.kickAll(name)
                }
                return .done((.acceptInto(incarnation: incarnation), tunnel.driver))
            case .refuse(let reason):
                return .done((.refuse(.unknownTunnel, reason), nil))
            case .replace:
                if let old = state.tunnels.removeValue(forKey: name)?.driver { replaced.append(old) }
                created = true
                return .needsTunnel
            case .create:
                created = true
                return .needsTunnel
            }
        }
        for old in replaced { close(old, reason: "\(name) started a new tunnel") }
        _ = joined?.adopt(peerIncarnation: hello.incarnation)
        for case .kick(let run) in kicks { state.withLockedValue { $0.dialers[run] }?.kick() }
        return decision
    }

    /// On the link's event loop, at once: attach the link to the tunnel it was accepted into.
    func linkAccepted(
        _ channel: Channel, _ established: LinkHandshake.Established, over transport: LinkEndpoint.Kind = .tls,
        punched: Bool = false
    ) {
        let name = established.peerSite
        let driver = state.withLockedValue { state -> TunnelDriver? in
            guard !state.planner.stopped, var tunnel = state.tunnels[name],
                tunnel.driver.localIncarnation == established.localIncarnation,
                tunnel.adopt(peerHalf: established.peerIncarnation)
            else { return nil }
            state.tunnels[name] = tunnel
            return tunnel.driver
        }
        guard let driver, driver.adopt(peerIncarnation: established.peerIncarnation) else {
            channel.close(promise: nil)
            return
        }
        driver.attach(
            channel, leftover: established.leftover, dialed: false, transport: transport, backup: established.backup,
            peerCapabilities: established.peerCapabilities, punched: punched)
    }
}
