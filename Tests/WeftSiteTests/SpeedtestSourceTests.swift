import Testing

@testable import WeftSite

/// A peer names the seconds of a download speed test in the stream's target: only a whole
/// number from 1 to 60 is served, whatever else a hostile member sends.
@Suite("download speed test: the seconds a peer may ask for", .timeLimit(.minutes(10)))
struct SpeedtestSourceTests {
    @Test("1 to 60 are taken; none, empty, zero, negative, over 60, huge and non-numbers are refused")
    func seconds() {
        #expect(SpeedtestSource.seconds(inTarget: "1") == 1)
        #expect(SpeedtestSource.seconds(inTarget: "60") == 60)
        for hostile in [nil, "", "0", "-1", "61", "99", "999999999999999999999", "5s", " 5", "+5", "0x10"] {
            #expect(SpeedtestSource.seconds(inTarget: hostile) == nil, "\(String(describing: hostile))")
        }
    }

    @Test("config: speedtest.allowDownload is off unless set")
    func config() throws {
        #expect(try loadConfig(minimalConfig).configuration.speedtest.allowDownload == false)
        let on = try loadConfig(minimalConfig + "speedtest:\n  allowDownload: true\n")
        #expect(on.configuration.speedtest.allowDownload)
        let errors = configErrors(minimalConfig + "speedtest:\n  allowDownload: maybe\n")
        #expect(errors.contains { $0.path == "speedtest.allowDownload" }, "\(errors)")
    }
}
