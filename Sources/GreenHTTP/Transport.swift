import Green
import GreenTLS

/// What HTTP runs over: a plain socket, or TLS on one.
protocol HTTPTransport: AnyObject {
    func recv(into buffer: UnsafeMutableRawBufferPointer, timeout: Double?) throws -> Int
    func sendAll(_ bytes: UnsafeRawBufferPointer, timeout: Double?) throws
}

extension Socket: HTTPTransport {}
extension TLSSocket: HTTPTransport {}

extension HTTPTransport {
    func sendAll(_ bytes: [UInt8], timeout: Double?) throws {
        try bytes.withUnsafeBytes { try sendAll($0, timeout: timeout) }
    }

    func sendAll(_ text: String, timeout: Double?) throws {
        try sendAll(Array(text.utf8), timeout: timeout)
    }
}
