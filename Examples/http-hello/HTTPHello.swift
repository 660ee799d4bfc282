// http-hello: the smallest HTTP server on GreenHTTP, for trying it and for
// green-bench's http_hello figures.
//
//   swift run -c release http-hello --port 8080 [--workers 2] [--tls-cert C --tls-key K]
//
// Answers "Hello, World!" to GET / and 404 to anything else. Prints
// "listening on ADDRESS" once ready.
import ArgumentParser
import Glibc
import Green
import GreenHTTP
import GreenTLS

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

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    mutating func run() throws {
        let hello = Array("Hello, World!".utf8)
        let handler: HTTPServer.SendableHandler = { request in
            guard request.path == "/" else { return HTTPResponse(status: 404, text: "not found\n") }
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: hello)
        }
        let address = try SocketAddress(ip: host, port: port)
        var options = HTTPServer.Options()
        if let tlsCert, let tlsKey {
            options.tls = try TLSContext.server(certificateFile: tlsCert, keyFile: tlsKey)
        }
        let server = workers > 1
            ? try HTTPServer(on: address, workers: workers, options: options, handler: handler)
            : try HTTPServer(on: address, options: options, handler: handler)
        print("listening on \(server.address) (\(max(1, workers)) hub\(workers > 1 ? "s" : ""))")
        fflush(nil)
        try server.serveForever()
    }
}
