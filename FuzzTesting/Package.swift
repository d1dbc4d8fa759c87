// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for weft's parsers and tunnel engine. Kept out of the main package so its
// builds never need the fuzzer flags; see README.md and scripts/fuzz.sh.
//
// Build (Linux, a toolchain with libFuzzer):
//   swift build -c debug --sanitize=fuzzer --sanitize=address \
//     -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library
let package = Package(
    name: "weft-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "weft", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // Tunnel frames, handshake frames included: parse, re-serialize, parse again.
        .executableTarget(
            name: "FuzzTunnelFrameParser",
            dependencies: [
                .product(name: "WeftWire", package: "weft"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Signed discovery messages and their bodies (announcements, goodbyes).
        .executableTarget(
            name: "FuzzDiscoveryMessageParser",
            dependencies: [
                .product(name: "WeftWire", package: "weft"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // A hostile peer on one link of a tunnel engine.
        .executableTarget(
            name: "FuzzTunnelEngine",
            dependencies: [
                .product(name: "WeftTunnel", package: "weft"),
                .product(name: "WeftWire", package: "weft"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The link handshake from either side, against a peer that sends anything.
        .executableTarget(
            name: "FuzzLinkHandshake",
            dependencies: [
                .product(name: "WeftTunnel", package: "weft"),
                .product(name: "WeftWire", package: "weft"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Datagrams at a listening QUIC socket: routing, ngtcp2's packet parsing, connections
        // started by Initials and torn down.
        .executableTarget(
            name: "FuzzQUICDatagrams",
            dependencies: [
                .product(name: "WeftTransport", package: "weft"),
                .product(name: "WeftIdentity", package: "weft"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        // Writes the seed corpus (Corpus/<target>/) from real frames and messages.
        .executableTarget(
            name: "MakeCorpus",
            dependencies: [
                .product(name: "WeftTransport", package: "weft"),
                .product(name: "WeftIdentity", package: "weft"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "WeftTunnel", package: "weft"),
                .product(name: "WeftWire", package: "weft"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
