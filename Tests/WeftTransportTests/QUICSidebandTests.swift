import Testing
import WeftWire

@testable import WeftTransport

@Suite("QUIC sideband: which datagrams are not QUIC", .timeLimit(.minutes(2)))
struct QUICSidebandTests {
    func claims(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { QUICSideband.claims($0) } }

    @Test("STUN and probes by their marks; QUIC packets, greased or not, stay QUIC")
    func classification() {
        let token = [UInt8](repeating: 5, count: 16)
        let probe = Array(PunchProbe(kind: .probe, token: token).serialized().readableBytesView)
        let stun = Array(StunBinding.request(transactionID: Array(repeating: 1, count: 12)).readableBytesView)
        #expect(claims(probe))
        #expect(claims(stun))
        // A short-header packet with its fixed bit set, and one greased (bit cleared, RFC 9287),
        // and a long-header Initial: none is the sideband's.
        let cid = [UInt8](repeating: 0x21, count: 18)
        #expect(!claims([0x41] + cid + Array(repeating: 0, count: 40)))
        #expect(!claims([0x01] + cid + Array(repeating: 0, count: 40)))
        #expect(!claims([0xc3, 0, 0, 0, 1] + cid + Array(repeating: 0, count: 1200)))
        // Too short for either mark.
        #expect(!claims([0x00, 0x77, 0x66]))
        #expect(!claims([]))
    }
}
