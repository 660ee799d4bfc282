// echo-server: a TCP echo server on greenlets, on one hub or one hub per
// thread (SO_REUSEPORT), for trying the runtime and for green-bench's echo
// figures.
//
//   swift run -c release echo-server --port 9000 [--workers 2] [--work-kib 64]
//
// With --work-kib K every message also costs real CPU work (a hash over K
// KiB) before it is echoed: the load that shows several hubs using several
// cores. It prints "listening on ADDRESS" once ready and serves until
// killed (SIGINT or SIGTERM).
import ArgumentParser
import Glibc
import Green

@main
struct EchoServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "A TCP echo server on greenlets, on one or several hubs.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port (0 picks a free one; see the 'listening on' line).")
    var port: UInt16 = 9000

    @Option(help: "Threads, each with its own hub and SO_REUSEPORT listener.")
    var workers = 1

    @Option(help: "CPU work per message: hash this many KiB before echoing.")
    var workKib = 0

    @Option(help: "Most connections handled at once per hub (default: no limit).")
    var maxConnections: Int?

    func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard workKib >= 0 else { throw ValidationError("--work-kib must not be negative") }
    }

    mutating func run() throws {
        let address = try SocketAddress(ip: host, port: port)
        let workBytes = workKib * 1024
        let handler: @Sendable (Socket, SocketAddress) throws -> Void = { conn, _ in
            try conn.setNoDelay()
            var scratch = [UInt8](repeating: 0, count: Swift.max(workBytes, 1))
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try conn.recv(into: $0) }
                if n == 0 { return }
                if workBytes > 0 {
                    // Real work the optimiser cannot drop: the digest goes
                    // into the scratch buffer that the next message hashes.
                    let digest = fnv1a(scratch, seed: UInt64(buffer[0]))
                    scratch[Int(digest % UInt64(scratch.count))] = UInt8(truncatingIfNeeded: digest)
                }
                try buffer.withUnsafeBytes { try conn.sendAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
        }
        if workers == 1 {
            let server = try StreamServer(on: address, maxConnections: maxConnections, handler: handler)
            print("listening on \(server.address) (1 hub)")
            fflush(nil)
            try server.serveForever()
        } else {
            let servers = try ServerThreads.start(threads: workers, on: address, maxConnections: maxConnections,
                                                  handler: handler)
            print("listening on \(servers.address) (\(workers) hubs)")
            fflush(nil)
            try servers.join()
        }
    }
}

/// FNV-1a over `bytes`, 64-bit.
func fnv1a(_ bytes: [UInt8], seed: UInt64) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
    for b in bytes {
        h ^= UInt64(b)
        h &*= 0x0000_0100_0000_01b3
    }
    return h
}
