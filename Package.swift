// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Tally",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "TallyCore", targets: ["TallyCore"]),
        .executable(name: "tally", targets: ["tally"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
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
        .target(name: "TallyTools", dependencies: ["TallyCore", "TallyStore"]),
        .executableTarget(
            name: "tally",
            dependencies: ["TallyTools", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "tools/tally"
        ),
        .testTarget(name: "TallyCoreTests", dependencies: ["TallyCore"]),
        .testTarget(name: "TallyStoreTests", dependencies: ["TallyStore", "TallyCore"]),
    ],
    swiftLanguageModes: [.v6]
)
