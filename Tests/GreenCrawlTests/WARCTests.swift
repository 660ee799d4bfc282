import Foundation
import Glibc
import Green
@testable import GreenCrawl
import XCTest
import GreenTestSupport

/// WARC files read back by warcio, the reference reader (`make test-venv`
/// installs it in .venv-tests).
final class WARCTests: GreenTestCase {
    // MARK: - Read back by warcio

    func testEveryDigestOfAFileOfExchangesPassesWarcioCheck() throws {
        try withExchangeFile { path, exchanges in
            let run = try TestVenv.run(["check", "-v", path], tool: "warcio")
            XCTAssertEqual(run.status, 0, "warcio check failed:\n\(run.stdout)\(run.stderr)")
            // -v prints a line per record: every record had a digest, checked.
            let passes = run.stdout.components(separatedBy: "digest pass").count - 1
            XCTAssertEqual(passes, 1 + 2 * exchanges.count, run.stdout)
            XCTAssertFalse(run.stdout.contains("failed"), run.stdout)
        }
    }

    func testWarcioReadsBackEachRecordWithItsFieldsHTTPHeadersAndDecodedPayload() throws {
        try withExchangeFile { path, exchanges in
            let expected = exchanges.map { e -> [String: Any] in
                [
                    "uri": e.uri, "ip": e.ip ?? NSNull(), "truncated": e.truncated?.rawValue ?? NSNull(),
                    "method": e.method,
                    "request_headers": e.requestHeaders.map { [$0.0, $0.1] },
                    "request_body": Data(e.requestBody).base64EncodedString(),
                    "status": String(e.status),
                    "response_headers": e.responseHeaders.map { [$0.0, $0.1] },
                    "decoded_body": Data(e.decodedBody).base64EncodedString(),
                ]
            }
            let json = (path as NSString).deletingLastPathComponent + "/expected.json"
            try JSONSerialization.data(withJSONObject: expected).write(to: URL(fileURLWithPath: json))
            let run = try TestVenv.run(["-c", WARCTests.readBackScript, "records", path, json])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(run.stdout, "records \(1 + 2 * exchanges.count)\n", run.stderr)
        }
    }

    func testEachRecordIsAGzipMemberOfItsOwn() throws {
        try withExchangeFile { path, exchanges in
            let run = try TestVenv.run(["-c", WARCTests.readBackScript, "members", path])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(run.stdout, "members \(1 + 2 * exchanges.count)\n", run.stderr)
        }
    }

    // MARK: - Digests, dates, errors

    func testDigestsAreSHA1InBase32() {
        XCTAssertEqual(WARCDigest.sha1([][...]), "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ")
        XCTAssertEqual(WARCDigest.sha1(Array("abc".utf8)[...]), "sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5")
    }

    func testBase32IsRFC4648WithPadding() {
        let vectors = ["": "", "f": "MY======", "fo": "MZXQ====", "foo": "MZXW6===", "foob": "MZXW6YQ=",
                       "fooba": "MZXW6YTB", "foobar": "MZXW6YTBOI======"]
        for (input, output) in vectors {
            XCTAssertEqual(WARCDigest.base32(Array(input.utf8)[...]), output, input)
        }
    }

    func testThePayloadBeginsAfterTheFirstBlankLineAsWarcioReadsIt() {
        func offset(_ s: String) -> Int { WARCDigest.httpPayloadOffset(Array(s.utf8)) }
        // Offsets as warcio's StatusAndHeadersParser leaves its stream.
        XCTAssertEqual(offset("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody\r\n\r\nmore"), 25)
        // LF-only lines, and a line of spaces, end the headers too.
        XCTAssertEqual(offset("HTTP/1.1 200 OK\nA: b\n\nbody"), 22)
        XCTAssertEqual(offset("HTTP/1.1 200 OK\r\nA: b\r\n  \r\nbody"), 27)
        // No blank line: all head, no payload.
        XCTAssertEqual(offset("HTTP/1.1 200 OK\r\nA: b"), 21)
        XCTAssertEqual(offset("\r\nHTTP/1.1 200 OK\r\n\r\nx"), 2)
        XCTAssertEqual(offset(""), 0)
    }

    func testWARCDatesAreUTCToTheMicrosecond() {
        XCTAssertEqual(WARCRecord.formatDate(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000000Z")
        XCTAssertEqual(WARCRecord.formatDate(Date(timeIntervalSince1970: 1_798_761_599.25)), "2026-12-31T23:59:59.250000Z")
    }

    func testRecordIDsAreUniqueUUIDURNs() {
        let ids = (0..<100).map { _ in WARCRecord.makeID() }
        XCTAssertEqual(Set(ids).count, ids.count)
        for id in ids {
            XCTAssertTrue(id.hasPrefix("<urn:uuid:") && id.hasSuffix(">"), id)
            XCTAssertNotNil(UUID(uuidString: String(id.dropFirst(10).dropLast())), id)
        }
    }

    func testAFullDiskIsAnErrorNamingTheFile() {
        XCTAssertThrowsError(try WARCWriter(path: "/dev/full")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("/dev/full") && text.contains("No space left on device"), text)
        }
    }

    func testAFileThatCannotBeCreatedIsAnErrorNamingIt() {
        XCTAssertThrowsError(try WARCWriter(path: "/nonexistent-dir/x.warc.gz")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("/nonexistent-dir/x.warc.gz") && text.contains("No such file"), text)
        }
    }

    func testALineBreakInTheTargetURIIsRefusedAndNothingIsWritten() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/x.warc.gz"
            let writer = try WARCWriter(path: path)
            let size = try fileSize(path)
            XCTAssertThrowsError(try writer.writeExchange(
                targetURI: "http://h/\r\nWARC-Type: resource", date: Date(), ipAddress: nil,
                request: Array("GET / HTTP/1.1\r\n\r\n".utf8), response: Array("HTTP/1.1 200 OK\r\n\r\n".utf8)))
            XCTAssertEqual(try fileSize(path), size)
            try writer.close()
        }
    }

    func testWritingAfterCloseThrows() throws {
        try withTemporaryDirectory { dir in
            let writer = try WARCWriter(path: dir + "/x.warc.gz")
            try writer.close()
            XCTAssertThrowsError(try writer.writeExchange(
                targetURI: "http://h/", date: Date(), ipAddress: nil,
                request: Array("GET / HTTP/1.1\r\n\r\n".utf8), response: Array("HTTP/1.1 200 OK\r\n\r\n".utf8))) { error in
                XCTAssertTrue("\(error)".contains("closed"), "\(error)")
            }
        }
    }

    // MARK: - The exchanges

    struct Exchange {
        var uri: String
        var ip: String?
        var method = "GET"
        var target = "/"
        var requestHeaders: [(String, String)]
        var requestBody: [UInt8] = []
        var status = 200
        var reason = "OK"
        var responseHeaders: [(String, String)]
        /// The body as on the wire.
        var rawBody: [UInt8]
        /// What a reader hands out: transfer and content coding undone.
        var decodedBody: [UInt8]
        var truncated: WARCTruncation?

        var request: [UInt8] {
            Array(("\(method) \(target) HTTP/1.1\r\n" + requestHeaders.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n").utf8)
                + requestBody
        }

        var response: [UInt8] {
            Array(("HTTP/1.1 \(status) \(reason)\r\n" + responseHeaders.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n").utf8)
                + rawBody
        }
    }

    /// Plain, chunked, gzip, chunked gzip, empty, truncated and binary
    /// responses (the binary one after a POST with a body), written to a
    /// fresh .warc.gz.
    private func withExchangeFile(_ body: (_ path: String, _ exchanges: [Exchange]) throws -> Void) throws {
        let text = Array(String(repeating: "zipped text ", count: 200).utf8)
        let gzipped = try gzip(text)
        let binary = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) } + Array("\r\n\r\n\0".utf8)
        func chunked(_ bytes: [UInt8], size: Int) -> [UInt8] {
            var out: [UInt8] = []
            var rest = bytes[...]
            while !rest.isEmpty {
                let piece = rest.prefix(size)
                out += Array("\(String(piece.count, radix: 16))\r\n".utf8) + piece + Array("\r\n".utf8)
                rest = rest.dropFirst(piece.count)
            }
            return out + Array("0\r\n\r\n".utf8)
        }
        let host: [(String, String)] = [("Host", "example.test"), ("User-Agent", "swift-green-crawl/0.1")]
        let truncatedBody = Array(String(repeating: "x", count: 1000).utf8)
        let exchanges = [
            Exchange(uri: "http://example.test/plain", ip: "127.0.0.1", target: "/plain", requestHeaders: host,
                     responseHeaders: [("Content-Type", "text/plain"), ("Content-Length", "5")],
                     rawBody: Array("hello".utf8), decodedBody: Array("hello".utf8)),
            Exchange(uri: "http://example.test/chunked", ip: "127.0.0.1", target: "/chunked", requestHeaders: host,
                     responseHeaders: [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")],
                     rawBody: chunked(Array("one,two,three".utf8), size: 4), decodedBody: Array("one,two,three".utf8)),
            Exchange(uri: "https://example.test/gzip", ip: "::1", target: "/gzip", requestHeaders: host,
                     responseHeaders: [("Content-Type", "text/plain"), ("Content-Encoding", "gzip"),
                                       ("Content-Length", String(gzipped.count))],
                     rawBody: gzipped, decodedBody: text),
            Exchange(uri: "http://example.test/chunked-gzip", ip: nil, target: "/chunked-gzip", requestHeaders: host,
                     responseHeaders: [("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")],
                     rawBody: chunked(gzipped, size: 100), decodedBody: text),
            Exchange(uri: "http://example.test/empty", ip: "127.0.0.1", target: "/empty", requestHeaders: host,
                     status: 204, reason: "No Content", responseHeaders: [], rawBody: [], decodedBody: []),
            Exchange(uri: "http://example.test/big", ip: "127.0.0.1", target: "/big", requestHeaders: host,
                     responseHeaders: [("Content-Type", "text/plain"), ("Content-Length", "100000")],
                     rawBody: truncatedBody, decodedBody: truncatedBody, truncated: .length),
            Exchange(uri: "http://example.test/upload?q=1&r=%20", ip: "10.0.0.1", method: "POST", target: "/upload?q=1&r=%20",
                     requestHeaders: host + [("Content-Type", "application/octet-stream"), ("Content-Length", "5")],
                     requestBody: [0, 1, 13, 10, 255],
                     responseHeaders: [("Content-Type", "application/octet-stream"), ("Content-Length", String(binary.count))],
                     rawBody: binary, decodedBody: binary),
        ]
        try withTemporaryDirectory { dir in
            let path = dir + "/crawl.warc.gz"
            let writer = try WARCWriter(path: path, extraInfo: [("robots", "obey")])
            for (i, e) in exchanges.enumerated() {
                try writer.writeExchange(targetURI: e.uri, date: Date(timeIntervalSince1970: 1_798_000_000 + Double(i)),
                                         ipAddress: e.ip, request: e.request, response: e.response, truncated: e.truncated)
            }
            try writer.close()
            try body(path, exchanges)
        }
    }

    private func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let child = try Subprocess(["gzip", "-c", "-n"], stdin: .pipe, stdout: .pipe, stderr: .null)
        return try withTimeout(10) { try child.communicate(input: bytes).stdout }
    }

    private func fileSize(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
    }

    /// Reads a WARC file with warcio (`records`: every record against the
    /// expectations; `members`: one record per gzip member) and prints
    /// what it counted, or exits non-zero saying what differs.
    static let readBackScript = #"""
        import base64, json, os, re, sys, zlib
        from warcio.archiveiterator import ArchiveIterator

        def check(condition, message):
            if not condition:
                sys.exit("FAIL: " + message)

        mode, path = sys.argv[1], sys.argv[2]
        if mode == "members":
            data = open(path, "rb").read()
            members = 0
            while data:
                d = zlib.decompressobj(31)
                record = d.decompress(data) + d.flush()
                check(d.eof, "member %d does not end" % members)
                head, _, rest = record.partition(b"\r\n\r\n")
                check(head.startswith(b"WARC/1.1\r\n"), "member %d does not start a record" % members)
                length = [int(l.split(b":", 1)[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                check(len(length) == 1 and len(rest) == length[0] + 4 and rest.endswith(b"\r\n\r\n"),
                      "member %d is not exactly one record" % members)
                members += 1
                data = d.unused_data
            print("members", members)
            sys.exit(0)

        expected = json.load(open(sys.argv[3]))
        records = []
        with open(path, "rb") as f:
            for r in ArchiveIterator(f):
                records.append((r.rec_type, r.rec_headers, r.http_headers, r.content_stream().read()))
        check(len(records) == 1 + 2 * len(expected), "%d records" % len(records))

        kind, info_headers, _, info = records[0]
        info_id = info_headers.get_header("WARC-Record-ID")
        check(kind == "warcinfo", "the first record is " + kind)
        check(info_headers.get_header("WARC-Filename") == os.path.basename(path), "WARC-Filename")
        check(info_headers.get_header("Content-Type") == "application/warc-fields", "warcinfo Content-Type")
        for line in [b"software: swift-green-crawl/0.1", b"format: WARC File Format 1.1", b"robots: obey",
                     b"conformsTo: http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"]:
            check(line + b"\r\n" in info, "warcinfo lacks " + line.decode())
        uuid = re.compile(r"^<urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}>$")
        date = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        check(uuid.match(info_id), "warcinfo id " + info_id)

        for i, e in enumerate(expected):
            (qtype, qh, qhttp, qbody), (ptype, ph, phttp, pbody) = records[1 + 2 * i], records[2 + 2 * i]
            where = e["uri"] + ": "
            check((qtype, ptype) == ("request", "response"), where + "types %s %s" % (qtype, ptype))
            for h, t in [(qh, "request"), (ph, "response")]:
                check(h.protocol == "WARC/1.1", where + "version " + h.protocol)
                check(h.get_header("WARC-Target-URI") == e["uri"], where + "target " + str(h.get_header("WARC-Target-URI")))
                check(h.get_header("WARC-Warcinfo-ID") == info_id, where + "warcinfo id")
                check(h.get_header("WARC-IP-Address") == e["ip"], where + "ip " + str(h.get_header("WARC-IP-Address")))
                check(h.get_header("Content-Type") == "application/http;msgtype=" + t, where + "content type")
                check(uuid.match(h.get_header("WARC-Record-ID")), where + "record id")
                check(date.match(h.get_header("WARC-Date")), where + "date " + h.get_header("WARC-Date"))
            check(qh.get_header("WARC-Concurrent-To") == ph.get_header("WARC-Record-ID"), where + "request -> response")
            check(ph.get_header("WARC-Concurrent-To") == qh.get_header("WARC-Record-ID"), where + "response -> request")
            check(qh.get_header("WARC-Record-ID") != ph.get_header("WARC-Record-ID"), where + "one id for two records")
            check(qh.get_header("WARC-Truncated") is None, where + "truncated request")
            check(ph.get_header("WARC-Truncated") == e["truncated"], where + "truncated " + str(ph.get_header("WARC-Truncated")))
            check(qhttp.protocol == e["method"], where + "method " + qhttp.protocol)
            check([list(h) for h in qhttp.headers] == e["request_headers"], where + "request headers %r" % qhttp.headers)
            check(qbody == base64.b64decode(e["request_body"]), where + "request body %r" % qbody[:100])
            check(phttp.get_statuscode() == e["status"], where + "status " + phttp.get_statuscode())
            check([list(h) for h in phttp.headers] == e["response_headers"], where + "response headers %r" % phttp.headers)
            check(pbody == base64.b64decode(e["decoded_body"]), where + "payload %r" % pbody[:100])
        print("records", len(records))
        """#
}
