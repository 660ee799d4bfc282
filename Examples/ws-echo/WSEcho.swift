// ws-echo: a WebSocket echo server on GreenHTTP, and its load client.
//
//   swift run -c release ws-echo --port 8080 [--host 127.0.0.1]
//   swift run -c release ws-echo --connect ws://127.0.0.1:8080/ --messages 1000
//                                [--connections 100] [--size 64] [--json]
//
// The server echoes every message at / (text as text, binary as binary)
// and prints "listening on ADDRESS" once ready. The client opens
// --connections WebSockets at once; each sends --messages binary messages
// of --size bytes (each different), one at a time, checks that each comes
// back the same, and closes with 1000. It prints messages per second (the
// time from the first connect to the last close), or one JSON object with
// --json, and exits 1 if any connection failed or got a wrong echo.
import ArgumentParser
import Glibc
import Green
import GreenHTTP

@main
struct WSEcho: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-echo", abstract: "WebSocket echo server (--port) or its load client (--connect).")

    @Option(help: "Serve: the address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Serve on this port (0 picks a free one).")
    var port: UInt16?

    @Option(help: "Load: the ws:// or wss:// URL of an echo server.")
    var connect: String?

    @Option(help: "Load: messages each connection sends.")
    var messages = 100

    @Option(help: "Load: concurrent connections.")
    var connections = 1

    @Option(help: "Load: bytes per message.")
    var size = 64

    @Flag(help: "Load: print one JSON object.")
    var json = false

    func validate() throws {
        guard (port == nil) != (connect == nil) else { throw ValidationError("give either --port or --connect") }
        guard messages >= 1, connections >= 1, size >= 1 else {
            throw ValidationError("--messages, --connections and --size must be at least 1")
        }
    }

    mutating func run() throws {
        if let port { try serve(port: port) } else if let connect { try load(url: connect) }
    }

    private func serve(port: UInt16) throws {
        let handler: HTTPServer.SendableHandler = { request in
            guard request.path == "/" else { return HTTPResponse(status: 404, text: "not found\n") }
            return WebSocket.upgradeResponse(for: request) { ws in
                while let message = try ws.receive() { try ws.send(message) }
            }
        }
        var options = HTTPServer.Options()
        options.idleTimeout = 3600   // a WebSocket's connection is idle only before its upgrade
        let server = try HTTPServer(on: SocketAddress(ip: host, port: port), options: options, handler: handler)
        print("listening on \(server.address)")
        fflush(nil)
        try server.serveForever()
    }

    private func load(url: String) throws {
        let (messages, size) = (self.messages, self.size)
        let start = Hub.current.nowUpdated()
        let group = Group()
        var failures: [String] = []
        for c in 0..<connections {
            try group.spawn {
                do {
                    let ws = try WebSocket.connect(url: url)
                    var message = [UInt8](repeating: 0, count: size)
                    for m in 0..<messages {
                        // Each message differs, so an echo of the wrong one shows.
                        for i in 0..<min(8, size) { message[i] = UInt8(truncatingIfNeeded: (c &* 31 &+ m) >> (8 * i)) }
                        try ws.send(binary: message, timeout: 30)
                        guard let echo = try ws.receive(timeout: 30) else {
                            throw WebSocketError(.endedWithoutClose("the server closed after \(m) of \(messages) messages"))
                        }
                        guard echo == .binary(message) else {
                            throw WebSocketError(.protocolViolation(.policyViolation, "message \(m) came back different"))
                        }
                    }
                    try ws.close()
                } catch {
                    failures.append("connection \(c): \(error)")
                }
            }
        }
        _ = try group.join()
        let elapsed = Hub.current.nowUpdated() - start
        let total = (connections - failures.count) * messages
        let rate = Double(total) / elapsed
        if json {
            print("{\"messages_per_s\": \(Int(rate)), \"messages\": \(total), \"connections\": \(connections), "
                  + "\"size\": \(size), \"seconds\": \(elapsed), \"failed_connections\": \(failures.count)}")
        } else {
            print("\(Int(rate)) messages/s: \(total) messages of \(size) bytes over \(connections) connections in "
                  + "\((elapsed * 1000).rounded() / 1000) s")
        }
        if !failures.isEmpty {
            let line = "ws-echo: \(failures.count) connections failed; first: \(failures[0])\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            throw ExitCode.failure
        }
    }
}
