// idle-connections: a server holding a large number of idle TCP
// connections over loopback, and what each costs it in memory.
//
//   swift run -c release idle-connections --count 10000 --stack-mode compact
//   swift run -c release idle-connections --count 10000 --stack-mode dedicated
//
// The server (this process) accepts connections and parks one greenlet per
// connection in a read, as a server of mostly idle clients (chat, push,
// keep-alive) does; the clients are a child process (this program again)
// that opens them all and holds them. Once all are in, it prints the
// server's RSS growth per connection, then lets them go. More connections
// than the open-file limit allows need a higher limit: as root it raises
// its own (and the child's) hard limit; clients bind to several loopback
// source addresses (127.0.0.2, .3, ...) when one would run out of ports.
import ArgumentParser
import Foundation
import Glibc
import Green

@main
struct IdleConnectionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle-connections",
        abstract: "Hold many idle connections; report the server's memory per connection.",
        subcommands: [Serve.self, Clients.self], defaultSubcommand: Serve.self)
}

/// Raises this process's open-file limit to `wanted` (the hard limit too,
/// when root); returns the soft limit now.
@discardableResult
func raiseDescriptorLimit(to wanted: Int) -> Int {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if Int(limit.rlim_max) < wanted {
        var higher = limit
        higher.rlim_max = rlim_t(wanted)
        higher.rlim_cur = rlim_t(wanted)
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &higher) == 0 { return wanted }
    }
    limit.rlim_cur = min(limit.rlim_max, rlim_t(max(wanted, Int(limit.rlim_cur))))
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return Int(limit.rlim_cur)
}

func residentBytes() -> Int { ProcessMemory.residentBytes() }

func trimMalloc() { ProcessMemory.trimMalloc() }

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "The server (the default).")

    @Option(help: "Idle connections to hold.")
    var count = 10_000

    @Option(help: "How connection greenlets keep their stacks: dedicated or compact.")
    var stackMode = "compact"

    func validate() throws {
        guard ["dedicated", "compact"].contains(stackMode) else {
            throw ValidationError("--stack-mode is dedicated or compact, not \(stackMode)")
        }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        let mode: StackMode = stackMode == "compact" ? .compact : .dedicated
        let limit = raiseDescriptorLimit(to: count + 1024)
        guard limit >= count + 64 else {
            throw ValidationError("the open-file limit is \(limit), too low for \(count) connections: "
                                  + "run as root, or raise it (ulimit -Hn)")
        }
        var parked = 0
        let allIn = Event()
        let server = try StreamServer(on: SocketAddress(ip: "127.0.0.1", port: 0), backlog: 4096,
                                      stackMode: mode) { conn, _ in
            parked += 1
            if parked == count { allIn.set() }
            defer { parked -= 1 }
            // Idle until the client goes: a read that waits, into a small
            // buffer on the stack (recv() would hold a 64 KiB array while
            // it waits: that, not the greenlet, would be the cost).
            try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buffer in
                while try conn.recv(into: UnsafeMutableRawBufferPointer(buffer)) > 0 {}
            }
        }
        server.start()
        try Green.sleep(0)
        trimMalloc()
        let before = residentBytes()

        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let child = try Subprocess([exe, "clients", "--port", String(server.address.port), "--count", String(count)],
                                   stdin: .pipe, stdout: .pipe, stderr: .inherit)
        let started = Hub.current.nowUpdated()
        guard try allIn.wait(timeout: 120) else {
            child.kill(SIGKILL)
            throw ValidationError("only \(parked) of \(count) connections came in within 120 s")
        }
        let seconds = Hub.current.nowUpdated() - started
        trimMalloc()
        let after = residentBytes()
        let compact = Hub.current.compactStats
        print(String(format: "%d idle connections (%@ stacks) in %.2f s; server RSS %.1f -> %.1f MiB: %.0f bytes per connection",
                     count, stackMode, seconds, Double(before) / 1_048_576, Double(after) / 1_048_576,
                     Double(after - before) / Double(count)))
        if mode == .compact {
            let images = server.handlers.greenlets.map(\.savedStackBytes)
            let mean = images.isEmpty ? 0 : images.reduce(0, +) / images.count
            print("  each parked connection's stack image: \(mean) bytes on average (\(compact.saves) saves so far)")
        }
        fflush(nil)
        child.stdin?.close()   // the clients let go
        _ = try child.communicate()
        try server.stop(timeout: 10)
    }
}

struct Clients: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clients", abstract: "Open and hold the connections (started by serve).", shouldDisplay: false)

    @Option var port: UInt16
    @Option var count: Int

    func run() throws {
        raiseDescriptorLimit(to: count + 1024)
        let perSource = 25_000   // of the 28,232 ephemeral ports per address pair
        let setUp = Semaphore(value: 512)
        var open: [Socket] = []
        open.reserveCapacity(count)
        var failures = 0
        var firstError: String?
        let group = Group()
        for i in 0..<count {
            try group.spawn {
                try setUp.withPermit {
                    let s = try Socket(family: AF_INET)
                    do {
                        if count > perSource {
                            try s.bind(to: SocketAddress(ip: "127.0.0.\(2 + i / perSource)", port: 0))
                        }
                        try s.connect(to: SocketAddress(ip: "127.0.0.1", port: port), timeout: 30)
                        open.append(s)
                    } catch {
                        s.close()
                        failures += 1
                        if firstError == nil { firstError = "\(error)" }
                    }
                }
            }
        }
        try group.join()
        if failures > 0 {
            FileHandle.standardError.write(Data("idle-connections clients: \(failures) connects failed, first: \(firstError ?? "")\n".utf8))
        }
        // Hold them until the server closes our stdin.
        let stdin = Socket(adopting: 0, family: AF_UNIX, type: .stream)
        while try !stdin.recv().isEmpty {}
        for s in open { s.close() }
    }
}
