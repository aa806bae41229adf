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
    ],
    targets: [
        // The ledger's rules as a pure value: stdlib only, no I/O, no clock, no randomness.
        .target(name: "TallyCore"),
        .target(name: "TallyTools", dependencies: ["TallyCore"]),
        .executableTarget(
            name: "tally",
            dependencies: ["TallyTools", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "tools/tally"
        ),
        .testTarget(name: "TallyCoreTests", dependencies: ["TallyCore"]),
    ],
    swiftLanguageModes: [.v6]
)
