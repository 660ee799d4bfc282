// http-get: a small curl on greenlets. Fetches one URL over HTTP or HTTPS,
// following redirects, and writes the body to stdout or a file as it
// arrives, in constant memory whatever its size; uploads a body from a
// string or a file the same way.
//
//   http-get https://localhost:8443/ --ca-file ca.pem
//   http-get http://127.0.0.1:8080/big.iso -o big.iso
//   http-get http://127.0.0.1:8080/upload -X PUT --data @big.iso -H 'Content-Type: application/octet-stream'
//
// The exit status says what failed, with curl's numbers: 6 the name did not
// resolve, 7 no connection, 8 a malformed response, 22 an HTTP error status
// with --fail, 23 the output could not be written, 26 the --data file could
// not be read, 28 a timeout, 35 the TLS handshake failed, 47 too many
// redirects, 56 the connection failed while receiving, 60 the certificate
// did not verify; 1 for anything else (a refused redirect, a bad URL).
import ArgumentParser
import Foundation
import Glibc
import Green
import GreenHTTP
import GreenTLS

@main
struct HTTPGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-get",
        abstract: "Fetch one URL (http or https) and write its body to stdout or a file as it arrives.",
        discussion: """
            Exit status as curl's: 6 unresolved name, 7 no connection, 8 malformed response, \
            22 HTTP status >= 400 with --fail, 23 output not written, 26 --data file not read, 28 timeout, \
            35 TLS handshake, 47 too many redirects, 56 connection failed mid-response, 60 certificate \
            did not verify, 1 anything else.
            """)

    @Argument(help: "The URL (http:// or https://).")
    var url: String

    @Option(name: [.short, .customLong("output")], help: "Write the body to this file instead of stdout.")
    var output: String?

    @Option(name: [.customShort("H"), .customLong("header")], help: "A request header, 'Name: value' (repeatable).")
    var headers: [String] = []

    @Option(name: [.customShort("X"), .customLong("request")], help: "The method (default GET, or POST with --data).")
    var method: String?

    @Option(help: "The request body: a string, or @FILE to send a file as it is read.")
    var data: String?

    @Option(help: "Trust the certificates in this PEM file instead of the system's.")
    var caFile: String?

    @Flag(name: [.short, .long], help: "Do not check the server's certificate at all (test certificates only).")
    var insecure = false

    @Option(help: "Redirects to follow (0: none).")
    var maxRedirects = 10

    @Flag(help: "Follow a redirect from https to http.")
    var allowInsecureRedirects = false

    @Flag(name: [.short, .long], help: "Exit 22 on an HTTP status of 400 or more, writing no body.")
    var fail = false

    @Option(help: "Seconds for the whole transfer (none by default).")
    var maxTime: Double?

    @Option(help: "Seconds to connect.")
    var connectTimeout = 10.0

    @Flag(name: [.short, .long], help: "Print the exchange (headers, redirects, TLS, timing) on stderr.")
    var verbose = false

    func run() throws {
        var options = HTTPClient.Options()
        options.connectTimeout = connectTimeout
        options.followRedirects = maxRedirects > 0
        options.maxRedirects = maxRedirects
        options.allowInsecureRedirects = allowInsecureRedirects
        options.userAgent = "swift-green http-get"
        options.tlsVerification = insecure ? .insecureNoVerificationForTestsOnly
            : caFile.map { .caFile($0) } ?? .systemTrustStore
        var requestHeaders = HTTPHeaders()
        for h in headers {
            guard let colon = h.firstIndex(of: ":") else { throw ValidationError("not a header, 'Name: value': \(h)") }
            requestHeaders.add(String(h[..<colon]).trimmingCharacters(in: .whitespaces),
                               String(h[h.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        let body: HTTPRequestBody
        switch data {
        case nil: body = .empty
        case let d? where d.hasPrefix("@"): body = .file(String(d.dropFirst()))
        case let d?: body = .bytes(Array(d.utf8))
        }
        let method = self.method ?? (data == nil ? "GET" : "POST")

        let started = Hub.current.nowUpdated()
        var written = 0
        do {
            let client = HTTPClient(options: options)
            defer { client.close() }
            let transfer = {
                let download = try client.open(method: method, url: url, headers: requestHeaders, body: body)
                defer { download.close() }
                let r = download.response
                if verbose {
                    for from in r.redirects { note("* redirected from \(from.absoluteString)") }
                    note("* \(method) \(r.urlString ?? url)")
                    note("< \(r.status) \(r.reason)")
                    for (n, v) in r.headers { note("< \(n): \(v)") }
                }
                if fail && r.status >= 400 {
                    throw Failure(22, "\(r.urlString ?? url): HTTP \(r.status) \(r.reason)")
                }
                let sink = try Output(path: output)
                defer { sink.close() }
                while let piece = try download.next() {
                    try sink.write(piece)
                    written += piece.count
                }
            }
            if let maxTime {
                guard try withTimeout(maxTime, otherwise: { false }, { try transfer(); return true }) else {
                    throw Failure(28, "\(url): not done within \(maxTime) s (--max-time)")
                }
            } else {
                try transfer()
            }
        } catch let f as Failure {
            note("http-get: \(f.message)")
            throw ExitCode(f.code)
        } catch {
            let (code, text) = Self.classify(error)
            note("http-get: \(text)")
            throw ExitCode(code)
        }
        if verbose {
            let seconds = Hub.current.nowUpdated() - started
            note(String(format: "* %d bytes in %.3f s (%.1f MB/s)", written, seconds, Double(written) / 1e6 / max(seconds, 1e-9)))
        }
    }

    /// curl's exit status for an error, and its text.
    static func classify(_ error: any Error) -> (Int32, String) {
        guard let e = error as? HTTPClientError else { return (1, "\(error)") }
        switch e.kind {
        case .resolution: return (6, "\(e)")
        case .connection(let s):
            if let errno = s.errno, errno == ECONNREFUSED || errno == ENETUNREACH || errno == EHOSTUNREACH {
                return (7, "\(e)")
            }
            return (56, "\(e)")
        case .timedOut: return (28, "\(e)")
        case .parse, .closedBeforeResponse, .decoding: return (8, "\(e)")
        case .tooManyRedirects: return (47, "\(e)")
        case .tls(let t): return (t.kind == .verification ? 60 : 35, "\(e)")
        case .requestBody: return (26, "\(e)")
        default:
            return ("\(e)".contains("cannot resolve") ? 6 : 1, "\(e)")
        }
    }
}

/// A failure with its exit status.
struct Failure: Error {
    let code: Int32
    let message: String
    init(_ code: Int32, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Where the body goes: stdout or a file, written piece by piece.
final class Output {
    private let fd: Int32
    private let path: String
    private let owned: Bool

    init(path: String?) throws {
        guard let path else {
            fd = STDOUT_FILENO
            self.path = "stdout"
            owned = false
            return
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(23, "cannot create \(path): \(String(cString: strerror(errno)))") }
        self.path = path
        owned = true
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var at = 0
            while at < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + at, raw.count - at)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Failure(23, "cannot write \(path): \(String(cString: strerror(errno)))")
                }
                at += n
            }
        }
    }

    func close() {
        if owned { Glibc.close(fd) }
    }
}

func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
