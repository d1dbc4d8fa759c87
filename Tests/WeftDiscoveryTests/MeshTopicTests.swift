import Testing
import WeftDiscovery

@Suite("mesh topic and libmosquitto", .timeLimit(.minutes(10)))
struct MeshTopicTests {
    @Test("topics that would break sub-topics or leak wildcards are refused")
    func problems() {
        #expect(MeshTopic.problem(with: "kungze/wovenet/your-own-private-topic") == nil)
        #expect(MeshTopic.problem(with: MeshTopic.derived(fromKey: "01234567")) == nil)
        for bad in ["", "a/+/b", "a/#", "mesh/", "$SYS/x", String(repeating: "t", count: 201)] {
            #expect(MeshTopic.problem(with: bad) != nil, "\(bad)")
        }
    }

    @Test("libmosquitto 2 is linked")
    func libraryVersion() {
        #expect(Mosquitto.libraryVersion.hasPrefix("2."))
    }
}
