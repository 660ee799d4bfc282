import Foundation
import Glibc
import Green
import GreenCrawl
import GreenHTTP
import GreenTLS
import XCTest
import GreenTestSupport

final class TLSTests: GreenTestCase {
    private var fixture: TLSFixture!

    override func setUpWithError() throws {
        try super.setUpWithError()
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "no openssl command")
        fixture = try TLSFixture.shared.get()
    }

    /// Starts `openssl s_server` on a free loopback port with `certificate`
    /// (reversing each line it gets: -rev); returns it and its port.
    private func startOpenSSLServer(certificate: String, extra: [String] = []) throws -> (Subprocess, UInt16) {
        let server = try Subprocess(["openssl", "s_server", "-accept", "0", "-cert", certificate,
                                     "-key", fixture.serverKey, "-alpn", "http/1.1", "-rev"] + extra,
                                    stdin: .null, stdout: .pipe, stderr: .null)
        var seen: [UInt8] = []
        let port: UInt16? = try withTimeout(10) {
            while true {
                let chunk = try server.stdout!.recv()
                if chunk.isEmpty { return nil }
                seen += chunk
                let text = String(decoding: seen, as: UTF8.self)
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("ACCEPT") }),
                   let p = line.split(separator: ":").last.flatMap({ UInt16($0.trimmingCharacters(in: .whitespaces)) }) {
                    return p
                }
            }
        }
        guard let port else {
            server.kill(SIGKILL)
            throw TestError("s_server did not start: \(String(decoding: seen, as: UTF8.self))")
        }
        return (server, port)
    }

    private func stop(_ p: Subprocess) {
        p.kill(SIGKILL)
        _ = try? p.wait(timeout: 5)
    }

    /// Reads until `marker` shows up (at most 5 s).
    private func read(_ tls: TLSSocket, until marker: String) throws -> String {
        var got: [UInt8] = []
        try withTimeout(5) {
            while !String(decoding: got, as: UTF8.self).contains(marker) {
                let chunk = try tls.recv()
                if chunk.isEmpty { break }
                got += chunk
            }
        }
        return String(decoding: got, as: UTF8.self)
    }

    /// Runs `body` with a client connection to localhost, verified against
    /// the fixture's CA, to `openssl s_server -rev` presenting the
    /// fixture's server certificate; closes both afterwards.
    private func withAClientOfOpenSSLsServer(_ body: (TLSSocket) throws -> Void) throws {
        let (server, port) = try startOpenSSLServer(certificate: fixture.serverCert)
        defer { stop(server) }
        let context = try TLSContext.client(verification: .caFile(fixture.ca))
        let tls = try TLSSocket.connect(host: "localhost", port: port, context: context, timeout: 10)
        defer { tls.close() }
        try body(tls)
    }

    func testAClientTalksToOpenSSLsServerVerifyingItAgainstItsCA() throws {
        try withAClientOfOpenSSLsServer { tls in
            XCTAssertEqual(tls.alpnProtocol, "http/1.1")
            XCTAssertNotNil(tls.protocolVersion)
            try tls.sendAll("hello green\n")
            XCTAssertTrue(try read(tls, until: "neerg olleh").contains("neerg olleh"))
            try tls.shutdown()
        }
    }

    func testAnIPAddressIsVerifiedAgainstTheCertificatesIPNames() throws {
        let (server, port) = try startOpenSSLServer(certificate: fixture.serverCert)
        defer { stop(server) }
        let context = try TLSContext.client(verification: .caFile(fixture.ca))
        let tls = try TLSSocket.connect(host: "127.0.0.1", port: port, context: context, timeout: 10)
        tls.close()
    }

    private func assertVerificationFails(host: String = "localhost", certificate: String, ca: TLSVerification,
                                         mentioning reason: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (server, port) = try startOpenSSLServer(certificate: certificate)
        defer { stop(server) }
        let context = try TLSContext.client(verification: ca)
        let fdsBefore = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        // Connected to loopback whatever `host` says; `host` is the name
        // the certificate must match.
        let connectAndVerify = { () throws -> Void in
            let socket = try Socket.connect(host: "127.0.0.1", port: port, timeout: 10)
            defer { socket.close() }
            try TLSSocket(client: socket, context: context, serverName: host).handshake(timeout: 10)
        }
        XCTAssertThrowsError(try connectAndVerify(), file: file, line: line) { error in
            guard let e = error as? TLSError else { return XCTFail("not a TLSError: \(error)", file: file, line: line) }
            XCTAssertEqual(e.kind, .verification, "\(e)", file: file, line: line)
            XCTAssertTrue(e.description.contains(reason), "\(e)", file: file, line: line)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count, fdsBefore,
                       "the failed connection's socket is closed", file: file, line: line)
    }

    func testAWrongHostIsAVerificationError() throws {
        // The certificate names localhost and 127.0.0.1, not this.
        try assertVerificationFails(host: "wrong.example", certificate: fixture.serverCert,
                                    ca: .caFile(fixture.ca), mentioning: "hostname mismatch")
    }

    func testAnUnknownCAIsAVerificationError() throws {
        try assertVerificationFails(certificate: fixture.serverCert, ca: .caFile(fixture.otherCA),
                                    mentioning: "did not verify")
        try assertVerificationFails(certificate: fixture.serverCert, ca: .systemTrustStore,
                                    mentioning: "did not verify")
    }

    func testAnExpiredCertificateIsAVerificationError() throws {
        try assertVerificationFails(certificate: fixture.expiredCert, ca: .caFile(fixture.ca),
                                    mentioning: "certificate has expired")
    }

    func testTheLoudlyNamedOptOutAcceptsAnUnknownCA() throws {
        let (server, port) = try startOpenSSLServer(certificate: fixture.expiredCert)
        defer { stop(server) }
        let context = try TLSContext.client(verification: .insecureNoVerificationForTestsOnly)
        let tls = try TLSSocket.connect(host: "localhost", port: port, context: context, timeout: 10)
        try tls.sendAll("abc\n")
        XCTAssertTrue(try read(tls, until: "cba").contains("cba"))
        tls.close()
    }

    func testAServerThatStallsMidHandshakeTimesOutWithoutStallingOthers() throws {
        // A TCP listener that accepts and never speaks TLS.
        try withSilentServer { port, ticks in
            let context = try TLSContext.client(verification: .caFile(fixture.ca))
            let started = Hub.current.nowUpdated()
            XCTAssertThrowsError(try TLSSocket.connect(host: "127.0.0.1", port: port, context: context, timeout: 0.3)) { error in
                guard let e = error as? SocketError, case .timedOut = e.reason else { return XCTFail("\(error)") }
                XCTAssertTrue(e.operation.contains("handshake"), "\(e)")
            }
            XCTAssertGreaterThanOrEqual(Hub.current.nowUpdated() - started, 0.29)
            XCTAssertGreaterThan(ticks(), 5, "other greenlets ran while the handshake waited")
        }
    }

    /// A one-request HTTPS server on TLSSocket: answers `body` to each
    /// connection, then sends close_notify.
    private func startServer(connections: Int, body: String) throws -> (UInt16, Greenlet<Int>) {
        let context = try TLSContext.server(certificateFile: fixture.serverCert, keyFile: fixture.serverKey)
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        let port = listener.localAddress!.port
        let server = spawn { () -> Int in
            defer { listener.close() }
            var served = 0
            try withScope { scope in
                for _ in 0..<connections {
                    let (conn, _) = try listener.accept()
                    scope.spawn {
                        let tls = try TLSSocket(server: conn, context: context)
                        defer { tls.close() }
                        try tls.handshake(timeout: 10)
                        var request: [UInt8] = []
                        while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
                            let chunk = try tls.recv(timeout: 10)
                            if chunk.isEmpty { return }
                            request += chunk
                        }
                        try tls.sendAll("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
                        served += 1
                        try tls.shutdown()
                    }
                }
            }
            return served
        }
        return (port, server)
    }

    func testCurlAndOpenSSLsClientTalkToOurServer() throws {
        let (port, server) = try startServer(connections: 2, body: "hello over tls")
        let curl = try Subprocess(["curl", "-sS", "--max-time", "10", "--cacert", fixture.ca,
                                   "-w", "\n%{http_version}", "https://localhost:\(port)/"],
                                  stdin: .null, stdout: .pipe, stderr: .pipe)
        let (out, err) = try withTimeout(15) { try curl.communicate() }
        XCTAssertEqual(curl.status, .exited(0), String(decoding: err, as: UTF8.self))
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "hello over tls\n1.1")
        let client = try Subprocess(["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", fixture.ca,
                                     "-verify_return_error", "-alpn", "http/1.1", "-quiet"],
                                    stdin: .pipe, stdout: .pipe, stderr: .pipe)
        let (reply, clientErr) = try withTimeout(15) {
            try client.communicate(input: Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        }
        XCTAssertEqual(client.status, .exited(0), String(decoding: clientErr, as: UTF8.self))
        XCTAssertTrue(String(decoding: reply, as: UTF8.self).hasSuffix("hello over tls"),
                      String(decoding: reply, as: UTF8.self))
        XCTAssertEqual(try server.get(), 2)
    }

    func testAKillReachesAGreenletBlockedInATLSRead() throws {
        try withAClientOfOpenSSLsServer { tls in
            let reader = spawn { try tls.recv() }   // s_server -rev sends nothing unasked
            try Green.sleep(0)                       // it parks in the read
            try reader.kill()
            XCTAssertThrowsError(try reader.get()) { XCTAssertTrue($0 is GreenletExit, "\($0)") }
        }
    }

    /// A TLS server on a listener of its own that completes the handshake,
    /// then neither reads nor writes until the test ends.
    private func silentTLSServer(_ body: (_ port: UInt16) throws -> Void) throws {
        let context = try TLSContext.server(certificateFile: fixture.serverCert, keyFile: fixture.serverKey)
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let done = Event()
        let server = spawn {
            let (conn, _) = try listener.accept(timeout: 10)
            let tls = try TLSSocket(server: conn, context: context)
            defer { tls.close() }
            try tls.handshake(timeout: 10)
            try done.wait()
        }
        defer {
            done.set()
            _ = try? server.join(timeout: 10)
        }
        try body(listener.localAddress!.port)
    }

    /// close_notify that must wait (the socket under TLS is full, the
    /// peer reads nothing) still lets a kill through, and the socket is
    /// closed all the same. Over a Unix socket pair: its buffer does not
    /// grow or drain while the test runs, as TCP's may.
    func testAKillReachesAGreenletWaitingToSendCloseNotify() throws {
        let (near, far) = try connectedSocketPair()
        defer { far.close() }
        let serverContext = try TLSContext.server(certificateFile: fixture.serverCert, keyFile: fixture.serverKey)
        let server = spawn { () throws -> TLSSocket in
            let tls = try TLSSocket(server: far, context: serverContext)
            try tls.handshake(timeout: 10)
            return tls
        }
        let tls = try TLSSocket(client: near, context: TLSContext.client(verification: .caFile(fixture.ca)),
                                serverName: "localhost", resuming: nil)
        defer { tls.close() }
        try tls.handshake(timeout: 10)
        _ = try server.get(timeout: 10)
        // Fill the socket under TLS until it takes not one more byte (bounded).
        var full = false
        for size in [65_536, 1] {
            let junk = [UInt8](repeating: 0, count: size)
            for _ in 0..<100_000 {
                let n = junk.withUnsafeBytes { Glibc.send(near.fd, $0.baseAddress, size, Int32(MSG_DONTWAIT)) }
                if n < 0 { full = errno == EAGAIN || errno == EWOULDBLOCK; break }
            }
        }
        XCTAssertTrue(full, "the socket never filled")
        let closer = spawn { try tls.shutdown(timeout: 3600) }
        try letOthersRun()
        XCTAssertTrue(closer.isStarted && !closer.isReady, "waiting to send close_notify")
        try closer.kill()
        XCTAssertThrowsError(try closer.get()) { XCTAssertTrue($0 is GreenletExit, "\($0)") }
        XCTAssertTrue(near.isClosed)
    }

    /// A wss:// handshake whose TLS part succeeds and whose upgrade is
    /// never answered times out as the WebSocket handshake, not as TLS.
    func testAWSSUpgradeThatIsNeverAnsweredTimesOutAsTheWebSocketHandshake() throws {
        try silentTLSServer { port in
            var options = HTTPClient.Options()
            options.tlsVerification = .caFile(fixture.ca)
            options.readTimeout = 0.2
            XCTAssertThrowsError(try withTimeout(10) {
                try WebSocket.connect(url: "wss://localhost:\(port)/", options: options)
            }) { error in
                guard case .timedOut(let phase, _)? = (error as? HTTPClientError)?.kind else { return XCTFail("\(error)") }
                XCTAssertEqual(phase, "WebSocket handshake")
            }
        }
    }

    func testASessionIsResumedOnTheNextConnection() throws {
        let (server, port) = try startOpenSSLServer(certificate: fixture.serverCert)
        defer { stop(server) }
        let context = try TLSContext.client(verification: .caFile(fixture.ca))
        let first = try TLSSocket.connect(host: "localhost", port: port, context: context, timeout: 10)
        try first.sendAll("one\n")
        _ = try read(first, until: "eno")     // TLS 1.3 tickets come with the first reads
        let session = try XCTUnwrap(first.session)
        XCTAssertFalse(first.sessionReused)
        try first.shutdown()
        let second = try TLSSocket.connect(host: "localhost", port: port, context: context, resuming: session, timeout: 10)
        defer { second.close() }
        XCTAssertTrue(second.sessionReused)
        try second.sendAll("two\n")
        XCTAssertTrue(try read(second, until: "owt").contains("owt"))
    }

    // MARK: - HTTPS in GreenHTTP and the crawler

    private func httpsServer(_ handler: @escaping HTTPServer.Handler) throws -> HTTPServer {
        var options = HTTPServer.Options()
        options.tls = try TLSContext.server(certificateFile: fixture.serverCert, keyFile: fixture.serverKey)
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), options: options, handler: handler)
        server.start()
        return server
    }

    private func client(trusting ca: String) -> HTTPClient {
        var options = HTTPClient.Options()
        options.tlsVerification = .caFile(ca)
        return HTTPClient(options: options)
    }

    /// Two GETs of `url` through `client`, whose server answers 200 with
    /// `answerPrefix` and then what names the connection: both must get
    /// the same answer, over one kept-alive connection.
    private func assertTwoGetsShareAConnection(_ client: HTTPClient, _ url: String, answerPrefix: String,
                                               file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try client.get(url)
        let b = try client.get(url)
        XCTAssertEqual(a.status, 200, file: file, line: line)
        XCTAssertTrue(a.text.hasPrefix(answerPrefix), a.text, file: file, line: line)
        XCTAssertEqual(a.text, b.text, "the second request did not go over the same connection", file: file, line: line)
    }

    func testTheHTTPClientAndServerSpeakHTTPSAndReuseConnections() throws {
        let server = try httpsServer { request in HTTPResponse(text: "peer \(request.peer?.port ?? 0)") }
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        let client = client(trusting: fixture.ca)
        defer { client.close() }
        // The second request goes over the same kept-alive TLS connection.
        try assertTwoGetsShareAConnection(client, "https://localhost:\(server.address.port)/x", answerPrefix: "peer ")
    }

    func testRedirectsGoFromHTTPToHTTPSAndBackOnlyWhenAsked() throws {
        var plainPort: UInt16 = 0
        let tlsServer = try httpsServer { request in
            HTTPResponse(status: 302, headers: ["Location": "http://127.0.0.1:\(plainPort)/end"])
        }
        defer { _ = try? withTimeout(10) { try tlsServer.stop(timeout: 1) } }
        let tlsPort = tlsServer.address.port
        let plain = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0)) { request in
            request.path == "/start"
                ? HTTPResponse(status: 301, headers: ["Location": "https://localhost:\(tlsPort)/middle"])
                : HTTPResponse(text: "end of \(request.path)")
        }
        plain.start()
        defer { _ = try? withTimeout(10) { try plain.stop(timeout: 1) } }
        plainPort = plain.address.port
        // From https back to http only when asked.
        let refusing = client(trusting: fixture.ca)
        defer { refusing.close() }
        XCTAssertThrowsError(try refusing.get("http://127.0.0.1:\(plainPort)/start")) { error in
            guard let e = error as? HTTPClientError, case .insecureRedirect(let to) = e.kind else { return XCTFail("\(error)") }
            XCTAssertEqual(to, "http://127.0.0.1:\(plainPort)/end")
            XCTAssertTrue(e.url.hasPrefix("https://"), e.url)
        }
        var options = HTTPClient.Options()
        options.tlsVerification = .caFile(fixture.ca)
        options.allowInsecureRedirects = true
        let client = HTTPClient(options: options)
        defer { client.close() }
        let r = try client.get("http://127.0.0.1:\(plainPort)/start")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.text, "end of /end")
        XCTAssertEqual(r.redirects.map { $0.scheme ?? "" }, ["http", "https"])
    }

    func testACertificateThatDoesNotVerifyIsAClientErrorNamingWhy() throws {
        let server = try httpsServer { _ in HTTPResponse(text: "secret") }
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        let client = client(trusting: fixture.otherCA)
        defer { client.close() }
        XCTAssertThrowsError(try client.get("https://localhost:\(server.address.port)/")) { error in
            guard let e = error as? HTTPClientError, case .tls(let tls) = e.kind else { return XCTFail("\(error)") }
            XCTAssertEqual(tls.kind, .verification)
            XCTAssertTrue(e.description.contains("did not verify"), e.description)
        }
    }

    func testTheCrawlerCrawlsAnHTTPSSiteAndCertificateErrorsAreErrorLines() throws {
        let server = try httpsServer { request in
            switch request.path {
            case "/": return HTTPResponse(text: "<a href=\"/a\">a</a> <a href=\"/b\">b</a>", contentType: "text/html")
            case "/a": return HTTPResponse(text: "<a href=\"/b\">b</a>", contentType: "text/html")
            case "/b": return HTTPResponse(text: "<p>leaf</p>", contentType: "text/html")
            default: return HTTPResponse(status: 404, text: "no")
            }
        }
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        let root = URL(string: "https://localhost:\(server.address.port)/")!
        var options = Crawler.Options()
        options.caFile = fixture.ca
        options.obeyRobots = false
        var records: [CrawlRecord] = []
        let summary = try withTimeout(30) { try Crawler(options: options).crawl(root) { records.append($0) } }
        XCTAssertEqual(summary.pages, 3)
        XCTAssertEqual(summary.errors, 0, "\(records.compactMap(\.error))")
        XCTAssertEqual(Set(records.map { URL(string: $0.url)!.path }), ["/", "/a", "/b"])

        options.caFile = fixture.otherCA
        records = []
        _ = try withTimeout(30) { try Crawler(options: options).crawl(root) { records.append($0) } }
        XCTAssertEqual(records.count, 1)
        XCTAssertTrue(records.first?.error?.contains("did not verify") ?? false, "\(records)")
        XCTAssertTrue(records.first?.jsonLine.contains("\"error\":") ?? false)
    }

    func testAThousandConcurrentTLSConnectionsToOurServer() throws {
        // Both ends in this process: 2,000 descriptors and some to spare.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let saved = limit
        limit.rlim_cur = max(limit.rlim_cur, min(limit.rlim_max, 4096))
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        defer { var s = saved; setrlimit(Int32(RLIMIT_NOFILE.rawValue), &s) }
        try XCTSkipIf(limit.rlim_cur < 2200, "the open-file limit (\(limit.rlim_cur)) is too low for 1,000 connections")

        let server = try httpsServer { _ in HTTPResponse(text: "hello") }
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        let context = try TLSContext.client(verification: .caFile(fixture.ca))
        let count = 1000
        let handshakes = Green.Semaphore(value: 100)
        let release = Event()
        let allAnswered = Event()
        var answered = 0
        var failures: [String] = []
        let clients = (0..<count).map { _ in
            spawn {
                var held: TLSSocket?
                defer { held?.close() }   // after the release: all are open at once
                do {
                    let tls = try handshakes.withPermit {
                        try TLSSocket.connect(host: "localhost", port: server.address.port, context: context, timeout: 30)
                    }
                    held = tls
                    try tls.sendAll("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    var reply: [UInt8] = []
                    while !String(decoding: reply, as: UTF8.self).hasSuffix("hello") {
                        let chunk = try tls.recv(timeout: 30)
                        if chunk.isEmpty { throw TestError("closed early") }
                        reply += chunk
                    }
                    answered += 1
                } catch {
                    failures.append("\(error)")
                }
                if answered + failures.count == count { allAnswered.set() }
                try release.wait()
            }
        }
        XCTAssertTrue(try allAnswered.wait(timeout: 120))
        XCTAssertEqual(failures, [])
        XCTAssertEqual(answered, count)
        XCTAssertEqual(server.connectionCount, count, "every connection open on the server at once")
        release.set()
        try joinAll(clients)
    }

    // MARK: - nginx

    /// nginx serving TLS on a free loopback port with the fixture's
    /// certificate (answers "connection N" with nginx's connection number
    /// at /, and 256 KiB at /big); nil if nginx is not installed.
    private func startNginx() throws -> (Subprocess, UInt16)? {
        guard let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { return nil }
        var template = Array("/tmp/green-nginx-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestError("mkdtemp failed") }
        let dir = String(cString: made)
        let port = try freeLoopbackPort()   // nginx binds it next
        try String(repeating: "x", count: 256 * 1024).write(toFile: dir + "/big", atomically: true, encoding: .utf8)
        let conf = """
        daemon off;
        master_process off;
        worker_processes 1;
        pid \(dir)/nginx.pid;
        error_log \(dir)/error.log;
        events { worker_connections 512; }
        http {
            access_log off;
            client_body_temp_path \(dir); proxy_temp_path \(dir); fastcgi_temp_path \(dir);
            uwsgi_temp_path \(dir); scgi_temp_path \(dir);
            server {
                listen 127.0.0.1:\(port) ssl;
                ssl_certificate \(fixture.serverCert);
                ssl_certificate_key \(fixture.serverKey);
                ssl_session_cache shared:green:1m;
                location = / { default_type text/plain; return 200 "connection $connection"; }
                location = /big { root \(dir); default_type text/plain; }
            }
        }
        """
        try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        let server = try Subprocess([nginx, "-c", dir + "/nginx.conf", "-p", dir, "-e", dir + "/error.log"],
                                    stdin: .null, stdout: .null, stderr: .null)
        // Ready when it accepts.
        let ready: Bool = try withTimeout(10) {
            while true {
                if let s = try? Socket.connect(host: "127.0.0.1", port: port, timeout: 1) {
                    s.close()
                    return true
                }
                if try server.wait(timeout: 0.02) != nil { return false }
            }
        }
        guard ready else { throw TestError("nginx did not start: \((try? String(contentsOfFile: dir + "/error.log", encoding: .utf8)) ?? "")") }
        return (server, port)
    }

    func testTheClientTalksToNginxOverTLSReusingConnectionsAndSessions() throws {
        guard let (nginx, port) = try startNginx() else { throw XCTSkip("nginx is not installed") }
        defer { stop(nginx) }
        let http = client(trusting: fixture.ca)
        let url = "https://localhost:\(port)/"
        // Kept alive: the same nginx connection.
        try assertTwoGetsShareAConnection(http, url, answerPrefix: "connection ")
        let big = try http.get(url + "big")
        XCTAssertEqual(big.body.count, 256 * 1024)
        http.close()
        // A new connection resumes the session (nginx's session cache).
        let context = try TLSContext.client(verification: .caFile(fixture.ca))
        let first = try TLSSocket.connect(host: "localhost", port: port, context: context, timeout: 10)
        try first.sendAll("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        while try !first.recv(timeout: 10).isEmpty {}
        let session = try XCTUnwrap(first.session)
        first.close()
        let second = try TLSSocket.connect(host: "localhost", port: port, context: context, resuming: session, timeout: 10)
        XCTAssertTrue(second.sessionReused)
        second.close()
        // And a verification failure against it names the reason.
        let stranger = client(trusting: fixture.otherCA)
        XCTAssertThrowsError(try stranger.get(url)) { XCTAssertTrue("\($0)".contains("did not verify"), "\($0)") }
    }

    func testCloseNotifyEndsTheStreamAndAnAbruptCloseIsAnError() throws {
        let context = try TLSContext.server(certificateFile: fixture.serverCert, keyFile: fixture.serverKey)
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let port = listener.localAddress!.port
        // First connection: a clean close (close_notify); second: the
        // socket just closed, TLS-wise mid-stream.
        let server = spawn {
            for clean in [true, false] {
                let (conn, _) = try listener.accept()
                let tls = try TLSSocket(server: conn, context: context)
                try tls.handshake(timeout: 10)
                try tls.sendAll("bye")
                if clean { try tls.shutdown() } else { tls.close() }
            }
        }
        let clientContext = try TLSContext.client(verification: .caFile(fixture.ca))
        let clean = try TLSSocket.connect(host: "localhost", port: port, context: clientContext, timeout: 10)
        XCTAssertEqual(String(decoding: try read(clean, until: "bye").utf8, as: UTF8.self), "bye")
        XCTAssertEqual(try clean.recv(timeout: 10), [], "close_notify: the end of the stream")
        clean.close()
        let abrupt = try TLSSocket.connect(host: "localhost", port: port, context: clientContext, timeout: 10)
        defer { abrupt.close() }
        _ = try read(abrupt, until: "bye")
        XCTAssertThrowsError(try abrupt.recv(timeout: 10)) { error in
            guard let e = error as? TLSError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.kind, .io, "\(e)")
        }
        try server.get()
    }

    func testAClientThatStallsMidHandshakeIsCutWithoutStallingOthers() throws {
        var options = HTTPServer.Options()
        options.tls = try TLSContext.server(certificateFile: fixture.serverCert, keyFile: fixture.serverKey)
        options.headerTimeout = 1
        let server = try HTTPServer(on: SocketAddress(ip: "127.0.0.1", port: 0), options: options) { _ in
            HTTPResponse(text: "served")
        }
        server.start()
        defer { _ = try? withTimeout(10) { try server.stop(timeout: 1) } }
        // Five bytes of a TLS record header, then nothing.
        let stalled = try Socket.connect(host: "127.0.0.1", port: server.address.port, timeout: 5)
        defer { stalled.close() }
        try stalled.sendAll([0x16, 0x03, 0x01, 0x02, 0x00])
        // Meanwhile a real client is served, while the stalled handshake
        // still holds its connection (both are open on the server).
        let started = Hub.current.nowUpdated()
        let http = client(trusting: fixture.ca)
        let page = try http.get("https://localhost:\(server.address.port)/")
        XCTAssertEqual(page.text, "served")
        XCTAssertEqual(server.connectionCount, 2, "the stalled handshake and the kept-alive client")
        http.close()
        // The stalled one is cut once the header timeout has passed.
        XCTAssertEqual(try stalled.recv(timeout: 5), [], "closed by the server")
        XCTAssertGreaterThanOrEqual(Hub.current.nowUpdated() - started, 0.95)
    }

    /// BufferedReader and BufferedWriter over a TLS connection.
    func testReaderAndWriterOverTLS() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "no openssl command")
        let fixture = try TLSFixture.shared.get()
        let serverContext = try TLSContext.server(certificateFile: fixture.serverCert, keyFile: fixture.serverKey)
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let server = spawn { () throws -> [String] in
            let (conn, _) = try listener.accept(timeout: 10)
            let tls = try TLSSocket(server: conn, context: serverContext)
            defer { tls.close() }
            try tls.handshake(timeout: 10)
            let reader = BufferedReader(tls, capacity: 64)
            let writer = BufferedWriter(tls)
            var got: [String] = []
            while got.count < 300, let line = try reader.readLine(timeout: 10) {
                got.append(line)
                try writer.write("ok \(got.count)\r\n")
            }
            try writer.flush()
            try tls.shutdown()   // close_notify: the client's reader sees the end
            return got
        }
        defer { try? server.kill(timeout: 5) }
        let context = try TLSContext.client(verification: .caFile(fixture.ca))
        let tls = try TLSSocket.connect(host: "localhost", port: listener.localAddress!.port, context: context, timeout: 10)
        defer { tls.close() }
        let writer = BufferedWriter(tls, capacity: 256)
        let lines = (0..<300).map { "tls line \($0) " + String(repeating: "t", count: $0) }
        for line in lines { try writer.write(line + "\n") }
        try writer.flush()
        XCTAssertEqual(try server.get(timeout: 10), lines)
        let reader = BufferedReader(tls)
        var replies: [String] = []
        for line in reader.lines(timeout: 10) { replies.append(line) }
        XCTAssertEqual(replies, (1...300).map { "ok \($0)" })
    }
}
