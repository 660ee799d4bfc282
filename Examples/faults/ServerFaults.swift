// Fault runs against an HTTP server (http-hello's: "Hello, World!" at /,
// and 1 MiB at /big for responses long enough to be cut). The server runs
// in this process; its clients run in a child (this program again, `client`
// subcommand), so that each side has its own descriptor table, as a real
// server and its clients would. After each run the server's process must be
// back at its baseline: open fds, stacks in use, resident memory.
import ArgumentParser
import Foundation
import Glibc
import Green
import GreenHTTP
import Synchronization

let hello = Array("Hello, World!".utf8)
let bigBody = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)

/// Options shared by the server-side runs.
struct ServerRunOptions: ParsableArguments {
    @Option(help: "Seconds a client has to finish its request's headers (408 after).")
    var headerTimeout = 10.0

    @Option(help: "Seconds an idle keep-alive connection is kept.")
    var idleTimeout = 60.0
}

/// Sets this process's soft limit on open files (at most the hard limit);
/// returns the limit now in force.
@discardableResult
func setDescriptorLimit(_ wanted: Int?) -> Int {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    let target = wanted.map { rlim_t(min(UInt64($0), UInt64(limit.rlim_max))) } ?? limit.rlim_max
    limit.rlim_cur = target
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return Int(limit.rlim_cur)
}

/// A run: the server, a warm-up, the baseline, the client child, the check.
struct ServerFault {
    let name: String
    let options: ServerRunOptions
    /// Soft descriptor limit for the server's process (nil: the hard limit).
    var descriptorLimit: Int? = nil

    /// Runs the child with `clientArguments`; `onLine` sees each line it
    /// prints (and may answer on its stdin). Returns the child's
    /// "result" line's fields.
    func run(clientArguments: [String],
             onLine: (String, HTTPServer, Socket) throws -> Void = { _, _, _ in }) throws -> [String: String] {
        let limit = setDescriptorLimit(descriptorLimit)
        UnhandledErrorReporter.setHandler { name, error in
            ErrorLog.shared.append("\(name): \(error)")
        }
        defer { UnhandledErrorReporter.setHandler(nil) }

        var options = HTTPServer.Options()
        options.headerTimeout = self.options.headerTimeout
        options.idleTimeout = self.options.idleTimeout
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), options: options) { request in
            switch request.path {
            case "/": return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: hello)
            case "/big": return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: bigBody)
            default: return HTTPResponse(status: 404, text: "not found\n")
            }
        }
        server.start()
        defer { try? server.stop(timeout: 5) }
        let port = String(server.address.port)
        print("\(name): server on \(server.address), descriptor limit \(limit)")

        // Warm-up: as many connections at once as the stack pool keeps
        // warm, so that the baseline holds the pool's resident stacks.
        let warmUp = min(1100, limit - 64)
        _ = try runChild(["connections", "--port", port, "--count", String(warmUp)], server: server) { _, _, _ in }
        try waitForConnections(server, toReach: 0)
        let before = Baseline.now()

        let result = try runChild(clientArguments + ["--port", port], server: server, onLine: onLine)
        try waitForConnections(server, toReach: 0)
        let serverErrors = ErrorLog.shared.take()
        if let closed = server.idleConnectionsClosed, closed > 0 {
            print("\(name): the server closed \(closed) idle connections to go on accepting")
        }
        try before.check(against: Baseline.now(), slack: 8 << 20, what: name)
        guard serverErrors.isEmpty else {
            throw ValidationError("\(name): \(serverErrors.count) connection handlers failed, first: \(serverErrors[0])")
        }
        return result
    }

    /// Waits (at most 10 s) until the server handles `n` connections.
    private func waitForConnections(_ server: HTTPServer, toReach n: Int) throws {
        let deadline = Hub.current.nowUpdated() + 10
        while server.connectionCount != n {
            guard Hub.current.nowUpdated() < deadline else {
                throw ValidationError("\(name): the server still has \(server.connectionCount ?? -1) connections, not \(n)")
            }
            try Green.sleep(0.005)
        }
    }

    private func runChild(_ arguments: [String], server: HTTPServer,
                          onLine: (String, HTTPServer, Socket) throws -> Void) throws -> [String: String] {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let child = try Subprocess([exe, "client"] + arguments, stdin: .pipe, stdout: .pipe, stderr: .inherit)
        defer {
            child.stdin?.close()
            child.stdout?.close()
            if child.status == nil {
                child.kill(SIGKILL)
                _ = try? child.wait()
            }
        }
        var result: [String: String]?
        var pending: [UInt8] = []
        reading: while true {
            let chunk = try child.stdout!.recv(timeout: 600)
            if chunk.isEmpty { break }
            pending += chunk
            while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                if line.hasPrefix("result ") {
                    result = Dictionary(line.dropFirst(7).split(separator: " ").compactMap { field in
                        let kv = field.split(separator: "=", maxSplits: 1)
                        return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
                    }, uniquingKeysWith: { $1 })
                    break reading
                }
                try onLine(line, server, child.stdin!)
                // A child holding its connections waits for this.
                if line.hasPrefix("holding ") { try child.stdin!.sendAll("release\n") }
            }
        }
        child.stdin?.close()
        let status = try child.wait(timeout: 30)
        guard status == .exited(0), let result else {
            throw ValidationError("\(name): the client process \(status.map { "\($0)" } ?? "did not exit") without a result")
        }
        return result
    }
}

/// Unhandled greenlet errors, collected (the reporter may run on any thread).
final class ErrorLog: Sendable {
    static let shared = ErrorLog()
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    func take() -> [String] { lines.withLock { all in defer { all.removeAll() }; return all } }
}

/// Latency figures of the normal clients, as the child reports them.
func checkLatency(_ name: String, _ r: [String: String], under limitMs: Double) throws {
    let requests = Int(r["requests"] ?? "") ?? 0
    let errors = Int(r["errors"] ?? "") ?? -1
    let p50 = Double(r["p50_ms"] ?? "") ?? .infinity
    let p99 = Double(r["p99_ms"] ?? "") ?? .infinity
    print(String(format: "%@: normal clients: %d requests, %d errors, p50 %.2f ms, p99 %.2f ms, max %@ ms",
                 name, requests, errors, p50, p99, r["max_ms"] ?? "?"))
    if requests == 0 || errors != 0 {
        throw ValidationError("\(name): normal clients got \(errors) errors in \(requests) requests (first: \(r["first_error"] ?? "none"))")
    }
    if p99 >= limitMs {
        throw ValidationError(String(format: "%@: normal clients' p99 latency %.1f ms is not under %.0f ms", name, p99, limitMs))
    }
}

struct HTTPConnections: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-connections",
        abstract: "Connections held open at once to an HTTP server, each answered; then all closed.")

    @Option(help: "Connections open at once.")
    var count = 10_000

    @OptionGroup var server: ServerRunOptions

    func run() throws {
        let fault = ServerFault(name: "http-connections", options: server)
        var peak = 0
        let r = try fault.run(clientArguments: ["connections", "--count", String(count)]) { line, server, stdin in
            // The child holds every connection until told to let go: the
            // server must then be handling all of them.
            if line.hasPrefix("holding ") { peak = server.connectionCount ?? 0 }
        }
        let answered = Int(r["answered"] ?? "") ?? 0
        print("http-connections: \(answered) of \(count) answered, \(peak) open at once on the server, "
              + "connected and answered in \(r["seconds"] ?? "?") s")
        guard answered == count, peak >= count else {
            throw ValidationError("http-connections: \(answered) answered, \(peak) open at once; wanted \(count) (\(r["first_error"] ?? ""))")
        }
    }
}

struct Slowloris: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slowloris",
        abstract: "Connections sending their headers a byte a second, while normal clients must be answered fast.")

    @Option(help: "Slow connections (each reconnects when the server cuts it).")
    var slow = 1_000

    @Option(help: "Seconds the attack lasts.")
    var seconds = 6.0

    @Option(help: "Normal clients, each sending a request every 10 ms on a new connection.")
    var clients = 4

    @Option(help: "Normal clients' p99 latency must stay under this (ms).")
    var p99LimitMs = 100.0

    @OptionGroup var server: ServerRunOptions

    func run() throws {
        let fault = ServerFault(name: "slowloris", options: server)
        let r = try fault.run(clientArguments: ["slowloris", "--slow", String(slow), "--seconds", String(seconds),
                                                "--clients", String(clients)])
        print("slowloris: slow connections open while normal clients ran: \(r["slow_open_mean"] ?? "?") on average, "
              + "\(r["slow_open_min"] ?? "?") at least; \(r["slow_cut"] ?? "?") cut by the server "
              + "(408 after \(server.headerTimeout) s) and reopened")
        try checkLatency("slowloris", r, under: p99LimitMs)
    }
}

struct FDStorm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fd-storm",
        abstract: "More idle keep-alive connections than the server has descriptors, while normal clients must be answered fast.")

    @Option(help: "The server's limit on open files.")
    var fdLimit = 512

    @Option(help: "Keep-alive connections, idle after one request, the storm keeps trying to hold (each reconnects when closed).")
    var storm = 768

    @Option(help: "Seconds the storm lasts.")
    var seconds = 5.0

    @Option(help: "Normal clients, each sending a request every 10 ms on a new connection.")
    var clients = 4

    @Option(help: "Normal clients' p99 latency must stay under this (ms), in the median round.")
    var p99LimitMs = 100.0

    @Option(help: "Storms run one after another; every round must be free of errors and leaks, and the median round's p99 under the limit (one round on a busy machine proves nothing).")
    var rounds = 1

    @OptionGroup var server: ServerRunOptions

    func run() throws {
        var p99s: [Double] = []
        for round in 1...max(1, rounds) {
            var fault = ServerFault(name: "fd-storm", options: server)
            fault.descriptorLimit = fdLimit
            let r = try fault.run(clientArguments: ["storm", "--storm", String(storm), "--seconds", String(seconds),
                                                    "--clients", String(clients)])
            print("fd-storm: round \(round): storm connections made \(r["storm_connects"] ?? "?"), closed by the server \(r["storm_closed"] ?? "?")")
            try checkLatency("fd-storm", r, under: .infinity)
            guard (Int(r["storm_closed"] ?? "") ?? 0) > 0 else {
                throw ValidationError("fd-storm: the server never ran out of descriptors (raise --storm or lower --fd-limit)")
            }
            p99s.append(Double(r["p99_ms"] ?? "") ?? .infinity)
        }
        let median = p99s.sorted()[p99s.count / 2]
        print(String(format: "fd-storm: p99 of the median round %.1f ms (rounds: %@)", median,
                     p99s.map { String(format: "%.1f", $0) }.joined(separator: ", ")))
        if median >= p99LimitMs {
            throw ValidationError(String(format: "fd-storm: normal clients' p99 latency %.1f ms (median of %d rounds) is not under %.0f ms",
                                         median, p99s.count, p99LimitMs))
        }
    }
}

struct Resets: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resets",
        abstract: "Clients that reset their connections mid-request and mid-response (a 1 MiB body).")

    @Option(help: "Connections reset (half mid-request, half mid-response).")
    var count = 2_000

    @Option(help: "Connections at once.")
    var concurrency = 50

    @OptionGroup var server: ServerRunOptions

    func run() throws {
        let fault = ServerFault(name: "resets", options: server)
        let r = try fault.run(clientArguments: ["resets", "--count", String(count), "--concurrency", String(concurrency)])
        print("resets: \(r["reset_mid_request"] ?? "?") reset mid-request, \(r["reset_mid_response"] ?? "?") mid-response, "
              + "then a normal request: \(r["after"] ?? "?")")
        guard r["after"] == "200", Int(r["errors"] ?? "") == 0 else {
            throw ValidationError("resets: client errors \(r["errors"] ?? "?") (first: \(r["first_error"] ?? "none")), "
                                  + "request after: \(r["after"] ?? "none")")
        }
    }
}
