// swift-tools-version:5.9
// Gridcase for iOS (and macOS, so the tests run with `swift test` on a Mac).
//
// GridcaseFFI.xcframework (the Rust core: static library + C header + module map) and
// Sources/Gridcase/Generated/gridcase_ffi.swift (the uniffi Swift bindings) are not committed:
// run ./build-xcframework.sh on macOS first; it builds both.
import PackageDescription

let package = Package(
    name: "Gridcase",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Gridcase", targets: ["Gridcase"]),
    ],
    targets: [
        .binaryTarget(name: "GridcaseFFI", path: "GridcaseFFI.xcframework"),
        .target(
            name: "Gridcase",
            dependencies: ["GridcaseFFI"],
            path: "Sources/Gridcase"
        ),
        .testTarget(
            name: "GridcaseTests",
            dependencies: ["Gridcase"],
            path: "Tests/GridcaseTests"
        ),
    ]
)
