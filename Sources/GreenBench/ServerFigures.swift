// Server figures, measured across processes: the package's own
// echo-server loaded by its own echo-load client, and http-hello loaded by
// wrk (Debian's; `make bench` installs it). Servers are taken from the
// directory green-bench runs from (the Makefile's bench targets build them).
import Foundation
import Green

enum EchoBench {
    struct Missing: Error, CustomStringConvertible {
        let name: String
        var description: String { "\(name) not found next to green-bench: build it with swift build -c release --product \(name)" }
    }

    static func executable(_ name: String) throws -> URL {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let url = dir.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else { throw Missing(name: name) }
        return url
    }

    /// Starts `name args...`, waits for its "listening on HOST:PORT"
    /// line, and returns the process and the port.
    static func startServer(_ name: String, _ arguments: [String]) throws -> (Process, UInt16) {
        let server = Process()
        server.executableURL = try executable(name)
        server.arguments = arguments
        let out = Pipe()
        server.standardOutput = out
        try server.run()
        var line = Data()
        let handle = out.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let addressPart = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).dropFirst(2).first,
              let port = addressPart.split(separator: ":").last.flatMap({ UInt16($0) }) else {
            server.terminate()
            throw Missing(name: "\(name)'s port (it printed: \(text))")
        }
        return (server, port)
    }

    /// Runs `executable arguments...` to its end; its exit status and
    /// standard output.
    static func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, output: Data) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, data)
    }

    /// wrk, if installed.
    static let wrk: URL? = ["/usr/bin/wrk", "/usr/local/bin/wrk"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
        .map { URL(fileURLWithPath: $0) }

    static func stop(_ server: Process) {
        server.terminate()
        server.waitUntilExit()
    }

    /// Round trips per second of `echo-load` (100 connections, 64 bytes)
    /// against `echo-server --workers hubs --work-kib workKib`.
    static func roundTripsPerSecond(hubs: Int, workKib: Int, seconds: Double) throws -> Double {
        let (server, port) = try startServer("echo-server", ["--port", "0", "--workers", "\(hubs)",
                                                             "--work-kib", "\(workKib)"])
        defer { stop(server) }
        let (status, data) = try run(executable("echo-load"), ["--port", "\(port)", "--connections", "100",
                                                                 "--size", "64", "--seconds", "\(seconds)", "--json"])
        guard status == 0,
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let rate = object["roundtrips_per_s"] as? Double ?? (object["roundtrips_per_s"] as? Int).map(Double.init)
        else {
            throw Missing(name: "echo-load's figure (it printed: \(String(decoding: data, as: UTF8.self)))")
        }
        return rate
    }

    /// Requests per second of `wrk -t2 -c100` (at `wrk`) against
    /// `http-hello --workers hubs`.
    /// With `tls` (a certificate and its key), over HTTPS: wrk keeps its
    /// 100 connections alive, so this is TLS record processing, with one
    /// handshake per connection.
    static func httpHelloRequestsPerSecond(wrk: URL, hubs: Int, seconds: Int,
                                           tls: (cert: String, key: String)? = nil) throws -> Double {
        var arguments = ["--port", "0", "--workers", "\(hubs)"]
        if let tls { arguments += ["--tls-cert", tls.cert, "--tls-key", tls.key] }
        let (server, port) = try startServer("http-hello", arguments)
        defer { stop(server) }
        let scheme = tls == nil ? "http" : "https"
        let (_, data) = try run(wrk, ["-t2", "-c100", "-d\(seconds)s", "\(scheme)://127.0.0.1:\(port)/"])
        let text = String(decoding: data, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
              let rate = Double(line.dropFirst("Requests/sec:".count).trimmingCharacters(in: .whitespaces)) else {
            throw Missing(name: "wrk's Requests/sec (it printed: \(text))")
        }
        return rate
    }

    /// Milliseconds to the end of `GET /debug/greenlets` answers (p50,
    /// p99 of `requests`, one after another on new connections) from
    /// http-hello while wrk loads it at full speed (-t2 -c100).
    static func debugEndpointUnderLoadMs(wrk: URL, requests: Int) throws -> (p50: Double, p99: Double) {
        let (server, port) = try startServer("http-hello", ["--port", "0", "--debug-endpoints"])
        defer { stop(server) }
        let load = Process()
        load.executableURL = wrk
        load.arguments = ["-t2", "-c100", "-d30s", "http://127.0.0.1:\(port)/"]
        load.standardOutput = FileHandle.nullDevice
        try load.run()
        defer { load.terminate(); load.waitUntilExit() }
        try Green.sleep(0.5)   // wrk at full speed
        var ms: [Double] = []
        for _ in 0..<requests {
            let t0 = monotonicNs()
            let s = try Socket.connect(host: "127.0.0.1", port: port, timeout: 5)
            defer { s.close() }
            try s.sendAll(Array("GET /debug/greenlets HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".utf8))
            var got: [UInt8] = []
            while true {
                let piece = try s.recv(timeout: 5)
                if piece.isEmpty { break }
                got += piece
            }
            ms.append(Double(monotonicNs() - t0) / 1e6)
            guard String(decoding: got.prefix(12), as: UTF8.self) == "HTTP/1.1 200" else {
                throw Missing(name: "a 200 from /debug/greenlets (it sent: \(String(decoding: got.prefix(200), as: UTF8.self)))")
            }
        }
        ms.sort()
        return (ms[ms.count / 2], ms[min(ms.count - 1, Int((Double(ms.count) * 0.99).rounded(.up)) - 1)])
    }

    /// A self-signed certificate and key for 127.0.0.1 in a temporary
    /// directory, made with the `openssl` command (wrk does not verify).
    static func throwawayCertificate() throws -> (cert: String, key: String) {
        var template = Array("/tmp/green-bench-tls-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Missing(name: "a temporary directory") }
        let dir = String(cString: made)
        let (status, output) = try run(URL(fileURLWithPath: "/usr/bin/openssl"), [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1"])
        guard status == 0 else {
            throw Missing(name: "a certificate from openssl (it printed: \(String(decoding: output, as: UTF8.self)))")
        }
        return (dir + "/cert.pem", dir + "/key.pem")
    }

    /// Pages per second of `crawl --demo` (2,000 pages, 20 ms latency per
    /// response, concurrency 100), and the summary line that names the
    /// bound that applied.
    static func demoCrawlPagesPerSecond() throws -> (Double, String) {
        let (status, data) = try run(executable("crawl"), [
            "--demo", "--demo-pages", "2000", "--demo-latency", "0.02", "--demo-slow", "0",
            "--concurrency", "100", "--timeout", "2", "--output", "/dev/null"])
        let text = String(decoding: data, as: UTF8.self)
        guard status == 0,
              let range = text.range(of: #"([0-9]+) pages/s \("#, options: .regularExpression),
              let rate = Double(text[range].split(separator: " ").first ?? "") else {
            throw Missing(name: "crawl's summary (it printed: \(text))")
        }
        return (rate, text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
