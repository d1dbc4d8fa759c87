// Writes the seed corpus: small valid inputs for each fuzz target, serialized by weft's own
// code. Run from FuzzTesting/: `swift run --scratch-path .build/plain MakeCorpus` (writes into
// ./Corpus, replacing files of the same name and leaving others alone; a plain build, as the
// fuzzer flags would give it libFuzzer's `main`).

import Foundation
import NIOCore
import NIOEmbedded
import WeftIdentity
import WeftTunnel
import WeftWire

@testable import WeftTransport

let corpus = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Corpus"

func write(_ target: String, _ name: String, _ bytes: [UInt8]) {
    let directory = "\(corpus)/\(target)"
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    precondition(FileManager.default.createFile(atPath: "\(directory)/\(name)", contents: Data(bytes)))
}

func frames(_ frames: [TunnelFrame]) -> [UInt8] {
    var buffer = ByteBuffer()
    for frame in frames { TunnelFrameSerializer().serialize(frame, into: &buffer) }
    return Array(buffer.readableBytesView)
}

func data(_ stream: UInt32, _ offset: UInt64, _ text: String, fin: Bool = false) -> TunnelFrame {
    .streamData(StreamData(streamID: stream, offset: offset, fin: fin, data: ByteBuffer(string: text)))
}

// MARK: tunnel frames

let tunnelID = (0..<UInt8(LinkHello.tunnelIDLength)).map { $0 &* 17 }
let hello = TunnelFrame.hello(
    LinkHello(
        minVersion: 1,
        maxVersion: 1,
        siteName: "berlin",
        incarnation: 0x0123_4567_89AB_CDEF,
        tunnelID: tunnelID,
        linkID: 3,
        capabilities: 1
    )
)
let welcome = TunnelFrame.welcome(
    LinkWelcome(version: 1, siteName: "lisbon", incarnation: 0xFEDC_BA98_7654_3210, capabilities: 0))
let examples: [(String, TunnelFrame)] = [
    ("hello", hello),
    ("welcome", welcome),
    ("refuse", .refuse(LinkRefuse(reason: .unknownTunnel, message: "restarted"))),
    ("open", .streamOpen(StreamOpen(streamID: 1, appName: "ssh", initialWindow: 262_144))),
    (
        "open-target",
        .streamOpen(StreamOpen(streamID: 3, appName: "lan", target: "tcp:10.0.2.7:5900", initialWindow: 65_536))
    ),
    ("data", data(1, 0, "hello, world")),
    ("data-fin", data(1, 12, "bye", fin: true)),
    ("reset", .streamReset(StreamReset(streamID: 1, code: .notExposed, message: "no such app"))),
    ("window", .windowUpdate(WindowUpdate(streamID: 1, limit: 524_288))),
    ("ack", .ack(7)),
    ("ping", .ping(1)),
    ("pong", .pong(1)),
    ("goodbye-tunnel", .goodbye(Goodbye(tunnel: true, message: "stopping"))),
]
for (name, frame) in examples {
    write("FuzzTunnelFrameParser", name, frames([frame]))
}
write("FuzzTunnelFrameParser", "handshake", frames([hello, welcome]))
write(
    "FuzzTunnelFrameParser",
    "session",
    frames([
        .streamOpen(StreamOpen(streamID: 2, appName: "web", initialWindow: 1024)),
        data(2, 0, "GET / HTTP/1.1\r\n\r\n", fin: true),
        .ack(2),
        .ping(9),
        .goodbye(Goodbye(tunnel: false, message: "")),
    ])
)

// MARK: discovery messages

let session = (0..<UInt8(SiteAnnouncement.sessionLength)).map { 0xA0 &+ $0 }
let announcement = SiteAnnouncement(
    protocolVersion: 1,
    capabilities: 1,
    instance: 42,
    session: session,
    siteID: "3f2a9c",
    softwareVersion: "0.1.0",
    refreshSeconds: 30,
    endpoints: [
        .init(linkType: .tls, address: "192.0.2.10", port: 7443),
        .init(linkType: .tls, address: "2001:db8::1", port: 7443),
    ],
    apps: ["ssh", "web"],
    revoked: [Array(repeating: 0xEE, count: SiteAnnouncement.fingerprintLength)]
)
let goodbye = SiteGoodbye(session: session, reason: .stopped)
// Not a real certificate or signature: the parser only bounds their lengths.
let certificate: [UInt8] = [0x30, 0x82, 0x01, 0x0A] + Array(repeating: 0x11, count: 60)
let signature = [UInt8](repeating: 0x5C, count: 64)
func signed(_ kind: DiscoveryMessage.Kind, _ body: [UInt8]) -> [UInt8] {
    let serializer = DiscoveryMessageSerializer()
    let message = DiscoveryMessage(
        kind: kind,
        timestampMillis: 1_750_000_000_000,
        messageID: (0..<UInt8(DiscoveryMessage.messageIDLength)).map { $0 },
        senderName: "berlin",
        senderCertificate: certificate,
        body: body
    )
    return serializer.serialize(signedBytes: serializer.serialize(message), signature: signature)
}
var unknownEndpoint = SiteAnnouncement(
    protocolVersion: 2,
    capabilities: 0xFFFF_FFFF,
    instance: 1,
    session: session,
    siteID: "x",
    softwareVersion: "",
    refreshSeconds: 5,
    endpoints: [.init(linkType: .tls, address: "10.0.0.1", port: 1)],
    apps: []
).serialized()
unknownEndpoint[unknownEndpoint.count - 4 - 2 - 2 - 8 - 1 - 1] = 9  // the endpoint's link type
write("FuzzDiscoveryMessageParser", "signed-announcement", signed(.announcement, announcement.serialized()))
write("FuzzDiscoveryMessageParser", "signed-goodbye", signed(.goodbye, goodbye.serialized()))
write("FuzzDiscoveryMessageParser", "announcement", announcement.serialized())
write("FuzzDiscoveryMessageParser", "announcement-unknown-link-type", unknownEndpoint)
write("FuzzDiscoveryMessageParser", "goodbye", goodbye.serialized())

// MARK: tunnel engine (two header bytes, see FuzzTunnelEngine/main.swift, then the peer's bytes)

// The engine opens odd streams (header bit 6), so the peer's are even.
write(
    "FuzzTunnelEngine",
    "peer-stream",
    [0x40 | 7, 0x13]
        + frames([
            .streamOpen(StreamOpen(streamID: 2, appName: "ssh", initialWindow: 65_536)),
            data(2, 0, "SSH-2.0-x\r\n"),
            .ack(1),
            data(2, 11, "", fin: true),
            .ack(2),
            .ping(5),
        ])
)
write(
    "FuzzTunnelEngine",
    "early-and-duplicate-data",
    [0x40 | 63, 0x21]
        + frames([
            data(4, 5, "world", fin: true),
            data(4, 0, "hello"),
            .streamOpen(StreamOpen(streamID: 4, appName: "web", initialWindow: 1024)),
            data(4, 0, "hello"),
            .windowUpdate(WindowUpdate(streamID: 4, limit: 4096)),
            .ack(2),
        ])
)
// This side opens stream 1 and sends on it (header byte 1, bit 7); the peer acknowledges,
// answers and finishes.
write(
    "FuzzTunnelEngine",
    "local-stream",
    [0x40 | 15, 0x80 | 0x21]
        + frames([
            .ack(1),
            .windowUpdate(WindowUpdate(streamID: 1, limit: 1 << 20)),
            .ack(2),
            data(1, 0, "answer", fin: true),
            .ack(3),
        ])
)
// A second, silent link (header byte 0, bit 7) gets suspected; the peer resets a stream.
write(
    "FuzzTunnelEngine",
    "silent-link-and-reset",
    [0x80 | 0x40 | 31, 0x80 | 0x54]
        + frames([
            .streamOpen(StreamOpen(streamID: 2, appName: "lan", target: "tcp:10.0.2.7:22", initialWindow: 10)),
            data(2, 0, "0123456789"),
            .streamReset(StreamReset(streamID: 2, code: .cancelled, message: "")),
            .pong(1),
            .ack(1),
        ])
)
write(
    "FuzzTunnelEngine",
    "goodbye",
    [0x40 | 3, 0x65] + frames([.ping(1), .goodbye(Goodbye(tunnel: false, message: "moving"))]) + frames([.ping(2)])
)
write("FuzzTunnelEngine", "handshake-after-handshake", [0, 0] + frames([hello]))
// Boundary values a hostile member sends (issue 14): offsets, final sizes and limits at and
// past 2^62 and 2^64, ids at the top of the space, several streams at once.
write(
    "FuzzTunnelEngine",
    "reset-final-size-overflow",
    [0x40 | 63, 0x11]
        + frames([
            .streamOpen(StreamOpen(streamID: 2, appName: "web", initialWindow: 65_536)),
            data(2, 0, "x"),
            .streamReset(StreamReset(streamID: 2, code: .cancelled, finalSize: .max)),
        ])
)
write(
    "FuzzTunnelEngine",
    "reset-final-size-at-bound",
    [0x40 | 63, 0x11]
        + frames([
            data(2, 0, "x"),
            .streamReset(StreamReset(streamID: 2, code: .cancelled, finalSize: WireProtocol.maxStreamOffset)),
            .streamReset(StreamReset(streamID: 6, code: .cancelled, finalSize: WireProtocol.maxStreamOffset - 1)),
        ])
)
write(
    "FuzzTunnelEngine",
    "data-offset-near-max",
    [0x40 | 63, 0x11]
        + frames([
            data(2, WireProtocol.maxStreamOffset - 3, "abc"),
            data(4, UInt64.max - 1, "a"),
            data(6, 1 << 63, "b"),
        ])
)
write(
    "FuzzTunnelEngine",
    "huge-windows-and-ids",
    [0x80 | 0x40 | 63, 0x80 | 0x11]
        + frames([
            .windowUpdate(WindowUpdate(streamID: 0, limit: WireProtocol.maxStreamOffset)),
            .windowUpdate(WindowUpdate(streamID: 1, limit: WireProtocol.maxStreamOffset)),
            .windowUpdate(WindowUpdate(streamID: UInt32.max, limit: .max)),
            .streamOpen(StreamOpen(streamID: UInt32.max - 1, appName: "a", initialWindow: .max)),
            .streamOpen(StreamOpen(streamID: 1 << 31, appName: "b", initialWindow: 0)),
            .ack(.max),
        ])
)
write(
    "FuzzTunnelEngine",
    "several-streams-out-of-order",
    [0x40 | 5, 0x21]
        + frames([
            .streamOpen(StreamOpen(streamID: 2, appName: "a", initialWindow: 65_536)),
            .streamOpen(StreamOpen(streamID: 4, appName: "b", initialWindow: 65_536)),
            data(4, 3, "def"),
            data(2, 2, "c"),
            data(2, 4, "e"),
            data(4, 0, "abc", fin: false),
            data(2, 0, "ab"),
            data(2, 3, "d", fin: true),
            .streamOpen(StreamOpen(streamID: 8, appName: "c", initialWindow: 1)),
            data(8, 1, "x"),
            .streamReset(StreamReset(streamID: 4, code: .cancelled, finalSize: 6)),
        ])
)

// MARK: link handshake (two header bytes, see FuzzLinkHandshake/main.swift, then the peer's bytes)

// The identities the target uses: lisbon accepts, berlin dials lisbon for link 3.
let acceptorIncarnation: UInt64 = 0xFEDC_BA98_7654_3210
let dialerIncarnation: UInt64 = 0x0123_4567_89AB_CDEF
/// berlin's hello asking to join lisbon's half `acceptorHalf` of their tunnel (0: a new tunnel).
func berlinHello(acceptorHalf: UInt64) -> TunnelFrame {
    .hello(
        LinkHello(
            minVersion: WireProtocol.version,
            maxVersion: WireProtocol.version,
            siteName: "berlin",
            incarnation: dialerIncarnation,
            tunnelID: TunnelID(
                localSite: "berlin", localIncarnation: dialerIncarnation, peerSite: "lisbon",
                peerIncarnation: acceptorHalf
            ).bytes,
            linkID: 3,
            capabilities: 0
        )
    )
}
let validHello = berlinHello(acceptorHalf: acceptorIncarnation)
let newTunnelHello = berlinHello(acceptorHalf: LinkHandshake.unknownIncarnation)
let earlierTunnelHello = berlinHello(acceptorHalf: acceptorIncarnation - 1)
let tunnelFrames = frames([
    .streamOpen(StreamOpen(streamID: 1, appName: "ssh", initialWindow: 65_536)),
    data(1, 0, "SSH-2.0-x\r\n"),
    .ack(1),
])
// Byte 0: bit 0 dialer, bit 1 the driver refuses, bit 2 it decides after all input, bit 3 the
// timer fires, bits 4-6 the refusal's reason code. Byte 1: chunk size - 1; bits 6-7 how the
// acceptor's driver accepts (0 its own incarnation, 1 the requested half, 2 a fresh half, 3 the
// input's last 8 bytes); bit 6 the dialer names lisbon's half as unknown (a new tunnel).
write("FuzzLinkHandshake", "hello", [0x00, 0x3F] + frames([validHello]))
write("FuzzLinkHandshake", "hello-and-tunnel-bytes", [0x00, 0x06] + frames([validHello]) + tunnelFrames)
write(
    "FuzzLinkHandshake",
    "hello-refused-late",
    [UInt8(LinkRefuse.Reason.tooManyLinks.code) << 4 | 0x04 | 0x02, 0x0A] + frames([validHello]) + tunnelFrames
)
// A new tunnel: lisbon's half named as unknown, welcomed at lisbon's own incarnation or at a
// fresh half the driver chose.
write("FuzzLinkHandshake", "hello-new-tunnel", [0x00, 0x3F] + frames([newTunnelHello]))
write("FuzzLinkHandshake", "hello-new-tunnel-fresh-half", [0x00, 0x80 | 0x0F] + frames([newTunnelHello]))
// An earlier half of lisbon's: refused (unknown tunnel) by accept(), joined when the driver
// accepts with the requested half.
write("FuzzLinkHandshake", "hello-earlier-tunnel", [0x00, 0x3F] + frames([earlierTunnelHello]))
write(
    "FuzzLinkHandshake", "hello-earlier-tunnel-joined",
    [0x04, 0x40 | 0x05] + frames([earlierTunnelHello]) + tunnelFrames
)
// The hello of the frame parser's corpus: its tunnel id does not hold berlin's incarnation.
write("FuzzLinkHandshake", "hello-inconsistent-tunnel", [0x00, 0x3F] + frames([hello]))
write("FuzzLinkHandshake", "welcome", [0x01, 0x3F] + frames([welcome]))
write("FuzzLinkHandshake", "welcome-and-tunnel-bytes", [0x01, 0x04] + frames([welcome]) + tunnelFrames)
// A dialer with a new tunnel learns lisbon's half from the welcome, any but unknown.
write(
    "FuzzLinkHandshake", "welcome-new-tunnel",
    [0x01, 0x40 | 0x3F]
        + frames([
            .welcome(LinkWelcome(version: 1, siteName: "lisbon", incarnation: 0x5555_AAAA_5555_AAAA, capabilities: 0))
        ])
)
write(
    "FuzzLinkHandshake", "welcome-new-tunnel-unknown-half",
    [0x01, 0x40 | 0x3F]
        + frames([.welcome(LinkWelcome(version: 1, siteName: "lisbon", incarnation: 0, capabilities: 0))])
)
write(
    "FuzzLinkHandshake",
    "refuse",
    [0x01, 0x02] + frames([.refuse(LinkRefuse(reason: .unknownTunnel, message: "lisbon restarted"))])
)
write("FuzzLinkHandshake", "timeout", [0x01 | 0x08, 0x00])

// QUIC: a real client's first flight (an Initial padded to at least 1200 bytes), from a dial on
// an embedded channel, in FuzzQUICDatagrams' layout (2-byte length, then the datagram).
func quicFirstFlight() -> [UInt8] {
    let channel = EmbeddedChannel()
    let endpoint = QUICEndpoint(
        tls: try! QUICTLS(identity: try! SiteIdentity.generate()), configuration: QUICConfiguration(), acceptor: nil,
        closesWhenIdle: false)
    try! channel.pipeline.syncOperations.addHandler(endpoint)
    _ = endpoint.dial(
        try! SocketAddress(ipAddress: "198.18.0.1", port: 4433), expecting: try! SiteIdentity.generate().fingerprint,
        timeout: .seconds(5), ready: { _ in })
    var bytes: [UInt8] = []
    while let out = try! channel.readOutbound(as: AddressedEnvelope<ByteBuffer>.self) {
        let count = out.data.readableBytes
        bytes += [UInt8(count >> 8), UInt8(count & 0xff)] + Array(out.data.readableBytesView)
    }
    return bytes
}
let flight = quicFirstFlight()
write("FuzzQUICDatagrams", "client-initial", flight)
// The same Initial again from the second source, and a short-header packet for nobody.
write("FuzzQUICDatagrams", "initial-twice", flight + [flight[0] | 0x80, flight[1]] + flight.dropFirst(2))
write("FuzzQUICDatagrams", "short-header", [0x00, 0x20, 0x40] + Array(repeating: 0xab, count: 31))
