import Foundation
import Green
import GreenTestSupport

/// A throwaway CA and certificates, made with the `openssl` command once
/// per test run, in a temporary directory.
final class TLSFixture: @unchecked Sendable {
    let dir: String
    var ca: String { dir + "/ca.pem" }
    var otherCA: String { dir + "/other-ca.pem" }
    var serverCert: String { dir + "/server.pem" }
    var serverKey: String { dir + "/server.key" }
    var expiredCert: String { dir + "/expired.pem" }

    static let shared: Result<TLSFixture, Error> = Result { try TLSFixture() }

    private init() throws {
        var template = Array("/tmp/green-tls-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestError("mkdtemp failed") }
        dir = String(cString: made)
        let ext = dir + "/server.ext"
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: ext, atomically: true, encoding: .utf8)
        for (name, cn) in [("ca", "swift-green test CA"), ("other-ca", "another test CA")] {
            try run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(dir)/\(name).key",
                     "-out", "\(dir)/\(name).pem", "-days", "2", "-subj", "/CN=\(cn)",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        }
        try run(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", serverKey, "-out", "\(dir)/server.csr",
                 "-subj", "/CN=localhost"])
        try run(["x509", "-req", "-in", "\(dir)/server.csr", "-CA", ca, "-CAkey", "\(dir)/ca.key",
                 "-CAcreateserial", "-out", serverCert, "-days", "2", "-extfile", ext])
        // Valid until a day before it was issued: expired.
        try run(["x509", "-req", "-in", "\(dir)/server.csr", "-CA", ca, "-CAkey", "\(dir)/ca.key",
                 "-CAcreateserial", "-out", expiredCert, "-days", "-1", "-extfile", ext])
    }

    private func run(_ arguments: [String]) throws {
        let p = try Subprocess(["/usr/bin/openssl"] + arguments, stdin: .null, stdout: .null, stderr: .null)
        guard try p.wait(timeout: 60) == .exited(0) else {
            throw TestError("openssl \(arguments.joined(separator: " ")) failed")
        }
    }
}
