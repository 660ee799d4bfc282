import Foundation
import Green
import Synchronization
import XCTest

/// Base class of the suite. Every test runs on XCTest's main thread and
/// shares that thread's hub with the others, so each one must leave no
/// greenlet running and no stack in use behind it: checked here.
class GreenTestCase: XCTestCase {
    private var stacksInUseAtStart = 0

    override func setUp() {
        super.setUp()
        stacksInUseAtStart = Hub.current.stackStats.inUse
    }

    override func tearDown() {
        XCTAssertEqual(Hub.current.liveGreenlets, 0, "the test left greenlets running on the shared hub")
        XCTAssertEqual(Hub.current.stackStats.inUse, stacksInUseAtStart, "the test left greenlet stacks in use")
        super.tearDown()
    }
}

/// An error with a tag, thrown by test bodies.
struct TestError: Error, Equatable, CustomStringConvertible {
    let tag: String
    init(_ tag: String) { self.tag = tag }
    var description: String { "TestError(\(tag))" }
}

/// A small seeded generator (SplitMix64) so that "random" tests replay.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Something to hold weakly, to see when a value is released.
final class Tracked {
    let tag: Int
    init(_ tag: Int) { self.tag = tag }
}

/// The process's resident set size in bytes (from /proc/self/statm).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

// MARK: - The probe (a child process)

/// How a run of the GreenProbe helper ended.
struct ProbeOutcome {
    let reason: Process.TerminationReason
    let status: Int32
    let stdout: String
    let stderr: String
}

enum Probe {
    /// The GreenProbe executable: it is built into the same products
    /// directory as the test bundle (.build/<triple>/debug/).
    static let executable: URL? = {
        var directories: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        directories.append(Bundle.main.bundleURL)
        directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
        if let arg0 = CommandLine.arguments.first {
            directories.append(URL(fileURLWithPath: arg0).deletingLastPathComponent())
        }
        for dir in directories {
            let candidate = dir.appendingPathComponent("GreenProbe")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }()

    /// Runs `GreenProbe <scenario>` with `environment` added to (or, for
    /// nil values, removed from) this process's environment, and waits for
    /// it to end (at most `limit` seconds, then it is killed).
    static func run(_ scenario: String, environment: [String: String?] = [:],
                    limit: Double = 120) throws -> ProbeOutcome {
        guard let executable else {
            throw TestError("GreenProbe not found next to the test bundle (\(Bundle.main.bundleURL.path))")
        }
        var env = ProcessInfo.processInfo.environment
        // The Swift backtracer would only slow a crashing child down.
        env["SWIFT_BACKTRACE"] = "enable=no"
        env["GREEN_STACK_GUARD"] = nil
        for (k, v) in environment { env[k] = v }

        // Files, not pipes: a child that writes a lot cannot block on a
        // full pipe while we wait for it.
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("green-probe-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("stdout")
        let errURL = dir.appendingPathComponent("stderr")
        guard FileManager.default.createFile(atPath: outURL.path, contents: nil),
              FileManager.default.createFile(atPath: errURL.path, contents: nil) else {
            throw TestError("could not create the probe's output files in \(dir.path)")
        }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)

        let process = Process()
        process.executableURL = executable
        process.arguments = [scenario]
        process.environment = env
        process.standardOutput = out
        process.standardError = err
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        if exited.wait(timeout: .now() + limit) == .timedOut {
            process.terminate()
            _ = exited.wait(timeout: .now() + 10)
            throw TestError("GreenProbe \(scenario) did not end within \(limit) s")
        }
        try out.close()
        try err.close()
        let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return ProbeOutcome(reason: process.terminationReason, status: process.terminationStatus,
                            stdout: stdout, stderr: stderr)
    }
}
