import Testing
import WeftWire

@Suite("wire text: what may be printed as it is, and how the rest is written", .timeLimit(.minutes(10)))
struct WireTextTests {
    @Test("controls, line separators and bidi overrides are escaped; everything else is kept")
    func escaping() {
        #expect(WireText.escaped("site-01 ü 東京") == "site-01 ü 東京")
        #expect(WireText.escaped("a\u{1b}[2Jb") == "a\\u{1b}[2Jb")
        #expect(WireText.escaped("x\ny\u{2028}z") == "x\\u{a}y\\u{2028}z")
        #expect(WireText.escaped("evil\u{202e}gpj.exe") == "evil\\u{202e}gpj.exe")
        #expect(WireText.isSafe(WireText.escaped("\u{0}\u{7f}\u{85}\u{2066}")))
    }
}
