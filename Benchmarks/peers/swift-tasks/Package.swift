// swift-tools-version:6.0
// Swift Concurrency's suspended tasks, the peer task-peers.sh measures
// beside green-bench's compact_parked_bytes_per_greenlet. Built on its own
// (its own scratch path), never by the main package; no dependencies.
import PackageDescription

let package = Package(
    name: "swift-tasks",
    platforms: [.macOS(.v15)],
    targets: [
        .executableTarget(name: "SwiftTasks"),
    ],
    swiftLanguageModes: [.v6]
)
