import NIOCore
import Testing

@testable import WeftSite

@Suite("UDP flow table: the cap, idle timeouts on an injected clock", .timeLimit(.minutes(10)))
struct UDPFlowTableTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func client(_ port: Int) -> SocketAddress { try! SocketAddress(ipAddress: "127.0.0.1", port: port) }

    @Test("a new client address beyond the cap gets no flow until one ends")
    func cap() {
        var table = UDPFlowTable<Int>(maxFlows: 2, idleTimeout: .seconds(60))
        var inserted = [1, 2, 3].map { table.insert(client($0), $0, now: t0) }
        #expect(inserted == [true, true, false])
        let again = table.insert(client(1), 9, now: t0)
        #expect(!again, "an address has one flow")
        let none = table.touch(client(3), now: t0)
        #expect(none == nil)
        let removed = table.remove(client(1))
        #expect(removed == 1)
        inserted = [table.insert(client(3), 3, now: t0)]
        #expect(inserted == [true])
        #expect(table.count == 2)
    }

    @Test("a flow idle for the timeout goes; one used in time stays")
    func idle() {
        var table = UDPFlowTable<Int>(maxFlows: 8, idleTimeout: .seconds(60))
        _ = table.insert(client(1), 1, now: t0)
        _ = table.insert(client(2), 2, now: t0)
        let touched = table.touch(client(2), now: t0 + .seconds(50))
        #expect(touched == 2)
        let early = table.removeIdle(now: t0 + .seconds(59))
        #expect(early.isEmpty)
        let gone = table.removeIdle(now: t0 + .seconds(60))
        #expect(gone.map(\.1) == [1])
        let after = table.touch(client(1), now: t0 + .seconds(61))
        #expect(after == nil)
        let later = table.removeIdle(now: t0 + .seconds(110))
        #expect(later.map(\.1) == [2])
        #expect(table.count == 0)
    }

    @Test("a waiting flow becomes an open one only while its address still has it")
    func replace() {
        var table = UDPFlowTable<String>(maxFlows: 8, idleTimeout: .seconds(60))
        let missing = table.replace(client(1), with: "open")
        #expect(!missing)
        _ = table.insert(client(1), "waiting", now: t0)
        let replaced = table.replace(client(1), with: "open")
        #expect(replaced)
        let flow = table.touch(client(1), now: t0)
        #expect(flow == "open")
        let all = table.removeAll()
        #expect(all.map(\.1) == ["open"])
    }
}
