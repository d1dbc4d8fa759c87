import Testing

@testable import WeftWire

@Suite("discovery message and announcement codecs", .timeLimit(.minutes(10)))
struct DiscoveryCodecTests {
    static let message = DiscoveryMessage(
        kind: .announcement,
        timestampMillis: 1_795_000_000_123,
        messageID: Array(0..<16),
        senderName: "site-ä",
        senderCertificate: Array(repeating: 0x30, count: 400),
        body: Array("body".utf8)
    )

    static let announcement = SiteAnnouncement(
        protocolVersion: 1,
        capabilities: 0b101,
        instance: 0xdead_beef,
        session: Array(repeating: 7, count: 16),
        siteID: "0123456789abcdef0123456789abcdef",
        softwareVersion: "0.1.0",
        refreshSeconds: 30,
        endpoints: [
            .init(linkType: .tls, address: "198.18.0.1", port: 47101),
            .init(linkType: .tls, address: "2001:db8::1", port: 443),
        ],
        apps: ["web", "redis", ""]
    )

    func signed(_ message: DiscoveryMessage = Self.message) -> [UInt8] {
        let serializer = DiscoveryMessageSerializer()
        return serializer.serialize(
            signedBytes: serializer.serialize(message), signature: Array(repeating: 9, count: 64))
    }

    @Test("a signed message round-trips and keeps the exact signed bytes")
    func roundTrip() throws {
        let bytes = signed()
        let parsed = try DiscoveryMessageParser().parseSigned(bytes)
        #expect(parsed.message == Self.message)
        #expect(parsed.signature == Array(repeating: 9, count: 64))
        #expect(parsed.signedBytes == DiscoveryMessageSerializer().serialize(Self.message))
    }

    @Test("every truncation is refused, never a crash")
    func truncations() {
        let bytes = signed()
        for length in 0..<bytes.count {
            #expect(throws: WireError.self) { try DiscoveryMessageParser().parseSigned(Array(bytes[0..<length])) }
        }
    }

    @Test("trailing bytes, unknown formats and kinds are refused")
    func malformed() {
        var bytes = signed()
        bytes.append(0)
        #expect(throws: WireError(.trailingBytes, field: "message")) { try DiscoveryMessageParser().parseSigned(bytes) }
        var format = signed()
        format[0] = 2
        #expect(throws: WireError(.unsupportedVersion, field: "format")) {
            try DiscoveryMessageParser().parseSigned(format)
        }
        var kind = signed()
        kind[1] = 99
        #expect(throws: WireError(.invalidValue, field: "kind")) { try DiscoveryMessageParser().parseSigned(kind) }
    }

    @Test("lengths over the hard limits are refused before reading")
    func limits() {
        var huge = DiscoveryMessageSerializer().serialize(Self.message)
        // Rewrite the body length (last field before the body) to something enormous.
        let bodyLengthOffset = huge.count - 4 - 4
        huge[bodyLengthOffset] = 0x7f
        #expect(throws: WireError.self) {
            try DiscoveryMessageParser().parseSigned(huge + [0, 0])
        }
        #expect(throws: WireError(.limitExceeded, field: "message")) {
            try DiscoveryMessageParser().parseSigned(Array(repeating: 1, count: DiscoveryMessage.Limits.plaintext + 1))
        }
    }

    @Test("invalid UTF-8 in a name is refused, not repaired")
    func invalidUTF8() {
        var bytes = signed()
        // The name starts after format, kind, timestamp, id and its length byte.
        bytes[1 + 1 + 8 + 16 + 1] = 0xff
        #expect(throws: WireError(.invalidValue, field: "site name")) {
            try DiscoveryMessageParser().parseSigned(bytes)
        }
    }

    @Test("names with control characters (escape sequences, newlines, bidi overrides) are refused")
    func controlCharactersInNames() {
        let hostile = ["evil\u{1b}[2J", "a\nINFO weft: forged line", "x\u{202e}gnp.exe", "del\u{7f}", "c1\u{85}"]
        for name in hostile {
            var message = Self.message
            message.senderName = name
            let bytes = signed(message)
            #expect(throws: WireError(.invalidValue, field: "site name"), "\(name.debugDescription)") {
                try DiscoveryMessageParser().parseSigned(bytes)
            }
            for field in ["app name", "address", "site id"] {
                var announcement = Self.announcement
                switch field {
                case "app name": announcement.apps = ["web", name]
                case "address": announcement.endpoints[0].address = name
                default: announcement.siteID = name
                }
                #expect(throws: WireError(.invalidValue, field: field), "\(field): \(name.debugDescription)") {
                    try SiteAnnouncement(parsing: announcement.serialized())
                }
            }
        }
        // Any other Unicode is a name like any other.
        var friendly = Self.message
        friendly.senderName = "zürich-站点-🛰"
        #expect(throws: Never.self) { try DiscoveryMessageParser().parseSigned(signed(friendly)) }
    }

    @Test("announcements round-trip; every truncation is refused")
    func announcement() throws {
        let bytes = Self.announcement.serialized()
        #expect(try SiteAnnouncement(parsing: bytes) == Self.announcement)
        for length in 0..<bytes.count {
            #expect(throws: WireError.self) { try SiteAnnouncement(parsing: Array(bytes[0..<length])) }
        }
        #expect(throws: WireError.self) { try SiteAnnouncement(parsing: bytes + [1]) }
    }

    @Test("revoked identities round-trip; more than 64 are refused before reading them")
    func revokedList() throws {
        var announcement = Self.announcement
        announcement.revoked = [Array(repeating: 0xab, count: 32), Array(repeating: 0xcd, count: 32)]
        let bytes = announcement.serialized()
        #expect(try SiteAnnouncement(parsing: bytes) == announcement)
        for length in 0..<bytes.count {
            #expect(throws: WireError.self) { try SiteAnnouncement(parsing: Array(bytes[0..<length])) }
        }
        var over = Self.announcement.serialized()
        // The count sits before the (empty) previous certificate's u16 length and signature's u8.
        over[over.count - 4] = 65
        #expect(throws: WireError(.limitExceeded, field: "revoked count")) { try SiteAnnouncement(parsing: over) }
    }

    @Test("a previous identity's endorsement round-trips; an oversized certificate is refused")
    func endorsement() throws {
        var announcement = Self.announcement
        announcement.previousCertificate = Array(repeating: 0x30, count: 300)
        announcement.previousSignature = Array(repeating: 0x5c, count: 64)
        let bytes = announcement.serialized()
        #expect(try SiteAnnouncement(parsing: bytes) == announcement)
        for length in stride(from: 0, to: bytes.count, by: 5) {
            #expect(throws: WireError.self) { try SiteAnnouncement(parsing: Array(bytes[0..<length])) }
        }
        var over = Self.announcement.serialized()
        over[over.count - 3] = 0x10  // a 4,096 + 1 byte certificate announced
        over[over.count - 2] = 0x01
        #expect(throws: WireError(.limitExceeded, field: "previous certificate")) {
            try SiteAnnouncement(parsing: over)
        }
    }

    @Test("endpoints of unknown link types are skipped, for newer peers")
    func unknownLinkType() throws {
        var bytes = Self.announcement.serialized()
        let typeOffset = 2 + 4 + 8 + 16 + 1 + 32 + 1 + 5 + 2 + 1
        #expect(bytes[typeOffset] == 1)
        bytes[typeOffset] = 200
        let parsed = try SiteAnnouncement(parsing: bytes)
        #expect(parsed.endpoints == [Self.announcement.endpoints[1]])
        // Counted, so the planner can say once that it skips them.
        #expect(parsed.skippedEndpoints == 1)
        #expect(try SiteAnnouncement(parsing: Self.announcement.serialized()).skippedEndpoints == 0)
    }

    @Test("a WebSocket endpoint round-trips with its URL as the address")
    func webSocketEndpoint() throws {
        var announcement = Self.announcement
        announcement.endpoints.append(.init(linkType: .websocket, address: "wss://example.com/weft", port: 443))
        let parsed = try SiteAnnouncement(parsing: announcement.serialized())
        #expect(parsed.endpoints.last == .init(linkType: .websocket, address: "wss://example.com/weft", port: 443))
    }

    @Test("goodbyes round-trip and refuse unknown reasons")
    func goodbye() throws {
        let goodbye = SiteGoodbye(session: Array(repeating: 3, count: 16), reason: .lastWill)
        #expect(try SiteGoodbye(parsing: goodbye.serialized()) == goodbye)
        #expect(throws: WireError.self) { try SiteGoodbye(parsing: Array(repeating: 3, count: 16) + [9]) }
        #expect(throws: WireError.self) { try SiteGoodbye(parsing: Array(repeating: 3, count: 16)) }
    }
}
