import Green
import GreenTLS

// What HTTP runs over is a `ByteStream` (Green): a plain socket, or TLS on
// one. The conveniences the HTTP code writes with.
extension ByteStream {
    func sendAll(_ bytes: [UInt8], timeout: Double?) throws {
        try bytes.withUnsafeBytes { try sendAll($0, timeout: timeout) }
    }

    func sendAll(_ text: String, timeout: Double?) throws {
        try sendAll(Array(text.utf8), timeout: timeout)
    }
}
