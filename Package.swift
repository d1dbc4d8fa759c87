// swift-tools-version: 6.1
import PackageDescription

// Layers, lowest first. Arrows point down only (see docs/ARCHITECTURE.md).
let package = Package(
    name: "weft",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "weft", targets: ["weft"]),
        .library(name: "WeftSite", targets: ["WeftSite"]),
        .library(name: "WeftWire", targets: ["WeftWire"]),
        .library(name: "WeftTunnel", targets: ["WeftTunnel"]),
        .library(name: "WeftTransport", targets: ["WeftTransport"]),
        .library(name: "WeftIdentity", targets: ["WeftIdentity"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Without its default traits: no swift-configuration, no full Foundation needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // Byte formats: handshake, frames, envelopes. No I/O, no clock.
        .target(
            name: "WeftWire",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // The sans-I/O tunnel engine.
        .target(
            name: "WeftTunnel",
            dependencies: ["WeftWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // The site's key pair and self-signed certificate, shared by links and discovery.
        .target(
            name: "WeftIdentity",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // NIO links: TLS with pinning, dialing, accepting, the engine driver.
        .target(
            name: "WeftTransport",
            dependencies: [
                "WeftTunnel", "WeftIdentity", "WeftWire", "CNGTCP2", "CBluetooth", "CLibUSB",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSOCKS", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // QUIC for links: Debian's ngtcp2 0.12 with its GnuTLS crypto helper, and GnuTLS.
        .systemLibrary(
            name: "CNGTCP2",
            pkgConfig: "libngtcp2_crypto_gnutls",
            providers: [.apt(["libngtcp2-dev", "libngtcp2-crypto-gnutls-dev", "libgnutls28-dev"])]
        ),
        // Bluetooth links (RFCOMM): BlueZ's libbluetooth from Debian's libbluetooth-dev.
        .systemLibrary(
            name: "CBluetooth",
            pkgConfig: "bluez",
            providers: [.apt(["libbluetooth-dev"])]
        ),
        // libusb-1.0 from Debian's libusb-1.0-0-dev: the host side of USB links.
        .systemLibrary(
            name: "CLibUSB",
            pkgConfig: "libusb-1.0",
            providers: [.apt(["libusb-1.0-0-dev"])]
        ),
        // libmosquitto from Debian's libmosquitto-dev.
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        // The message channel: MQTT client, sealed envelopes, the site directory.
        .target(
            name: "WeftDiscovery",
            dependencies: [
                "CMosquitto", "WeftWire", "WeftIdentity",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // Config, apps, relays, the tunnel manager: the running site.
        .target(
            name: "WeftSite",
            dependencies: [
                "WeftWire", "WeftTunnel", "WeftIdentity", "WeftTransport", "WeftDiscovery",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // REST API, metrics and dashboard.
        .target(
            name: "WeftAPI",
            dependencies: [
                "WeftSite", "WeftDiscovery", "WeftTransport", "WeftWire",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Resources/openapi.yaml")]
        ),
        // The command line.
        .executableTarget(
            name: "weft",
            dependencies: [
                "WeftSite", "WeftAPI", "WeftIdentity", "WeftDiscovery", "WeftWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Benchmarks: figures and ratios against baselines measured in the same run.
        .executableTarget(
            name: "weft-bench",
            dependencies: [
                "WeftDiscovery", "WeftIdentity", "WeftTestSupport", "WeftTransport", "WeftWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Real helpers for tests and benchmarks: a mosquitto broker on a free port.
        .target(name: "WeftTestSupport"),
        .testTarget(
            name: "WeftWireTests",
            dependencies: [
                "WeftWire", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "WeftTunnelTests",
            dependencies: [
                "WeftTunnel", "WeftWire", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(name: "WeftIdentityTests", dependencies: ["WeftIdentity"]),
        .testTarget(
            name: "WeftTransportTests",
            dependencies: [
                "WeftTransport", "WeftIdentity", "WeftTunnel", "WeftWire", "WeftTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "WeftDiscoveryTests",
            dependencies: [
                "WeftDiscovery", "WeftIdentity", "WeftWire", "WeftTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "WeftSiteTests",
            dependencies: [
                "WeftSite", "WeftTestSupport", "WeftTransport", "WeftWire", "WeftDiscovery", "WeftIdentity",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "WeftAPITests",
            dependencies: [
                "WeftAPI", "WeftSite", "WeftDiscovery", "WeftIdentity", "WeftTransport", "WeftTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Runs the built `weft` binary as a process.
        .testTarget(
            name: "WeftCLITests",
            // `weft` is not imported: it is here so the binary the tests run is built first.
            // The hostile member speaks the protocol with the library's own parts.
            dependencies: [
                "weft", "WeftTestSupport", "WeftDiscovery", "WeftIdentity", "WeftTransport", "WeftTunnel", "WeftWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
