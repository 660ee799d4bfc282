import Green
import GreenHTTP

/// Starts `server` and runs `body` with its port; then stops the server
/// (its connections get 1 s to end, the stop 10 s in all).
func whileServing<R>(_ server: HTTPServer, _ body: (_ port: UInt16) throws -> R) throws -> R {
    server.start()
    defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
    return try body(server.address.port)
}
