import Testing
import WeftTunnel

@Suite("tunnel configuration")
struct TunnelConfigurationTests {
    @Test("defaults are consistent: a full window always fits the reassembly limit")
    func defaults() {
        let configuration = TunnelConfiguration()
        #expect(configuration.problems.isEmpty)
        #expect(configuration.noLinkGracePeriod == .seconds(60))
    }

    @Test("inconsistent limits are named")
    func inconsistent() {
        var configuration = TunnelConfiguration()
        configuration.maxStreamWindow = configuration.maxReassemblyBytesPerStream * 2
        #expect(configuration.problems.contains { $0.contains("maxReassemblyBytesPerStream is below maxStreamWindow") })
        configuration = TunnelConfiguration(maxStreams: 0)
        #expect(configuration.problems == ["maxStreams must be at least 1"])
    }
}
