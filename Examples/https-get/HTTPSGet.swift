// https-get: fetch one URL over HTTPS (or HTTP) on a greenlet, and print
// the status, the headers and the body's size.
//
//   swift run -c release https-get https://localhost:8443/ --ca-file ca.pem
//   swift run -c release https-get https://self-signed.example/ --insecure
//
// Certificates are checked against the system trust store, or --ca-file;
// --insecure turns the check off (for throwaway test certificates only).
// Exits non-zero with the reason on any TLS or HTTP failure (a certificate
// that does not verify names why: expired, wrong host, unknown CA).
import ArgumentParser
import Foundation
import Glibc
import Green
import GreenHTTP
import GreenTLS

@main
struct HTTPSGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "https-get", abstract: "Fetch one URL over HTTPS and print status, headers and body size.")

    @Argument(help: "The URL (https:// or http://).")
    var url: String

    @Option(help: "Trust the certificates in this PEM file instead of the system's.")
    var caFile: String?

    @Flag(help: "Do not check the server's certificate at all (test certificates only).")
    var insecure = false

    @Option(help: "Seconds for the whole fetch.")
    var timeout = 30.0

    func run() throws {
        guard let parsed = URLComponents(string: url), let scheme = parsed.scheme?.lowercased(),
              scheme == "https" || scheme == "http", let host = parsed.host, !host.isEmpty else {
            throw ValidationError("not an http(s) URL: \(url)")
        }
        let port = UInt16(parsed.port ?? (scheme == "https" ? 443 : 80))
        var target = parsed.percentEncodedPath.isEmpty ? "/" : parsed.percentEncodedPath
        if let query = parsed.percentEncodedQuery { target += "?" + query }
        let hostHeader = parsed.port.map { "\(host):\($0)" } ?? host
        let request = "GET \(target) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: swift-green https-get\r\n"
            + "Accept: */*\r\nConnection: close\r\n\r\n"

        var bytes: [UInt8] = []
        var tlsInfo: String?
        do {
            try withTimeout(timeout) {
                if scheme == "https" {
                    let verification: TLSVerification = insecure ? .insecureNoVerificationForTestsOnly
                        : caFile.map { .caFile($0) } ?? .systemTrustStore
                    let context = try TLSContext.client(verification: verification)
                    let tls = try TLSSocket.connect(host: host, port: port, context: context)
                    defer { tls.close() }
                    tlsInfo = "\(tls.protocolVersion ?? "?"), ALPN \(tls.alpnProtocol ?? "none")"
                    try tls.sendAll(request)
                    while true {
                        let chunk = try tls.recv()
                        if chunk.isEmpty { break }
                        bytes += chunk
                    }
                } else {
                    let socket = try Socket.connect(host: host, port: port)
                    defer { socket.close() }
                    try socket.sendAll(request)
                    while true {
                        let chunk = try socket.recv()
                        if chunk.isEmpty { break }
                        bytes += chunk
                    }
                }
            }
        } catch is TimeoutError {
            throw FetchError("\(url): no complete answer within \(timeout) s")
        } catch {
            throw FetchError("\(url): \(error)")
        }
        let responses: [HTTPResponse]
        do {
            responses = try HTTPParsing.responses(in: bytes)
        } catch {
            throw FetchError("\(url): malformed response: \(error)")
        }
        guard let response = responses.first else {
            throw FetchError("\(url): the server closed the connection without a complete response (\(bytes.count) bytes)")
        }
        if let tlsInfo { print("TLS: \(tlsInfo)") }
        print("HTTP/\(response.version.major).\(response.version.minor) \(response.status) \(response.reason)")
        for (name, value) in response.headers { print("\(name): \(value)") }
        print("body: \(response.body.count) bytes")
        if response.status >= 400 { throw ExitCode(1) }
    }
}

/// A failed fetch: printed as "Error: <reason>", exit status 1.
struct FetchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
