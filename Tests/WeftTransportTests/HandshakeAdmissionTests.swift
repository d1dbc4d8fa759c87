import NIOCore
import NIOPosix
import Testing
import WeftTransport

@Suite(
    "handshake admission: connections that never finish are capped, in all and per address", .timeLimit(.minutes(10)))
struct HandshakeAdmissionTests {
    @Test("the counts: per source, then in all; a release frees a place")
    func counts() {
        var counts = HandshakeAdmission.Counts(maxTotal: 3, maxPerSource: 2)
        #expect(counts.admit("a") == nil && counts.admit("a") == nil)
        #expect(counts.admit("a") == .perSource)
        #expect(counts.admit("b") == nil)
        #expect(counts.admit("c") == .total)
        counts.release("a")
        #expect(counts.admit("c") == nil)
        counts.release("nobody")
        #expect(counts.total == 3)
    }

    @Test("a listener closes connections over the cap before TLS; silent ones keep their place until done")
    func listener() async throws {
        let pair = try TunnelPair()
        let admission = HandshakeAdmission(maxTotal: 8, maxPerSource: 2)
        try await pair.listen(handshakeTimeout: .seconds(120), admission: admission)
        func connect() async throws -> Channel {
            try await ClientBootstrap(group: pair.group).connect(host: "127.0.0.1", port: pair.port).get()
        }
        let silent = [try await connect(), try await connect()]
        #expect(await waitFor { admission.inProgress == 2 })
        let third = try await connect()
        // Closed by the listener at once (not at the 120 s handshake timeout).
        #expect(await waitFor { !third.isActive }, "a connection over the cap was left open")
        #expect(silent.allSatisfy { $0.isActive })
        try await silent[0].close()
        #expect(await waitFor { admission.inProgress == 1 })
        let fourth = try await connect()
        #expect(await waitFor { admission.inProgress == 2 })
        #expect(fourth.isActive)
        // A real link still gets through once a place is free.
        try await fourth.close()
        #expect(await waitFor { admission.inProgress == 1 })
        _ = try await pair.dial()
        try await silent[1].close()
        #expect(await waitFor { admission.inProgress == 0 })
        try await pair.shutdown()
    }

    func waitFor(_ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }
}
