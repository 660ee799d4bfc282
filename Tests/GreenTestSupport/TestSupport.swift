import CGreenContext
import Foundation
import Glibc
import Green
import Synchronization
import XCTest

/// Base class of the suite. Every test runs on XCTest's main thread and
/// shares that thread's hub with the others, so each one must leave no
/// greenlet running and no stack in use behind it: checked here.
open class GreenTestCase: XCTestCase {
    private var stacksInUseAtStart = 0

    override open func setUp() {
        super.setUp()
        stacksInUseAtStart = Hub.current.stackStats.inUse
    }

    override open func tearDown() {
        XCTAssertEqual(Hub.current.liveGreenlets, 0, "the test left greenlets running on the shared hub")
        XCTAssertEqual(Hub.current.stackStats.inUse, stacksInUseAtStart, "the test left greenlet stacks in use")
        super.tearDown()
    }
}

/// A suite about time (timeouts, deadlines, sleeps): each test runs on
/// virtual time (`withVirtualTime`), so that its waits take no real time
/// and its timers fire in exactly the order of their deadlines.
open class VirtualTimeTestCase: GreenTestCase {
    override open func invokeTest() {
        withVirtualTime { super.invokeTest() }
    }
}

/// Moves the virtual clock past the short deadlines a test started, as if
/// the thread had been busy: nothing runs meanwhile, and the expired
/// timers fire when the hub next polls. On virtual time only.
public func letDeadlinesPass() throws {
    try Hub.current.advanceVirtualTime(by: 0.03)
}

/// An error with a tag, thrown by test bodies.
public struct TestError: Error, Equatable, CustomStringConvertible {
    public let tag: String
    public init(_ tag: String) { self.tag = tag }
    public var description: String { "TestError(\(tag))" }
}

/// A small seeded generator (SplitMix64) so that "random" tests replay.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Something to hold weakly, to see when a value is released.
public final class Tracked {
    public let tag: Int
    public init(_ tag: Int) { self.tag = tag }
}

/// Kills whatever a test left waiting (at most 5 s), so that the shared
/// hub is clean for the next test.
public func cleanUp(_ greenlets: [AnyGreenlet]) {
    try? killAll(greenlets, timeout: 5)
}

/// Waits, in the calling greenlet, until `condition` holds: checks it
/// after each turn of the hub (`Green.sleep(0.001)`), at most `timeout`
/// seconds, then throws. For conditions no event announces (a count kept
/// by the code under test); every such loop in the suite is bounded so.
public func waitUntil(timeout: Double = 10, _ what: String = "the condition",
               _ condition: () throws -> Bool) throws {
    let hub = Hub.current
    let deadline = hub.nowUpdated() + timeout
    while try !condition() {
        if hub.nowUpdated() > deadline { throw TestError("\(what) did not hold within \(timeout) s") }
        try Green.sleep(0.001)
    }
}

/// Lets every other ready greenlet of this hub run until it blocks: a few
/// turns of `Green.sleep(0)` (the run queue is FIFO), no real time. For a
/// test that must know that a greenlet it spawned is waiting before it
/// goes on; the test then checks that it is (`isStarted && !isReady`).
public func letOthersRun(turns: Int = 3) throws {
    for _ in 0..<turns { try Green.sleep(0) }
}

/// The monotonic clock in seconds, read from the kernel.
public func monotonicNow() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// The process's resident set size in bytes (from /proc/self/statm).
public func residentBytes() -> Int { ProcessMemory.residentBytes() }

// MARK: - The probe (a child process)

/// The analysis tools this test build runs under (`make sanitize`): the
/// few tests whose subject the tool itself changes skip under them.
public enum AnalysisTool {
    public static let mask = green_context_tool_annotations()
    public static var addressSanitizer: Bool { mask & 1 != 0 }
    public static var threadSanitizer: Bool { mask & 2 != 0 }

    /// Skips the test under AddressSanitizer, saying why.
    public static func skipUnderAddressSanitizer(_ why: String) throws {
        if addressSanitizer { throw XCTSkip("under AddressSanitizer: \(why)") }
    }
    /// Skips the test under either sanitizer, saying why.
    public static func skipUnderSanitizers(_ why: String) throws {
        if mask & 3 != 0 { throw XCTSkip("under a sanitizer: \(why)") }
    }
}

/// How a run of the GreenProbe helper ended.
public struct ProbeOutcome {
    public let reason: Process.TerminationReason
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public enum Probe {
    /// The GreenProbe executable: it is built into the same products
    /// directory as the test bundle (.build/<triple>/debug/).
    public static let executable: URL? = builtExecutable(named: "GreenProbe").map { URL(fileURLWithPath: $0) }

    /// Runs `GreenProbe <scenario>` with `environment` added to (or, for
    /// nil values, removed from) this process's environment, and waits for
    /// it to end (at most `limit` seconds, then it is killed).
    public static func run(_ scenario: String, environment: [String: String?] = [:],
                    limit: Double = 120) throws -> ProbeOutcome {
        guard let executable else {
            throw TestError("GreenProbe not found next to the test bundle (\(Bundle.main.bundleURL.path))")
        }
        var env = ProcessInfo.processInfo.environment
        // The Swift backtracer would only slow a crashing child down.
        env["SWIFT_BACKTRACE"] = "enable=no"
        env["GREEN_STACK_GUARD"] = nil
        for (k, v) in environment { env[k] = v }

        // Green's own Subprocess, not Foundation's Process, which is never
        // freed once it ran (LeakSanitizer reports it, and all it holds).
        let child = try Subprocess([executable.path, scenario], environment: env,
                                   stdin: .null, stdout: .pipe, stderr: .pipe)
        let output: (stdout: [UInt8], stderr: [UInt8])
        do {
            output = try withTimeout(limit) { try child.communicate() }
        } catch is TimeoutError {
            child.kill(SIGKILL)
            _ = try child.wait(timeout: 10)
            throw TestError("GreenProbe \(scenario) did not end within \(limit) s")
        }
        let stdout = String(decoding: output.stdout, as: UTF8.self)
        let stderr = String(decoding: output.stderr, as: UTF8.self)
        switch child.status {
        case .exited(let code)?:
            return ProbeOutcome(reason: .exit, status: code, stdout: stdout, stderr: stderr)
        case .signaled(let signal)?:
            return ProbeOutcome(reason: .uncaughtSignal, status: signal, stdout: stdout, stderr: stderr)
        case nil:
            throw TestError("GreenProbe \(scenario) was not reaped")
        }
    }
}

/// A connected pair of Unix stream sockets.
public func connectedSocketPair() throws -> (Socket, Socket) {
    var fds: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
        throw TestError("socketpair: errno \(errno)")
    }
    return (Socket(adopting: fds[0], family: AF_UNIX, type: .stream), Socket(adopting: fds[1], family: AF_UNIX, type: .stream))
}

/// A loopback TCP port nobody listens on: bound, read, let go (another
/// program may bind it next).
public func freeLoopbackPort() throws -> UInt16 {
    let probe = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
    defer { probe.close() }
    return probe.localAddress!.port
}

/// A socket bound to a loopback port and never listening, so every connect
/// to `localAddress` is refused for as long as it stays open. Safer than a
/// port closed again: another test process cannot take it meanwhile, and an
/// ephemeral connect never picks it for itself (a self-connect succeeds).
public func refusingSocket(_ ip: String = "127.0.0.1") throws -> Socket {
    let address = try SocketAddress(ip: ip, port: 0)
    let s = try Socket(family: address.family)
    do {
        try s.bind(to: address)
    } catch {
        s.close()
        throw error
    }
    return s
}

/// Reads with `read` (a `read(into:)`, which returns 0 at the end) through
/// a buffer of `bufferSize` bytes until the end, or until more than
/// `atMost` bytes came; returns what it read.
public func readToTheEnd(bufferSize: Int, atMost limit: Int = .max,
                         _ read: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows -> [UInt8] {
    var got: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: bufferSize)
    while got.count <= limit {
        let n = try buffer.withUnsafeMutableBytes { try read($0) }
        if n == 0 { break }
        got += buffer[..<n]
    }
    return got
}

/// Runs `body` while a ticker greenlet counts ticks, one every `interval`
/// seconds; returns what `body` returned and the ticks counted meanwhile
/// (to show that the hub ran other greenlets while `body` waited).
public func countingTicks<R>(every interval: Double, during body: () throws -> R) throws -> (result: R, ticks: Int) {
    var ticks = 0
    var running = true
    let ticker = spawn {
        while running {
            ticks += 1
            try Green.sleep(interval)
        }
    }
    defer {
        running = false
        _ = try? ticker.join(timeout: 5)
    }
    return (try body(), ticks)
}

/// Runs `body` with the port of a TCP listener that accepts connections and
/// never says a word, and a count of the 10 ms ticks another greenlet made
/// meanwhile (to show a wait on the silent server stalled nobody else).
public func withSilentServer<R>(_ body: (_ port: UInt16, _ ticks: () -> Int) throws -> R) throws -> R {
    let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
    defer { listener.close() }
    var held: [Socket] = []
    defer { for s in held { s.close() } }
    let acceptor = spawn { while true { held.append(try listener.accept().0) } }
    defer { try? acceptor.kill() }
    var ticks = 0
    let ticker = spawn { while true { try Green.sleep(0.01); ticks += 1 } }
    defer { try? ticker.kill() }
    return try body(listener.localAddress!.port, { ticks })
}

/// A `redis-server` (Debian's) a test starts and stops: on a free loopback
/// port by default, with its files (an append-only log, when asked) in a
/// directory of its own, optionally inside a network namespace (`ip netns
/// exec`). `stop()` kills it (SIGKILL: nothing saved on the way out);
/// `start()` again brings it back on the same port with the same files.
public final class RedisServer {
    public static let executable = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    public let host: String
    public let port: UInt16
    public let directory: String
    private let arguments: [String]
    private let namespace: String?
    private var process: Subprocess?

    public var url: String { "redis://\(host):\(port)/0" }

    public init(host: String = "127.0.0.1", port: UInt16? = nil, appendOnly: Bool = false, namespace: String? = nil,
         extra: [String] = []) throws {
        guard let exe = RedisServer.executable else { throw XCTSkip("redis-server is not installed") }
        self.host = host
        self.port = try port ?? freeLoopbackPort()
        self.namespace = namespace
        var template = Array("/tmp/green-redis-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template) else { throw TestError("mkdtemp: errno \(errno)") }
        directory = String(cString: dir)
        // Every write reaches the log before its reply is sent: a server
        // killed and restarted has every write it acknowledged.
        let persistence = appendOnly ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]
        arguments = [exe, "--port", String(self.port), "--bind", host, "--save", "", "--dir", directory,
                     "--daemonize", "no", "--protected-mode", "no"] + persistence + extra
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts the server and waits (at most 10 s) until it answers.
    public func start() throws {
        let prefix = namespace.map { ["ip", "netns", "exec", $0] } ?? []
        let server = try Subprocess(prefix + arguments, stdin: .null, stdout: .null, stderr: .null)
        process = server
        try withTimeout(10) {
            while true {
                if try server.wait(timeout: 0.02) != nil { throw TestError("redis-server exited: \(arguments)") }
                if let namespace {
                    let ping = try Subprocess(["ip", "netns", "exec", namespace, "redis-cli", "-h", host, "-p",
                                               String(port), "ping"], stdin: .null, stdout: .pipe, stderr: .null)
                    if String(decoding: try ping.communicate().stdout, as: UTF8.self).hasPrefix("PONG") { return }
                } else if let s = try? Socket.connect(host: host, port: port, timeout: 1) {
                    s.close()
                    return
                }
            }
        }
    }

    public func stop() {
        guard let p = process else { return }
        p.kill(SIGKILL)
        _ = try? p.wait(timeout: 5)
        process = nil
    }
}

/// Runs `body` with a new empty directory under /tmp, removed afterwards
/// with whatever `body` left in it.
public func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    var template = Array("/tmp/swift-green-test-XXXXXX".utf8CString)
    guard let dir = mkdtemp(&template) else { throw TestError("mkdtemp: errno \(errno)") }
    let path = String(cString: dir)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Sends `raw` to a loopback port in one write and reads the answer until
/// the peer closes or `marker` is seen (at most 10 s), as text.
public func rawExchange(_ port: UInt16, _ raw: [UInt8], until marker: String? = nil) throws -> String {
    let s = try Socket.connect(host: "127.0.0.1", port: port, timeout: 5)
    defer { s.close() }
    try s.sendAll(raw)
    var got: [UInt8] = []
    try withTimeout(10) {
        while true {
            let chunk = try s.recv(timeout: 5)
            if chunk.isEmpty { break }
            got += chunk
            if let marker, String(decoding: got, as: UTF8.self).contains(marker) { break }
        }
    }
    return String(decoding: got, as: UTF8.self)
}

/// Runs `body` on a new OS thread (its own hub) and returns its result, or
/// its error, as text; waits at most `limit` seconds for it.
public func onOwnThread<T>(limit: Double = 15, _ body: @escaping @Sendable () throws -> T) -> String {
    let outcome = Shared<String>("the thread did not finish within \(limit) s")
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        let text: String
        do {
            text = "\(try body())"
        } catch {
            text = "error: \(error)"
        }
        outcome.set(text)
        done.signal()
    }
    thread.stackSize = 8 << 20
    thread.start()
    _ = done.wait(timeout: .now() + limit)
    return outcome.get()
}

/// Runs `body` with the handle of a hub that runs on a thread of its own,
/// named `name`; stops that hub afterwards (and waits at most 10 s).
public func withAHubThread(named name: String, _ body: (HubHandle) throws -> Void) throws {
    let hub = try HubThread.start(name: name)
    defer { hub.stop(); _ = try? hub.join(timeout: 10) }
    try body(hub.handle)
}

/// Waits on an event that nobody can set, as the last thing the hub has
/// to do: says "deadlock reported" where the hub reports that
/// (GreenError.wouldBlockForever), "the wait returned" where it returns.
public func waitForAnEventNobodySets() throws -> String {
    do {
        try Event().wait()
        return "the wait returned"
    } catch GreenError.wouldBlockForever {
        return "deadlock reported"
    }
}

/// A value shared with other threads.
public final class Shared<Value: Sendable>: Sendable {
    private let state: Locked<Value>
    public init(_ value: Value) { state = Locked(value) }
    public func get() -> Value { state.withLock { $0 } }
    public func set(_ value: Value) { state.withLock { $0 = value } }
    public func update(_ body: (inout Value) -> Void) { state.withLock { body(&$0) } }
}

/// An executable of this package built into the same products directory
/// as the tests (`swift test` builds the ones the test targets name).
public func builtExecutable(named name: String) -> String? {
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
        let candidate = dir.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}
