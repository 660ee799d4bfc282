import Foundation
import Glibc
import Green
@testable import GreenRedis
import XCTest
import GreenTestSupport

/// The Redis client against a real `redis-server` (Debian's) the test
/// starts on a free loopback port.
final class RedisTests: GreenTestCase {
    private var servers: [RedisServer] = []

    override func tearDown() {
        servers.removeAll()
        super.tearDown()
    }

    /// Starts redis-server on a free loopback port; returns the port.
    private func startRedis(extra: [String] = []) throws -> UInt16 {
        let server = try RedisServer(extra: extra)
        servers.append(server)
        return server.port
    }

    func testCommandsRepliesAndErrorsNamingTheCommand() throws {
        let port = try startRedis()
        let redis = try RedisClient(url: "redis://127.0.0.1:\(port)")
        XCTAssertEqual(try redis.send("SET", "k", "hello"), .simple("OK"))
        XCTAssertEqual(try redis.send("GET", "k").string, "hello")
        XCTAssertEqual(try redis.send("GET", "missing"), .null)
        XCTAssertEqual(try redis.send("INCR", "n").int, 1)
        XCTAssertEqual(try redis.send("RPUSH", "list", "a", "b").int, 2)
        XCTAssertEqual(try redis.send("LRANGE", "list", "0", "-1").array?.compactMap(\.string), ["a", "b"])
        XCTAssertThrowsError(try redis.send("INCR", "k")) { error in
            guard let e = error as? RedisError, case .reply(let r) = e.kind else { return XCTFail("\(error)") }
            XCTAssertEqual(e.command, "INCR")
            XCTAssertTrue(r.hasPrefix("ERR"), r)
            XCTAssertTrue(e.description.contains("Redis INCR failed: the server replied"), e.description)
        }
        XCTAssertThrowsError(try redis.send("LPUSH", "k", "x")) { error in
            XCTAssertTrue("\(error)".contains("WRONGTYPE"), "\(error)")
        }
        // Binary-safe values.
        let bytes: [UInt8] = [0, 13, 10, 255, 36, 42]
        try redis.send(bytes: [Array("SET".utf8), Array("bin".utf8), bytes])
        XCTAssertEqual(try redis.send("GET", "bin"), .bulk(bytes))
    }

    func testAPipelineOfAThousandCommandsAndAnErrorInItsPlace() throws {
        let port = try startRedis()
        let redis = try RedisClient(url: "redis://127.0.0.1:\(port)")
        let replies = try redis.pipeline(Array(repeating: ["INCR", "counter"], count: 1000))
        XCTAssertEqual(replies.map { $0.int ?? -1 }, Array(1...1000))
        let mixed = try redis.pipeline([["SET", "s", "x"], ["INCR", "s"], ["GET", "s"]])
        XCTAssertEqual(mixed[0], .simple("OK"))
        guard case .error(let e) = mixed[1] else { return XCTFail("\(mixed[1])") }
        XCTAssertTrue(e.hasPrefix("ERR"), e)
        XCTAssertEqual(mixed[2].string, "x")
    }

    func testManyGreenletsShareAPoolOfConnections() throws {
        let port = try startRedis()
        let redis = try RedisClient(url: "redis://127.0.0.1:\(port)", poolSize: 4)
        let workers = (0..<50).map { _ in
            spawn { for _ in 0..<100 { try redis.send("INCR", "shared") } }
        }
        try joinAll(workers, raiseError: true)
        XCTAssertEqual(try redis.send("GET", "shared").int, 5000)
        XCTAssertLessThanOrEqual(redis.connectionsMade, 4)
    }

    func testPasswordAndDatabaseComeFromTheURL() throws {
        let port = try startRedis(extra: ["--requirepass", "s3cret"])
        let db3 = try RedisClient(url: "redis://:s3cret@127.0.0.1:\(port)/3")
        try db3.send("SET", "where", "three")
        let db0 = try RedisClient(url: "redis://:s3cret@127.0.0.1:\(port)/0")
        XCTAssertEqual(try db0.send("GET", "where"), .null)
        XCTAssertEqual(try db3.send("GET", "where").string, "three")
        let wrong = try RedisClient(url: "redis://:nope@127.0.0.1:\(port)", reconnectAttempts: 0)
        XCTAssertThrowsError(try wrong.send("PING")) { error in
            guard let e = error as? RedisError, case .reply(let r) = e.kind else { return XCTFail("\(error)") }
            XCTAssertEqual(e.command, "AUTH")
            XCTAssertTrue(r.contains("WRONGPASS") || r.contains("invalid"), r)
        }
        let none = try RedisClient(url: "redis://127.0.0.1:\(port)", reconnectAttempts: 0)
        XCTAssertThrowsError(try none.send("GET", "where")) { XCTAssertTrue("\($0)".contains("NOAUTH"), "\($0)") }
        XCTAssertThrowsError(try RedisURL("http://x/")) { XCTAssertTrue("\($0)".contains("redis://"), "\($0)") }
        XCTAssertThrowsError(try RedisURL("redis://h/x")) { XCTAssertTrue("\($0)".contains("database"), "\($0)") }
    }

    func testARestartedServerIsReachedAgainByReconnecting() throws {
        let port = try startRedis()
        let redis = try RedisClient(url: "redis://127.0.0.1:\(port)", reconnectAttempts: 8)
        try redis.send("SET", "before", "1")
        // The server goes away; it comes back on the same port (empty: it
        // keeps no files) while the next command is retrying.
        let server = servers[0]
        server.stop()
        let restarter = spawn {
            try Green.sleep(0.2)
            try server.start()
        }
        XCTAssertEqual(try redis.send("PING"), .simple("PONG"))
        try restarter.join()
        XCTAssertEqual(try redis.send("GET", "before"), .null, "a new, empty server")
        XCTAssertEqual(redis.connectionsMade, 2)
    }

    func testAServerThatNeverAnswersTimesOutWithoutStallingOthers() throws {
        try withSilentServer { port, ticks in
            let redis = try RedisClient(url: "redis://127.0.0.1:\(port)", timeout: 0.3)
            XCTAssertThrowsError(try redis.send("PING")) { error in
                guard let e = error as? RedisError, case .timedOut = e.kind else { return XCTFail("\(error)") }
                XCTAssertEqual(e.command, "PING")
            }
            XCTAssertGreaterThan(ticks(), 5)
        }
    }

    func testRESPParsingOfEveryTypeFedByteByByte() throws {
        let wire = "+OK\r\n-ERR bad\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n:1\r\n$1\r\nx\r\n_\r\n#t\r\n,3.5\r\n"
            + "%1\r\n+k\r\n:7\r\n~2\r\n:1\r\n:2\r\n>2\r\n+message\r\n+hi\r\n=8\r\ntxt:abcd\r\n!3\r\nERR\r\n"
        let replies = RESPReader(BufferedReader(ScriptedStream(Array(wire.utf8).map { [$0] }), capacity: 16))
        var values: [RedisValue] = []
        while let v = try replies.next(timeout: nil) {
            values.append(v)
            if values.count > 20 { break }
        }
        XCTAssertEqual(values, [
            .simple("OK"), .error("ERR bad"), .integer(42), .bulk(Array("hello".utf8)), .null,
            .array([.integer(1), .bulk([UInt8(ascii: "x")])]), .null, .boolean(true), .double(3.5),
            .map([(.simple("k"), .integer(7))]), .set([.integer(1), .integer(2)]),
            .push([.simple("message"), .simple("hi")]), .bulk(Array("abcd".utf8)), .error("ERR"),
        ])
        func firstReply(_ wire: String) throws -> RedisValue? {
            try RESPReader(BufferedReader(ScriptedStream(wire))).next(timeout: nil)
        }
        XCTAssertThrowsError(try firstReply("?what\r\n")) { XCTAssertTrue($0 is RESPProtocolError, "\($0)") }
        XCTAssertThrowsError(try firstReply("$999999999999\r\n")) { XCTAssertTrue($0 is RESPProtocolError, "\($0)") }
        XCTAssertThrowsError(try firstReply(":12x\r\n")) { XCTAssertTrue($0 is RESPProtocolError, "\($0)") }
        XCTAssertThrowsError(try firstReply(":99999999999999999999\r\n")) { XCTAssertTrue($0 is RESPProtocolError, "\($0)") }
        XCTAssertThrowsError(try firstReply("$5\r\nhelloXY")) { XCTAssertTrue($0 is RESPProtocolError, "\($0)") }
        XCTAssertEqual(try firstReply(":-17\r\n"), .integer(-17))
        XCTAssertEqual(try firstReply("*0\r\n"), .array([]))
        XCTAssertNil(try firstReply(""), "the end before a reply")
        // The end inside a reply: in its line, its bulk string, its array.
        for cut in ["+OK", "$5\r\nhel", "*2\r\n:1\r\n"] {
            XCTAssertThrowsError(try firstReply(cut), cut) {
                guard case .unexpectedEnd? = $0 as? BufferedReadError else { return XCTFail("\($0)") }
            }
        }
    }

    func testALargeReplyCutAnywhereIsParsedInOnePass() throws {
        // An array of 20,000 elements (bulk strings, integers, a nested
        // map) and a 300 KB bulk string, cut into 61-byte chunks.
        var wire = "*20000\r\n"
        var expected: [RedisValue] = []
        for i in 0..<20_000 {
            switch i % 3 {
            case 0: wire += "$\(String(i).utf8.count)\r\n\(i)\r\n"; expected.append(.bulk(Array(String(i).utf8)))
            case 1: wire += ":\(i)\r\n"; expected.append(.integer(i))
            default: wire += "%1\r\n+k\r\n*1\r\n:\(i)\r\n"; expected.append(.map([(.simple("k"), .array([.integer(i)]))]))
            }
        }
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 300_000)
        let bytes = Array(wire.utf8) + Array("$300000\r\n".utf8) + big + [13, 10]
        let chunks = stride(from: 0, to: bytes.count, by: 61).map { Array(bytes[$0..<min($0 + 61, bytes.count)]) }
        let parser = RESPReader(BufferedReader(ScriptedStream(chunks)))
        var values: [RedisValue] = []
        while let v = try parser.next(timeout: nil) {
            values.append(v)
            if values.count > 2 { break }
        }
        XCTAssertEqual(values.count, 2)
        XCTAssertEqual(values.first, .array(expected))
        XCTAssertEqual(values.last, .bulk(big))
        // Every element parsed once: the outer array, 20,000 elements, 3 more
        // per map (its key, its array, the integer in it), the big string.
        XCTAssertEqual(parser.elementsParsed, 1 + 20_000 + 6_666 * 3 + 1)
    }
}
