// swift-tools-version:6.0
// SwiftNIO's crossings between its event loop and Swift Concurrency, the
// peer bridge-peers.sh measures beside green-bench's bridge figures. Built
// on its own (its own scratch path), never by the main package.
import PackageDescription

let package = Package(
    name: "nio-bridge",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
    ],
    targets: [
        .executableTarget(
            name: "NIOBridge",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
