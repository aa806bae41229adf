// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Tally",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "TallyCore", targets: ["TallyCore"]),
        .library(name: "TallyClient", targets: ["TallyClient"]),
        .executable(name: "tallyd", targets: ["tallyd"]),
        .executable(name: "tally", targets: ["tally"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.20.0"),
    ],
    targets: [
        // The ledger's rules as a pure value: stdlib only, no I/O, no clock, no randomness.
        .target(name: "TallyCore"),
        // LMDB from Debian's liblmdb-dev; only TallyStore imports it.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .target(
            name: "TallyStore",
            dependencies: ["CLMDB", "TallyCore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // zlib from Debian's zlib1g-dev; only TallyArchive imports it.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLibdeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .target(
            name: "TallyArchive",
            dependencies: ["CZlib", "CLibdeflate", "TallyCore", "TallyStore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "TallyWire",
            dependencies: ["TallyCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "TallyServer",
            dependencies: [
                "TallyCore", "TallyStore", "TallyWire", "TallyArchive",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
            ],
            swiftSettings: [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        // jemalloc from Debian's libjemalloc-dev, the server's malloc on Linux (README, "tallyd allocates with
        // jemalloc"); only tallyd links it.
        .systemLibrary(name: "CJemalloc", pkgConfig: "jemalloc", providers: [.apt(["libjemalloc-dev"])]),
        .executableTarget(
            name: "tallyd",
            dependencies: [
                "TallyServer", "TallyArchive", "TallyStore", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .target(name: "CJemalloc", condition: .when(platforms: [.linux])),
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "TallyClient",
            dependencies: ["TallyCore", "TallyWire", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]
        ),
        // epoll from the C library (Linux); only the HTTP bench's client imports it.
        .systemLibrary(name: "CEpoll"),
        .target(
            name: "TallyTools",
            dependencies: [
                "CEpoll", "TallyCore", "TallyStore", "TallyClient", "TallyWire", "TallyArchive",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "tally",
            dependencies: ["TallyTools", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "tools/tally"
        ),
        .testTarget(name: "TallyCoreTests", dependencies: ["TallyCore"]),
        // Finding the built executables, for the suites that start real processes.
        .target(name: "TallyTestSupport", path: "Tests/TallyTestSupport"),
        .testTarget(name: "TallyStoreTests", dependencies: ["TallyStore", "TallyCore", "TallyTestSupport"]),
        .testTarget(
            name: "TallyWireTests",
            dependencies: ["TallyWire", "TallyCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOTestUtils", package: "swift-nio")]
        ),
        .testTarget(name: "TallyToolsTests", dependencies: ["TallyTools", "TallyClient", "TallyWire", "TallyCore"]),
        .testTarget(name: "TallyArchiveTests", dependencies: ["TallyArchive", "TallyStore", "TallyCore", "TallyTestSupport"]),
        .testTarget(name: "TallyServerTests", dependencies: ["TallyServer", "TallyClient", "TallyWire", "TallyCore", "TallyStore", "TallyTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

// Release builds of the server and the tools leave out the run-time exclusivity checks (debug builds, and so
// the tests, keep them): the compiler proves exclusive access statically wherever it can, and the dynamic
// check left for class properties and escaping closures cost 5-11% of the server's CPU per request under
// HTTP load (`tally bench`, BENCHMARKS.md). The library products' targets (TallyCore, and TallyClient with
// TallyWire) keep the default: a package with unsafe flags in them could not be depended on by version.
let libraryTargets: Set<String> = ["TallyCore", "TallyWire", "TallyClient"]
for target in package.targets where (target.type == .regular || target.type == .executable) && !libraryTargets.contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
}
