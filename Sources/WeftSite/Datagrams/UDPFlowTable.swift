import NIOCore

/// The client flows of one UDP local socket: which client address has a flow, when each was
/// last active, and how many there may be. A value type fed the time, so idle timeouts and
/// the cap are tested without sleeping.
struct UDPFlowTable<Flow> {
    struct Entry {
        var flow: Flow
        var lastActive: NIODeadline
    }

    let maxFlows: Int
    let idleTimeout: TimeAmount
    private(set) var entries: [SocketAddress: Entry] = [:]

    init(maxFlows: Int, idleTimeout: TimeAmount) {
        self.maxFlows = max(1, maxFlows)
        self.idleTimeout = idleTimeout
    }

    var count: Int { entries.count }

    /// The flow of `client`, marked active now; nil when it has none.
    mutating func touch(_ client: SocketAddress, now: NIODeadline) -> Flow? {
        guard entries[client] != nil else { return nil }
        entries[client]!.lastActive = now
        return entries[client]!.flow
    }

    /// Starts a flow for `client`; false when the table is full (the datagram is dropped).
    mutating func insert(_ client: SocketAddress, _ flow: Flow, now: NIODeadline) -> Bool {
        guard entries[client] == nil else { return false }
        guard entries.count < maxFlows else { return false }
        entries[client] = Entry(flow: flow, lastActive: now)
        return true
    }

    /// Replaces the flow of `client` (a flow that went from waiting to open), if it still has one.
    mutating func replace(_ client: SocketAddress, with flow: Flow) -> Bool {
        guard entries[client] != nil else { return false }
        entries[client]!.flow = flow
        return true
    }

    mutating func update(_ client: SocketAddress, _ body: (inout Flow) -> Void) {
        guard entries[client] != nil else { return }
        body(&entries[client]!.flow)
    }

    @discardableResult
    mutating func remove(_ client: SocketAddress) -> Flow? {
        entries.removeValue(forKey: client)?.flow
    }

    /// Removes and returns the flows idle for `idleTimeout` or longer.
    mutating func removeIdle(now: NIODeadline) -> [(SocketAddress, Flow)] {
        let idle = entries.filter { now - $0.value.lastActive >= idleTimeout }
        for client in idle.keys { entries[client] = nil }
        return idle.map { ($0.key, $0.value.flow) }
    }

    /// Removes and returns every flow.
    mutating func removeAll() -> [(SocketAddress, Flow)] {
        defer { entries.removeAll() }
        return entries.map { ($0.key, $0.value.flow) }
    }
}
