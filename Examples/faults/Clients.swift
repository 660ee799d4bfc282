// The client side of the server fault runs, in a child process (see
// ServerFaults.swift). It prints progress lines and, last, one line
// "result key=value ...".
import ArgumentParser
import Foundation
import Glibc
import Green
import GreenHTTP

struct Client: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client", abstract: "The clients of a server fault run (started by the run itself).",
        shouldDisplay: false,
        subcommands: [HoldConnections.self, SlowlorisClients.self, StormClients.self, ResetClients.self])
}

/// What every client mode shares: the server's port, and normal clients.
struct ClientTarget: ParsableArguments {
    @Option var port: UInt16

    var address: SocketAddress { try! SocketAddress(ip: "127.0.0.1", port: port) }

    /// A client mode's start: this process may open as many descriptors
    /// as its hard limit allows; the server's address.
    func start() -> SocketAddress {
        setDescriptorLimit(nil)
        return address
    }
}

func emit(_ line: String) {
    print(line)
    fflush(nil)
}

struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Reads one HTTP response on `s` (to the end of the stream when
/// `untilClosed`), and checks it is 200 with `expected` as its body.
func readResponse(_ s: Socket, expected: [UInt8], untilClosed: Bool) throws {
    var bytes: [UInt8] = []
    while true {
        let chunk = try s.recv(timeout: 10)
        if chunk.isEmpty {
            if bytes.isEmpty { throw ClientError("connection closed before any response") }
            break
        }
        bytes += chunk
        if !untilClosed, let responses = try? HTTPParsing.responses(in: bytes), !responses.isEmpty { break }
    }
    let responses = try HTTPParsing.responses(in: bytes)
    guard let r = responses.first else { throw ClientError("no complete response in \(bytes.count) bytes") }
    guard r.status == 200, r.body == expected else {
        throw ClientError("status \(r.status) with a \(r.body.count)-byte body")
    }
}

/// One request on a new connection, answered and closed; its seconds.
func normalRequest(_ address: SocketAddress) throws -> Double {
    let started = Hub.current.nowUpdated()
    let s = try Socket(family: AF_INET)
    defer { s.close() }
    try s.connect(to: address, timeout: 10)
    try s.sendAll("GET / HTTP/1.1\r\nHost: faults\r\nConnection: close\r\n\r\n", timeout: 10)
    try readResponse(s, expected: hello, untilClosed: true)
    return Hub.current.nowUpdated() - started
}

/// Normal clients: each sends a request every `period` seconds on a new
/// connection until `deadline`; their latencies and errors.
final class NormalClients {
    private(set) var latencies: [Double] = []
    private(set) var errors = 0
    private(set) var firstError: String?
    private var workers: [Greenlet<Void>] = []

    init(count: Int, address: SocketAddress, until deadline: Double, period: Double = 0.01) {
        for _ in 0..<count {
            workers.append(spawn { [self] in
                while Hub.current.nowUpdated() < deadline {
                    do {
                        latencies.append(try normalRequest(address))
                    } catch {
                        errors += 1
                        if firstError == nil { firstError = "\(error)" }
                    }
                    try Green.sleep(period)
                }
            })
        }
    }

    func join() throws {
        for w in workers { try w.get() }
    }

    /// The result fields for them.
    var fields: [(String, String)] {
        let sorted = latencies.sorted()
        func ms(_ q: Double) -> String {
            guard !sorted.isEmpty else { return "nan" }
            return String(format: "%.2f", sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] * 1000)
        }
        return [("requests", String(latencies.count)), ("errors", String(errors)), ("p50_ms", ms(0.5)),
                ("p99_ms", ms(0.99)), ("max_ms", sorted.last.map { String(format: "%.2f", $0 * 1000) } ?? "nan"),
                ("first_error", firstError ?? "none")]
    }
}

func emitResult(_ fields: [(String, String)]) {
    emit("result " + fields.map { "\($0.0)=\($0.1.replacingOccurrences(of: " ", with: "_"))" }.joined(separator: " "))
}

/// Opens `count` connections (at most `connecting` being set up at once),
/// sends a request on each and reads its answer, holds them all until the
/// parent says "release" on stdin, then closes them.
struct HoldConnections: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "connections")

    @OptionGroup var target: ClientTarget
    @Option var count = 10_000
    @Option var connecting = 256

    func run() throws {
        let address = target.start()
        let started = Hub.current.nowUpdated()
        let setUp = Semaphore(value: connecting)
        let release = Event()
        var answered = 0
        var failed = 0
        var firstError: String?
        let allIn = Event()
        var holders: [Greenlet<Void>] = []
        holders.reserveCapacity(count)
        for _ in 0..<count {
            holders.append(spawn {
                let s = try Socket(family: AF_INET)
                defer { s.close() }
                do {
                    try setUp.withPermit {
                        try s.connect(to: address, timeout: 10)
                        try s.sendAll("GET / HTTP/1.1\r\nHost: faults\r\n\r\n", timeout: 10)
                        try readResponse(s, expected: hello, untilClosed: false)
                    }
                    answered += 1
                } catch {
                    failed += 1
                    if firstError == nil { firstError = "\(error)" }
                }
                if answered + failed == count { allIn.set() }
                try release.wait()
            })
        }
        try allIn.wait()
        let seconds = Hub.current.nowUpdated() - started
        emit("holding \(answered)")
        let stdin = Socket(adopting: 0, family: AF_UNIX, type: .stream)
        _ = try stdin.recv(timeout: 60)   // "release", or the end of stdin
        release.set()
        for h in holders { try h.get() }
        emitResult([("answered", String(answered)), ("failed", String(failed)),
                    ("seconds", String(format: "%.2f", seconds)), ("first_error", firstError ?? "none")])
    }
}

/// `slow` connections sending a request's headers a byte a second (each
/// reconnecting when the server cuts it), and normal clients meanwhile.
struct SlowlorisClients: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "slowloris")

    @OptionGroup var target: ClientTarget
    @Option var slow = 1_000
    @Option var seconds = 6.0
    @Option var clients = 4

    func run() throws {
        let address = target.start()
        let request = Array("GET / HTTP/1.1\r\nHost: faults\r\nUser-Agent: slowloris\r\nX-Padding: \(String(repeating: "a", count: 200))\r\n\r\n".utf8)
        var open = 0
        var cut = 0
        var connectErrors = 0
        let opened = Event()
        let deadline = Hub.current.nowUpdated() + seconds
        var slowOnes: [Greenlet<Void>] = []
        for _ in 0..<slow {
            slowOnes.append(spawn {
                var first = true
                while Hub.current.nowUpdated() < deadline {
                    let s = try Socket(family: AF_INET)
                    defer { s.close() }
                    do {
                        try s.connect(to: address, timeout: 10)
                    } catch {
                        connectErrors += 1
                        try Green.sleep(0.1)
                        continue
                    }
                    open += 1
                    if first {
                        first = false
                        if open == slow { opened.set() }
                    }
                    defer { open -= 1 }
                    // A byte, then a second's wait for the server (which
                    // answers only to cut the connection: 408).
                    var sent = 0
                    var wasCut = false
                    while sent < request.count && Hub.current.nowUpdated() < deadline {
                        do {
                            try s.sendAll(Array(request[sent..<sent + 1]), timeout: 10)
                            sent += 1
                            let answer = try s.recv(timeout: min(1.0, max(0.001, deadline - Hub.current.nowUpdated())))
                            _ = answer
                            wasCut = true   // a 408, or the end of the stream
                            break
                        } catch let e as SocketError {
                            if case .timedOut = e.reason { continue }
                            wasCut = true
                            break
                        }
                    }
                    if wasCut { cut += 1 }
                }
            })
        }
        // Every slow connection is open before normal clients start.
        _ = try opened.wait(timeout: 30)
        emit("slow connections open: \(open)")
        let normal = NormalClients(count: clients, address: address, until: deadline)
        // How many slow connections are open while normal clients run.
        var samples: [Int] = []
        while Hub.current.nowUpdated() < deadline - 0.1 {
            samples.append(open)
            try Green.sleep(0.1)
        }
        try normal.join()
        for g in slowOnes { try g.get() }
        let mean = samples.isEmpty ? 0 : samples.reduce(0, +) / samples.count
        emitResult([("slow_open_mean", String(mean)), ("slow_open_min", String(samples.min() ?? 0)), ("slow_cut", String(cut)),
                    ("slow_connect_errors", String(connectErrors))] + normal.fields)
    }
}

/// `storm` keep-alive connections, idle after one request (each
/// reconnecting as soon as the server closes it), and normal clients
/// meanwhile.
struct StormClients: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "storm")

    @OptionGroup var target: ClientTarget
    @Option var storm = 1_000
    @Option var seconds = 5.0
    @Option var clients = 4

    func run() throws {
        let address = target.start()
        var connects = 0
        var closed = 0
        let deadline = Hub.current.nowUpdated() + seconds
        var stormers: [Greenlet<Void>] = []
        for _ in 0..<storm {
            stormers.append(spawn {
                while Hub.current.nowUpdated() < deadline {
                    let s = try Socket(family: AF_INET)
                    defer { s.close() }
                    do {
                        try s.connect(to: address, timeout: max(0.001, deadline - Hub.current.nowUpdated()))
                        connects += 1
                        // One request on a keep-alive connection (so that
                        // it gets past TCP_DEFER_ACCEPT, as a real client
                        // does), then idle until the server lets go (or
                        // the storm ends).
                        try s.sendAll("GET / HTTP/1.1\r\nHost: faults\r\n\r\n", timeout: 10)
                        try readResponse(s, expected: hello, untilClosed: false)
                        let got = try s.recv(timeout: max(0.001, deadline - Hub.current.nowUpdated()))
                        if got.isEmpty { closed += 1 }
                    } catch is ClientError {
                        closed += 1   // closed before its answer came
                    } catch let e as SocketError {
                        if case .timedOut = e.reason { continue }
                        closed += 1   // reset
                    }
                }
            })
        }
        // The storm builds up first.
        try Green.sleep(min(0.5, seconds / 4))
        let normal = NormalClients(count: clients, address: address, until: deadline)
        try normal.join()
        for g in stormers { try g.get() }
        emitResult([("storm_connects", String(connects)), ("storm_closed", String(closed))] + normal.fields)
    }
}

/// Connections reset by the client (SO_LINGER 0, then close): half with a
/// request half sent, half while a 1 MiB response is coming in. Then one
/// normal request.
struct ResetClients: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resets")

    @OptionGroup var target: ClientTarget
    @Option var count = 2_000
    @Option var concurrency = 50

    func run() throws {
        let address = target.start()
        var midRequest = 0
        var midResponse = 0
        var errors = 0
        var firstError: String?
        let pool = Pool(size: concurrency)
        for i in 0..<count {
            try pool.spawn {
                let s = try Socket(family: AF_INET)
                defer { s.close() }
                do {
                    try s.connect(to: address, timeout: 10)
                    if i % 2 == 0 {
                        try s.sendAll("GET / HTTP/1.1\r\nHost: faults\r\nX-Cut: here", timeout: 10)
                    } else {
                        try s.sendAll("GET /big HTTP/1.1\r\nHost: faults\r\n\r\n", timeout: 10)
                        var got = 0
                        while got < 64 * 1024 {
                            let chunk = try s.recv(timeout: 10)
                            if chunk.isEmpty { throw ClientError("the 1 MiB response ended after \(got) bytes") }
                            got += chunk.count
                        }
                    }
                    // Close with a reset (RST) instead of a FIN.
                    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                    setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                    if i % 2 == 0 { midRequest += 1 } else { midResponse += 1 }
                } catch {
                    errors += 1
                    if firstError == nil { firstError = "\(error)" }
                }
            }
        }
        _ = try pool.join()
        var after = "error"
        do {
            _ = try normalRequest(address)
            after = "200"
        } catch {
            after = "\(error)"
        }
        emitResult([("reset_mid_request", String(midRequest)), ("reset_mid_response", String(midResponse)),
                    ("errors", String(errors)), ("first_error", firstError ?? "none"), ("after", after)])
    }
}
