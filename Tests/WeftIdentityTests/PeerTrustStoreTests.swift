import Foundation
import Testing
import WeftIdentity

@Suite("trusted peers on disk", .timeLimit(.minutes(10)))
struct PeerTrustStoreTests {
    /// Names no real site has, to prove the file is JSON that any reader takes back.
    static let awkwardNames = [
        "site-a", "quote\"d", "back\\slash", "tab\there", "line\nbreak", "bell\u{07}", "中文站点", "",
    ]

    @Test("pins survive a save and a load, whatever the names; the file is sorted JSON")
    func roundTrip() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = PeerTrustStore(directory: root)
        var pins: [String: CertificateFingerprint] = [:]
        for (index, name) in Self.awkwardNames.enumerated() {
            pins[name] = CertificateFingerprint(bytes: [UInt8](repeating: UInt8(index), count: 32))!
        }
        try store.save(pins)
        #expect(try store.load() == pins)
        #expect(mode(store.path) == 0o600)

        let data = try #require(FileManager.default.contents(atPath: store.path))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        #expect(object.count == pins.count)
        // Keys in byte order, one per line, so the file diffs well.
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n").dropFirst().dropLast()
        #expect(lines.count == pins.count)
        let order = try lines.map { line -> String in
            let entry = line.hasSuffix(",") ? line.dropLast() : line
            let parsed = try JSONSerialization.jsonObject(with: Data("{\(entry)}".utf8)) as? [String: String]
            return try #require(parsed?.keys.first)
        }
        #expect(order == pins.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    }

    @Test("an empty trust file is an empty JSON object")
    func empty() throws {
        let root = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = PeerTrustStore(directory: root)
        try store.save([:])
        #expect(try store.load().isEmpty)
        #expect(FileManager.default.contents(atPath: store.path) == Data("{}".utf8))
    }
}
