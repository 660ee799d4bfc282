// http-hello: the smallest HTTP server on GreenHTTP, for trying it and for
// green-bench's http_hello figures.
//
//   swift run -c release http-hello --port 8080 [--workers 2] [--tls-cert C --tls-key K]
//
// Answers "Hello, World!" to GET / and 404 to anything else. Prints
// "listening on ADDRESS" once ready.
//
// With --upload-sink, it also takes uploads at /upload (POST or PUT, any
// size, read as they arrive by a streaming handler) and answers with the
// body's SHA-256 and length: the other end of Benchmarks/http-transfer.sh.
//
// With --metrics, it serves the runtime's figures at /metrics in
// Prometheus' text format: swift-metrics is bootstrapped with
// swift-prometheus' factory (in this program only) and GreenMetrics reads
// every hub before each scrape. Examples/http-hello/metrics-smoke.sh
// checks it.
import ArgumentParser
import COpenSSL
import CoreMetrics
import Glibc
import Green
import GreenHTTP
import GreenTLS
import Prometheus

@main
struct HTTPHello: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-hello", abstract: "Hello, World! over HTTP/1.1 on greenlets.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port (0 picks a free one).")
    var port: UInt16 = 8080

    @Option(help: "Threads, each with its own hub and SO_REUSEPORT listener.")
    var workers = 1

    @Option(help: "Serve HTTPS with this certificate chain (PEM; needs --tls-key).")
    var tlsCert: String?

    @Option(help: "The private key (PEM) of --tls-cert.")
    var tlsKey: String?

    @Flag(help: "Also take uploads at /upload and answer with their SHA-256 and length (read as they arrive).")
    var uploadSink = false

    @Flag(help: "Serve the runtime's metrics (green_*) at /metrics in Prometheus text format.")
    var metrics = false

    @Flag(help: "Serve the greenlet dump at /debug/greenlets (?format=json, ?full=1), to loopback clients.")
    var debugEndpoints = false

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    mutating func run() throws {
        let hello = Array("Hello, World!".utf8)
        let scrape = metrics ? Self.prometheusScrape() : nil
        let handler: HTTPServer.SendableHandler = { request in
            if request.path == "/metrics", let scrape { return try scrape() }
            guard request.path == "/" else { return HTTPResponse(status: 404, text: "not found\n") }
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: hello)
        }
        let address = try SocketAddress(ip: host, port: port)
        var options = HTTPServer.Options()
        options.debugEndpoints = debugEndpoints
        if let tlsCert, let tlsKey {
            options.tls = try TLSContext.server(certificateFile: tlsCert, keyFile: tlsKey)
        }
        let sink: HTTPServer.SendableStreamingHandler = { request, body in
            guard request.path == "/upload" else {
                _ = try body.readAll(limit: 1 << 20)
                return try handler(request)
            }
            guard request.method == "POST" || request.method == "PUT" else {
                return HTTPResponse(status: 405, headers: ["Allow": "POST, PUT"], body: [])
            }
            let digest = SHA256()
            var length = 0
            while let piece = try body.next() {
                digest.update(piece)
                length += piece.count
            }
            return HTTPResponse(text: "\(digest.hex()) \(length)\n")
        }
        let server: HTTPServer
        switch (workers > 1, uploadSink) {
        case (true, false): server = try HTTPServer(on: address, workers: workers, options: options, handler: handler)
        case (false, false): server = try HTTPServer(on: address, options: options, handler: handler)
        case (true, true): server = try HTTPServer(on: address, workers: workers, options: options, streamingHandler: sink)
        case (false, true): server = try HTTPServer(on: address, options: options, streamingHandler: sink)
        }
        print("listening on \(server.address) (\(max(1, workers)) hub\(workers > 1 ? "s" : ""))")
        fflush(nil)
        try server.serveForever()
    }
}

extension HTTPHello {
    /// Bootstraps swift-metrics with a Prometheus registry and returns what
    /// answers a scrape: every hub's figures read now, then the registry's
    /// text (from a greenlet: `update` waits for the other hubs).
    static func prometheusScrape() -> @Sendable () throws -> HTTPResponse {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let runtime = GreenMetrics()
        return {
            try runtime.update()
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain; version=0.0.4"],
                                body: registry.emitToBuffer())
        }
    }
}

/// SHA-256 of a stream of pieces, by OpenSSL.
final class SHA256 {
    private let context = EVP_MD_CTX_new()

    init() {
        guard let context, EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            fatalError("OpenSSL could not start a SHA-256 digest")
        }
    }

    deinit { EVP_MD_CTX_free(context) }

    func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
    }

    /// The digest in lowercase hex (the digest then ends).
    func hex() -> String {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = EVP_DigestFinal_ex(context, &out, &length)
        return out[..<Int(length)].map { String(format: "%02x", $0) }.joined()
    }
}
