// swift-tools-version:6.0
// A WebSocket echo server on Hummingbird, the peer ws-peers.sh loads beside
// swift-green's ws-echo. Built on its own (its own scratch path), never by
// the main package.
import PackageDescription

let package = Package(
    name: "hummingbird-ws-echo",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", exact: "2.8.1"),
    ],
    targets: [
        .executableTarget(
            name: "HBWSEcho",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
