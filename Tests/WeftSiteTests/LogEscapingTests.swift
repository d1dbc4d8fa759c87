import Logging
import Testing

@testable import WeftSite

/// Strings from peers reach the log (site names, reasons, app names): none may rewrite a
/// terminal or forge a line, in text or JSON.
@Suite("log lines escape what could rewrite them", .timeLimit(.minutes(10)))
struct LogEscapingTests {
    static let hostile = [
        "evil\u{1b}[2J\u{1b}[H", "a\nINFO weft: peer up peer=bank", "x\u{202e}gnp.exe", "del\u{7f}", "c1\u{9b}31m",
        "bell\u{7}", "line\u{2028}sep",
    ]

    @Test("text metadata: quoted and escaped, no control character left")
    func textValues() {
        for text in Self.hostile {
            let printed = WeftLogHandler.textValue(.string(text))
            #expect(printed.hasPrefix("\"") && printed.hasSuffix("\""), "\(printed.debugDescription)")
            #expect(!printed.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) })
            #expect(!printed.unicodeScalars.contains { [0x202e, 0x2028].contains($0.value) })
        }
        #expect(WeftLogHandler.textValue(.string("zürich-站点")) == "zürich-站点")
    }

    @Test("JSON strings and text messages escape the same characters")
    func jsonAndMessages() {
        for text in Self.hostile {
            for printed in [WeftLogHandler.jsonString(text), WeftLogHandler.textMessage(text)] {
                #expect(
                    !printed.unicodeScalars.contains { WireTextProbe.unsafe($0) }, "\(printed.debugDescription)")
            }
        }
        #expect(WeftLogHandler.textMessage("peer up") == "peer up")
        #expect(WeftLogHandler.jsonString("a\u{1b}b") == "\"a\\u001bb\"")
        #expect(WeftLogHandler.jsonString("a\u{202e}b") == "\"a\\u202eb\"")
    }
}

/// The same rule as `WireText.isUnsafe`, written out here so the test does not trust the code
/// it checks.
enum WireTextProbe {
    static func unsafe(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (0x7f...0x9f).contains(v)
            || [0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e].contains(v)
            || (0x2066...0x2069).contains(v)
    }
}
