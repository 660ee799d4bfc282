// swift-tools-version:6.0
import PackageDescription

// GREEN_CONTEXT=ucontext at build time makes every context use the portable
// makecontext/swapcontext path instead of the assembly switch, so CI can run
// the whole suite on both.
let forceUcontext = Context.environment["GREEN_CONTEXT"] == "ucontext"

// GREEN_SANITIZE=address|thread (with `swift build/test --sanitize=...`;
// `make sanitize`) routes every context switch through the sanitizer's
// fiber annotations (Sources/CGreenContext/sanitizers.c). The switch is
// inlined into Swift code from a C header, so Swift's importer needs the
// define too. GREEN_VALGRIND=1 registers greenlet stacks with Valgrind
// (`make valgrind`). Other builds compile none of it.
let sanitize = Context.environment["GREEN_SANITIZE"] ?? ""
let annotateSwitches = sanitize == "address" || sanitize == "thread"
let valgrind = Context.environment["GREEN_VALGRIND"] == "1"
let contextDefines: [CSetting] = (forceUcontext ? [.define("GREEN_FORCE_UCONTEXT")] : [])
    + (annotateSwitches ? [.define("GREEN_ANNOTATE_SWITCHES")] : [])
    + (valgrind ? [.define("GREEN_VALGRIND")] : [])
let switchImportFlags: [SwiftSetting] = annotateSwitches
    ? [.unsafeFlags(["-Xcc", "-DGREEN_ANNOTATE_SWITCHES"])] : []

let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

/// An example program, in Examples/`folder`: on Green and ArgumentParser,
/// and on `dependencies`.
func example(_ name: String, _ folder: String, dependencies: [Target.Dependency] = [], exclude: [String] = [],
             swiftSettings: [SwiftSetting]? = nil) -> Target {
    .executableTarget(name: name, dependencies: ["Green"] + dependencies + [argumentParser],
                      path: "Examples/\(folder)", exclude: exclude, swiftSettings: swiftSettings)
}

// GREEN_FUZZ=1 adds the libFuzzer targets (built by `make fuzz` with
// -sanitize=fuzzer, which supplies their main), each in Fuzz/NAME on what
// they share (Fuzz/FuzzSupport) and the library it fuzzes.
let fuzzing = Context.environment["GREEN_FUZZ"] == "1"
func fuzzTarget(_ name: String, fuzzing library: Target.Dependency) -> Target {
    .executableTarget(name: name, dependencies: [library, "FuzzSupport"], path: "Fuzz/\(name)",
                      swiftSettings: [.unsafeFlags(["-parse-as-library"])])
}
let fuzzTargets: [Target] = fuzzing ? [
    .target(name: "FuzzSupport", path: "Fuzz/FuzzSupport"),
    fuzzTarget("FuzzHTTP", fuzzing: "GreenHTTP"),
    fuzzTarget("FuzzURL", fuzzing: "GreenCrawl"),
    fuzzTarget("FuzzLinks", fuzzing: "GreenCrawl"),
] : []

let package = Package(
    name: "swift-green",
    products: [
        .library(name: "Green", targets: ["Green"]),
        .library(name: "GreenHTTP", targets: ["GreenHTTP"]),
        .library(name: "GreenTLS", targets: ["GreenTLS"]),
        .library(name: "GreenRedis", targets: ["GreenRedis"]),
        .library(name: "GreenCrawl", targets: ["GreenCrawl"]),
        .library(name: "GreenCompare", targets: ["GreenCompare"]),
        .library(name: "GreenPatch", targets: ["GreenPatch"]),
        .executable(name: "crawl", targets: ["Crawl"]),
        .executable(name: "green-compare", targets: ["GreenCompareTool"]),
        .executable(name: "green-bench", targets: ["GreenBench"]),
        .executable(name: "sleepers", targets: ["Sleepers"]),
        .executable(name: "producer-consumer", targets: ["ProducerConsumer"]),
        .executable(name: "bank-balance", targets: ["BankBalance"]),
        .executable(name: "echo-server", targets: ["EchoServer"]),
        .executable(name: "echo-load", targets: ["EchoLoad"]),
        .executable(name: "chat", targets: ["Chat"]),
        .executable(name: "http-hello", targets: ["HTTPHello"]),
        .executable(name: "green-faults", targets: ["Faults"]),
        .executable(name: "idle-connections", targets: ["IdleConnectionsExample"]),
        .executable(name: "http-get", targets: ["HTTPGet"]),
        .executable(name: "ws-echo", targets: ["WSEcho"]),
        .executable(name: "async-interop", targets: ["AsyncInterop"]),
        .executable(name: "main-hub", targets: ["MainHub"]),
        .executable(name: "main-hub-bench", targets: ["MainHubBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        // 1.12: LogEvent and the log calls that take an error.
        .package(url: "https://github.com/apple/swift-log", from: "1.12.0"),
        // Built and tested with 2.13 (GreenMetrics passes its factory to
        // Counter and Gauge explicitly).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        // `swift package generate-documentation` (the DocC catalogs).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        .target(
            name: "CGreenContext",
            cSettings: contextDefines
        ),
        .target(name: "CGreenLinux"),
        .systemLibrary(
            name: "CHTTPParser",
            providers: [.apt(["libhttp-parser-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "GreenTLS",
            dependencies: ["Green", "COpenSSL"]
        ),
        .target(
            name: "GreenRedis",
            dependencies: ["Green"]
        ),
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "GreenHTTP",
            dependencies: ["Green", "GreenTLS", "CHTTPParser", "CZlib"]
        ),
        .systemLibrary(
            name: "CGumbo",
            providers: [.apt(["libgumbo-dev"])]
        ),
        .systemLibrary(
            name: "CLibXML2",
            pkgConfig: "libxml-2.0",
            providers: [.apt(["libxml2-dev"])]
        ),
        .target(
            name: "GreenCrawl",
            dependencies: ["Green", "GreenHTTP", "GreenTLS", "GreenRedis", "CGumbo", "CLibXML2", "CZlib"]
        ),
        // The crawl on the adapter layer's threads and processes: above both.
        .target(
            name: "GreenCrawlModels",
            dependencies: ["Green", "GreenCrawl", "GreenCompare"]
        ),
        .target(name: "CGreenPatch"),
        .target(
            name: "GreenPatch",
            dependencies: ["Green", "CGreenPatch", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "CPatchProbe",
            path: "Tests/CPatchProbe"
        ),
        .target(
            name: "GreenCompare",
            dependencies: [
                "Green", "CGreenLinux",
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The workloads green-compare runs on every model (some talk HTTP).
        .target(
            name: "GreenCompareWorkloads",
            dependencies: ["Green", "GreenCompare", "GreenHTTP"]
        ),
        .executableTarget(
            name: "GreenCompareTool",
            dependencies: ["Green", "GreenCompare", "GreenCompareWorkloads", argumentParser]
        ),
        example("Crawl", "crawl", dependencies: ["GreenHTTP", "GreenCrawl", "GreenCompare", "GreenCrawlModels"],
                exclude: ["demo-distributed.sh", "shared-crawl.sh"]),
        .systemLibrary(
            name: "CLibev",
            providers: [.apt(["libev-dev"])]
        ),
        .target(
            name: "Green",
            dependencies: [
                "CGreenContext", "CLibev", "CGreenLinux",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: switchImportFlags
        ),
        .executableTarget(
            name: "GreenBench",
            dependencies: ["Green", "CGreenContext", "GreenCrawl", argumentParser],
            swiftSettings: switchImportFlags
        ),
        example("Sleepers", "sleepers"),
        example("ProducerConsumer", "producer-consumer"),
        example("BankBalance", "bank-balance"),
        example("EchoServer", "echo-server"),
        example("EchoLoad", "echo-load"),
        example("Chat", "chat", exclude: ["smoke-test.py"]),
        example("HTTPHello", "http-hello",
                dependencies: [
                    "GreenHTTP", "GreenTLS", "COpenSSL",
                    .product(name: "Prometheus", package: "swift-prometheus"),
                    .product(name: "CoreMetrics", package: "swift-metrics"),
                ],
                exclude: ["metrics-smoke.sh"]),
        example("Faults", "faults", dependencies: ["GreenHTTP"]),
        example("IdleConnectionsExample", "idle-connections"),
        example("HTTPGet", "http-get", dependencies: ["GreenHTTP", "GreenTLS"], exclude: ["smoke-test.sh"]),
        example("WSEcho", "ws-echo", dependencies: ["GreenHTTP"]),
        example("AsyncInterop", "async-interop", dependencies: ["GreenHTTP"]),
        // Spelled out, not example(...): GreenTests runs it, and LayerTests
        // reads its dependencies here (Green alone, with ArgumentParser).
        .executableTarget(
            name: "MainHub",
            dependencies: ["Green", argumentParser],
            path: "Examples/main-hub",
            // Swift 6.3.1 calls the `DefaultExecutorFactory` the example
            // names only when it counts the custom-executor runtime as
            // available, which on Linux takes this flag.
            swiftSettings: [.unsafeFlags(["-Xfrontend", "-disable-availability-checking"])]
        ),
        // Task.yield and spawn + await with the main hub as Swift's default
        // executor against Swift's own, each in child processes of its own.
        .executableTarget(
            name: "MainHubBench",
            dependencies: ["Green"]
        ),
        .executableTarget(
            name: "GreenProbe",
            dependencies: ["Green", .product(name: "Logging", package: "swift-log")],
            path: "Tests/GreenProbe"
        ),
        // Tests, one target per library (GreenTests needs Green alone), on
        // one support target of shared helpers (the base test case, virtual
        // time, probes, a Redis server, log recording).
        .target(
            name: "GreenTestSupport",
            dependencies: [
                "Green", "CGreenContext",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/GreenTestSupport"
        ),
        .testTarget(
            name: "GreenTests",
            dependencies: [
                "Green", "CGreenContext", "GreenTestSupport", "GreenProbe", "MainHub",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "GreenHTTPTests",
            dependencies: ["Green", "GreenHTTP", "GreenTestSupport"]
        ),
        .testTarget(
            name: "GreenTLSTests",
            dependencies: ["Green", "GreenTLS", "GreenHTTP", "GreenCrawl", "GreenTestSupport"]
        ),
        .testTarget(
            name: "GreenRedisTests",
            dependencies: ["Green", "GreenRedis", "GreenTestSupport"]
        ),
        .testTarget(
            name: "GreenCrawlTests",
            dependencies: [
                "Green", "GreenHTTP", "GreenRedis", "GreenCrawl", "GreenCrawlModels", "GreenCompare",
                "GreenTestSupport", "Crawl",
            ]
        ),
        .testTarget(
            name: "GreenCompareTests",
            dependencies: ["Green", "GreenCompare", "GreenCompareWorkloads", "GreenTestSupport", "GreenCompareTool"]
        ),
        .testTarget(
            name: "GreenPatchTests",
            dependencies: [
                "Green", "GreenPatch", "CPatchProbe", "GreenTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The package as a whole: its layers, the README's snippets.
        .testTarget(
            name: "PackageTests",
            dependencies: [
                "Green", "GreenHTTP", "GreenCompare", "GreenCompareWorkloads", "GreenTestSupport", "GreenCompareTool",
            ]
        ),
    ] + fuzzTargets,
    swiftLanguageModes: [.v6]
)
