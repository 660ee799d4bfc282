// echo-load: the load client for echo servers (ours and the peers'):
// N connections, each sending a fixed-size message and waiting for it to
// come back, as fast as it can, for a fixed time. Prints round trips per
// second (one JSON object with --json).
//
//   swift run -c release echo-load --port 9000 [--connections 100]
//                                  [--size 64] [--seconds 5] [--threads 1]
import ArgumentParser
import Glibc
import Green
import Synchronization

@main
struct EchoLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-load",
        abstract: "Measure an echo server's round trips per second.")

    @Option(help: "Server address.")
    var host = "127.0.0.1"

    @Option(help: "Server port.")
    var port: UInt16

    @Option(help: "Concurrent connections.")
    var connections = 100

    @Option(help: "Bytes per message.")
    var size = 64

    @Option(help: "Seconds to measure (after a short warm-up).")
    var seconds = 5.0

    @Option(help: "Client threads (each with its own hub), sharing the connections.")
    var threads = 1

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard connections >= 1, size >= 1, seconds > 0, threads >= 1 else {
            throw ValidationError("connections, size, threads must be at least 1 and seconds positive")
        }
    }

    mutating func run() throws {
        let counter = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let address = try SocketAddress(ip: host, port: port)
        let (size, seconds, connections, threads) = (self.size, self.seconds, self.connections, self.threads)
        let warmUp = min(0.5, seconds / 5)
        let hubs = try (0..<threads).map { i in try HubThread.start(name: "load-\(i)") }
        let done = (0..<threads).map { _ in AsyncResult<Bool>() }
        let measuring = Atomic<Bool>(false)
        let stop = Atomic<Bool>(false)
        for (t, hub) in hubs.enumerated() {
            let mine = connections / threads + (t < connections % threads ? 1 : 0)
            hub.handle.spawn {
                let group = Group()
                for _ in 0..<mine {
                    try group.spawn {
                        let s = try Socket(family: address.family)
                        defer { s.close() }
                        try s.connect(to: address, timeout: 10)
                        try s.setNoDelay()
                        let message = [UInt8](repeating: 0x61, count: size)
                        var buffer = [UInt8](repeating: 0, count: size)
                        while !stop.load(ordering: .relaxed) {
                            try s.sendAll(message)
                            var got = 0
                            while got < size {
                                let n = try buffer.withUnsafeMutableBytes {
                                    try s.recv(into: UnsafeMutableRawBufferPointer(rebasing: $0[got...]), timeout: 10)
                                }
                                if n == 0 { throw SocketError(operation: "recv", reason: .closed, address: address) }
                                got += n
                            }
                            if measuring.load(ordering: .relaxed) { counter.wrappingAdd(1, ordering: .relaxed) }
                        }
                    }
                }
                let finished = try group.join(timeout: seconds + warmUp + 30)
                if !finished { try group.kill() }
                for g in group.greenlets where g.error != nil { failures.wrappingAdd(1, ordering: .relaxed) }
                done[t].set(true)
            }
        }
        try Green.sleep(warmUp)
        measuring.store(true, ordering: .relaxed)
        let t0 = Hub.current.nowUpdated()
        try Green.sleep(seconds)
        let count = counter.load(ordering: .relaxed)
        let elapsed = Hub.current.nowUpdated() - t0
        stop.store(true, ordering: .relaxed)
        for d in done { _ = try d.get(timeout: 60) }
        for h in hubs { h.stop() }
        let rate = Double(count) / elapsed
        if json {
            print("{\"roundtrips_per_s\": \(Int(rate)), \"connections\": \(connections), \"size\": \(size), \"seconds\": \(seconds), \"failed_connections\": \(failures.load(ordering: .relaxed))}")
        } else {
            print("\(Int(rate)) round trips/s over \(connections) connections, \(size)-byte messages, \(seconds) s")
        }
        if count == 0 { throw ExitCode.failure }
    }
}
