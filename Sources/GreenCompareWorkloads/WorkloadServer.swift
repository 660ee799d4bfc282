import Foundation
import Glibc
import Green
import GreenCompare
import GreenHTTP

/// The servers the network workloads talk to, each on an OS thread of its
/// own (its own hub), started by the runner outside the measured process.
public final class WorkloadServer: @unchecked Sendable {
    // `@unchecked Sendable`: every field is immutable. `http` is never a
    // one-hub server: it is made with `workers:`, so its `stop` goes to
    // its `ServerThreads`, which any thread may call, as `echo`'s.
    public let port: Int
    private let http: HTTPServer?
    private let echo: ServerThreads?

    /// Starts the server `workload` needs on 127.0.0.1 (any free port).
    public init(for workload: Workload, latency: Double) throws {
        let loopback = try SocketAddress(ip: "127.0.0.1", port: 0)
        switch workload {
        case .httpFetch:
            let body = Array(String(repeating: "swift-green ", count: 100).utf8)
            let server = try HTTPServer(on: loopback, workers: 1) { _ in
                if latency > 0 { try Green.sleep(latency) }
                return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: body)
            }
            http = server
            echo = nil
            port = Int(server.address.port)
        case .echo:
            let servers = try ServerThreads.start(threads: 1, on: loopback) { conn, _ in
                try conn.setNoDelay()
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = try buffer.withUnsafeMutableBytes { try conn.recv(into: $0) }
                    if n == 0 { return }
                    try buffer.withUnsafeBytes { try conn.sendAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                }
            }
            echo = servers
            http = nil
            port = Int(servers.address.port)
        default:
            throw ConformanceJobs.Failure(message: "\(workload.rawValue) needs no server")
        }
    }

    public func stop() {
        _ = try? http?.stop(timeout: 1)
        try? echo?.stop(timeout: 1)
    }
}
