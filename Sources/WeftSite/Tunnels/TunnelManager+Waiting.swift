import NIOCore
import WeftTransport

/// Clients of a remote app wait here for a tunnel with a link: woken by the driver's link event
/// (`linksChanged`), by the time they gave, by their cancellation or by the site stopping.
extension TunnelManager {
    /// The tunnel to `site` once it has a link, waiting up to `timeout` for one (woken by the
    /// link, not polling); nil if none came, the site stopped or the task was cancelled.
    public func tunnel(to site: String, within timeout: Duration) async -> TunnelDriver? {
        let id = state.withLockedValue { state in
            state.waiters.last &+= 1
            state.waiters.open.insert(state.waiters.last)
            return state.waiters.last
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<TunnelDriver?, Never>) in
                let ready = state.withLockedValue { state -> TunnelChoice<TunnelDriver?> in
                    guard state.waiters.open.contains(id), !state.planner.stopped else {
                        state.waiters.open.remove(id)
                        return .done(nil)
                    }
                    if let tunnel = state.tunnels[site], tunnel.links > 0 {
                        state.waiters.open.remove(id)
                        return .done(tunnel.driver)
                    }
                    state.waiters.byPeer[site, default: [:]][id] = Waiters.Waiter(continuation: continuation)
                    return .needsTunnel
                }
                if case .done(let driver) = ready {
                    continuation.resume(returning: driver)
                    return
                }
                let timer = eventLoop(for: site).scheduleTask(in: TimeAmount(timeout)) { self.endWait(id, for: site) }
                // Kept with the waiter so a wake-up cancels it; a wait already over cancels it now.
                let over = state.withLockedValue { state -> Bool in
                    guard state.waiters.byPeer[site]?[id] != nil else { return true }
                    state.waiters.byPeer[site]?[id]?.timeout = timer
                    return false
                }
                if over { timer.cancel() }
            }
        } onCancel: {
            self.endWait(id, for: site)
        }
    }

    /// A wait timed out or was cancelled: it ends with nil (unless it already ended).
    func endWait(_ id: UInt64, for site: String) {
        let waiter = state.withLockedValue { state -> Waiters.Waiter? in
            state.waiters.open.remove(id)
            return state.waiters.byPeer[site]?.removeValue(forKey: id)
        }
        waiter?.end(with: nil)
    }
}
