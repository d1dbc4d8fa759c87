import Testing
import WeftTunnel

@Suite("tunnel configuration", .timeLimit(.minutes(10)))
struct TunnelConfigurationTests {
    @Test("defaults are consistent")
    func defaults() {
        let configuration = TunnelConfiguration()
        #expect(configuration.problems.isEmpty)
        #expect(configuration.noLinkGracePeriod == .seconds(60))
    }

    @Test("inconsistent limits are named")
    func inconsistent() {
        var configuration = TunnelConfiguration()
        configuration.maxOutOfOrderPieces = 8
        #expect(configuration.problems.contains { $0.contains("maxOutOfOrderPieces is below 64") })
        configuration = TunnelConfiguration(maxStreams: 0)
        #expect(configuration.problems == ["maxStreams must be at least 1"])
    }
}
