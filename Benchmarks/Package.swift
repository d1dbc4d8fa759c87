// swift-tools-version: 6.1
import PackageDescription

// The main package is a path dependency, so its identity is its folder's name (a clone need not
// be called "weft").
let mainPackage = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "weft").lowercased()

// Hot-path allocation and CPU benchmarks (ordo-one/benchmark), kept out of the main package so
// that its build and CI never build the benchmark tooling. Run: scripts/bench-alloc.sh
let package = Package(
    name: "weft-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "WeftHotPath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "WeftWire", package: mainPackage),
                .product(name: "WeftTunnel", package: mainPackage),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/WeftHotPath",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
