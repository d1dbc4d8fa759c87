import NIOCore
import Testing
import WeftWire

@Suite("hole-punching wire formats: probes and rendezvous bodies", .timeLimit(.minutes(10)))
struct PunchingWireTests {
    let token = (0..<16).map { UInt8($0) }

    @Test("a probe round-trips; every other length, prefix, version and kind is refused")
    func probe() throws {
        for kind in [PunchProbe.Kind.probe, .answer] {
            let bytes = PunchProbe(kind: kind, token: token).serialized()
            #expect(bytes.readableBytes == PunchProbe.length)
            // Neither QUIC (fixed bit) nor STUN (magic cookie at 4...7).
            #expect(bytes.getInteger(at: 0, as: UInt8.self)! & 0x40 == 0)
            #expect(bytes.getInteger(at: 4, as: UInt32.self) != StunBinding.magicCookie)
            #expect(try PunchProbe(parsing: bytes) == PunchProbe(kind: kind, token: token))
        }
        let good = Array(PunchProbe(kind: .probe, token: token).serialized().readableBytesView)
        for length in 0..<good.count {
            #expect(throws: WireError.self) { try PunchProbe(parsing: ByteBuffer(bytes: good.prefix(length))) }
        }
        #expect(throws: WireError.self) { try PunchProbe(parsing: ByteBuffer(bytes: good + [0])) }
        for (index, value) in [(0, UInt8(1)), (3, 0x00), (4, 2), (5, 0), (5, 3)] {
            var bad = good
            bad[index] = value
            #expect(throws: WireError.self) { try PunchProbe(parsing: ByteBuffer(bytes: bad)) }
        }
    }

    @Test("a rendezvous round-trips with IPv4 and IPv6 candidates; truncations and excess are refused")
    func rendezvous() throws {
        let message = Rendezvous(
            to: "beta", token: token, answer: true,
            candidates: [
                .init(address: [198, 18, 0, 1], port: 4500),
                .init(address: Array(repeating: 0xfe, count: 16), port: 65_535),
            ])
        let bytes = message.serialized()
        #expect(try Rendezvous(parsing: bytes) == message)
        for length in 0..<bytes.count {
            #expect(throws: WireError.self) { try Rendezvous(parsing: Array(bytes.prefix(length))) }
        }
        #expect(throws: WireError.self) { try Rendezvous(parsing: bytes + [0]) }
        // 9 candidates, a family of 5, port 0, an answer flag of 2.
        var many = Array(bytes.prefix(1 + 4 + 16 + 1))
        many.append(9)
        for _ in 0..<9 { many += [4, 198, 18, 0, 1, 0x11, 0x94] }
        #expect(throws: WireError.self) { try Rendezvous(parsing: many) }
        var family = bytes
        family[1 + 4 + 16 + 1 + 1] = 5
        #expect(throws: WireError.self) { try Rendezvous(parsing: family) }
        let portZero = Rendezvous(
            to: "b", token: token, answer: false, candidates: [.init(address: [1, 2, 3, 4], port: 0)])
        #expect(throws: WireError.self) { try Rendezvous(parsing: portZero.serialized()) }
        var flag = bytes
        flag[1 + 4 + 16] = 2
        #expect(throws: WireError.self) { try Rendezvous(parsing: flag) }
    }
}
