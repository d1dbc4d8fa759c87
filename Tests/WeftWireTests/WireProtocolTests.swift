import Testing
import WeftWire

@Suite("wire protocol", .timeLimit(.minutes(10)))
struct WireProtocolTests {
    @Test("the protocol is versioned from the first release")
    func version() {
        #expect(WireProtocol.version == 1)
    }
}
