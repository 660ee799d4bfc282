import Foundation
import Glibc
@testable import Green
import XCTest
import GreenTestSupport

/// Buffered streams: lines, delimited fields and exact counts read
/// however the input is cut, the `lines` loop's endings, the writer's
/// order, and the same over loopback TCP (over TLS: TLSTests).
final class BufferedStreamTests: GreenTestCase {
    private let text = "first line\r\nsecond\n\nfourth has\ta\rcarriage return\r\n\r\nlast without newline"
    private let expectedLines = ["first line", "second", "", "fourth has\ta\rcarriage return", "", "last without newline"]

    private func allLines(_ reader: BufferedReader, maxLength: Int = 8192) throws -> [String] {
        var lines: [String] = []
        while let line = try reader.readLine(maxLength: maxLength) {
            lines.append(line)
            XCTAssertLessThanOrEqual(lines.count, 100, "no end of stream")
            if lines.count > 100 { break }
        }
        return lines
    }

    // MARK: - Lines

    func testReadLineGivesTheSameLinesOnEverySplitOfTheInput() throws {
        let splits = everySplit(Array(text.utf8))
        XCTAssertGreaterThan(splits.count, 2_000)
        for capacity in [16, 16 * 1024] {
            for chunks in splits {
                let reader = BufferedReader(ScriptedStream(chunks), capacity: capacity)
                XCTAssertEqual(try allLines(reader), expectedLines, "capacity \(capacity), chunks \(chunks.map(\.count))")
                XCTAssertNil(try reader.readLine(), "the end again")
                XCTAssertTrue(reader.isAtEnd)
            }
        }
    }

    func testTheEndOfTheStreamIsAskedForOnce() throws {
        let stream = ScriptedStream("a\nb")
        let reader = BufferedReader(stream)
        XCTAssertEqual(try allLines(reader), ["a", "b"])
        XCTAssertNil(try reader.readLine())
        XCTAssertEqual(try reader.readLineBytes(), nil)
        XCTAssertEqual(stream.recvBufferSizes.count, 2, "one read with the bytes, one that saw the end")
    }

    func testReadLineRepairsInvalidUTF8AndReadLineBytesKeepsIt() throws {
        let bytes: [UInt8] = [0x61, 0xFF, 0x62, 0x0A, 0x63, 0xC3, 0x0D, 0x0A]
        let reader = BufferedReader(ScriptedStream([bytes + bytes]))
        XCTAssertEqual(try reader.readLine(), "a\u{FFFD}b")
        XCTAssertEqual(try reader.readLine(), "c\u{FFFD}")
        XCTAssertEqual(try reader.readLineBytes(), [0x61, 0xFF, 0x62])
        XCTAssertEqual(try reader.readLineBytes(), [0x63, 0xC3])
        XCTAssertNil(try reader.readLineBytes())
    }

    func testALineOverMaxLengthThrowsAndConsumesNothing() throws {
        for chunks in everySplit(Array("0123456789\nok\n12345\r\n123456\n".utf8)) {
            let reader = BufferedReader(ScriptedStream(chunks), capacity: 16)
            XCTAssertThrowsError(try reader.readLine(maxLength: 5)) {
                XCTAssertEqual($0 as? BufferedReadError, .lineTooLong(limit: 5))
            }
            XCTAssertThrowsError(try reader.readLine(maxLength: 9), "again: nothing was consumed") {
                XCTAssertEqual($0 as? BufferedReadError, .lineTooLong(limit: 9))
            }
            XCTAssertEqual(try reader.readExactly(11), Array("0123456789\n".utf8))
            XCTAssertEqual(try reader.readLine(maxLength: 5), "ok")
            XCTAssertEqual(try reader.readLine(maxLength: 5), "12345", "exactly the limit, before \\r\\n")
            XCTAssertThrowsError(try reader.readLine(maxLength: 5)) {
                XCTAssertEqual($0 as? BufferedReadError, .lineTooLong(limit: 5))
            }
            XCTAssertEqual(try reader.readLine(maxLength: 6), "123456")
            XCTAssertNil(try reader.readLine(maxLength: 5))
        }
        // A last line without a newline counts too.
        let tail = BufferedReader(ScriptedStream("abcdef"))
        XCTAssertThrowsError(try tail.readLine(maxLength: 5)) {
            XCTAssertEqual($0 as? BufferedReadError, .lineTooLong(limit: 5))
        }
        XCTAssertEqual(try tail.readLine(maxLength: 6), "abcdef")
    }

    func testALineLongerThanTheBufferGrowsItOnlyAsFarAsNeeded() throws {
        let long = String(repeating: "x", count: 50_000)
        let bytes = Array("\(long)\nshort\n".utf8)
        let reader = BufferedReader(ScriptedStream(bytes.map { [$0] }), capacity: 1024)
        XCTAssertEqual(try reader.readLine(maxLength: 60_000), long)
        XCTAssertEqual(try reader.readLine(), "short")
        XCTAssertLessThanOrEqual(reader.capacity, 65_536)
        XCTAssertLessThanOrEqual(reader.bytesMoved, 2 * 50_000, "the buffer's moves stay linear")
        // Past the limit: an error, not an ever larger buffer.
        let endless = BufferedReader(ScriptedStream([[UInt8]](repeating: [0x78], count: 100_000)), capacity: 1024)
        XCTAssertThrowsError(try endless.readLine(maxLength: 4096)) {
            XCTAssertEqual($0 as? BufferedReadError, .lineTooLong(limit: 4096))
        }
        XCTAssertLessThanOrEqual(endless.capacity, 8192)
    }

    func testManyShortLinesCutAnywhereMoveEachByteAtMostOnce() throws {
        var bytes: [UInt8] = []
        for i in 0..<3_000 { bytes += Array("line \(i) \(String(repeating: "y", count: i % 97))\n".utf8) }
        for chunkSize in [1, 7, 1000, 4099] {
            let chunks = stride(from: 0, to: bytes.count, by: chunkSize).map { Array(bytes[$0..<min($0 + chunkSize, bytes.count)]) }
            let reader = BufferedReader(ScriptedStream(chunks), capacity: 4096)
            var count = 0
            while let line = try reader.readLine() {
                XCTAssertTrue(line.hasPrefix("line \(count) "), line)
                count += 1
                if count > 3_000 { break }
            }
            XCTAssertEqual(count, 3_000)
            XCTAssertLessThanOrEqual(reader.bytesMoved, bytes.count, "chunks of \(chunkSize)")
            XCTAssertEqual(reader.capacity, 4096, "short lines never grow the buffer")
        }
    }

    // MARK: - Delimiters and counts

    func testReadUntilAMultiByteDelimiterOnEverySplit() throws {
        let input = "a\r\nb\r\n\r\nc\r\r\n\r\n\r\n\r\n\r\r\n\r\ntail\r\n\r"
        let delimiter = Array("\r\n\r\n".utf8)
        let expected = ["a\r\nb\r\n\r\n", "c\r\r\n\r\n", "\r\n\r\n", "\r\r\n\r\n", "tail\r\n\r"].map { Array($0.utf8) }
        for chunks in everySplit(Array(input.utf8)) {
            for capacity in [16, 1024] {
                let reader = BufferedReader(ScriptedStream(chunks), capacity: capacity)
                var fields: [[UInt8]] = []
                while let field = try reader.read(until: delimiter, maxLength: 64) {
                    fields.append(field)
                    if fields.count > 10 { break }
                }
                XCTAssertEqual(fields, expected, "chunks \(chunks.map(\.count))")
            }
        }
        // A single byte, and the limit counting the delimiter.
        let reader = BufferedReader(ScriptedStream("k=v;key=value;"))
        XCTAssertEqual(try reader.read(until: UInt8(ascii: ";"), maxLength: 4), Array("k=v;".utf8))
        XCTAssertThrowsError(try reader.read(until: UInt8(ascii: ";"), maxLength: 9)) {
            XCTAssertEqual($0 as? BufferedReadError, .lineTooLong(limit: 9))
        }
        XCTAssertEqual(try reader.read(until: UInt8(ascii: ";"), maxLength: 10), Array("key=value;".utf8))
        XCTAssertNil(try reader.read(until: UInt8(ascii: ";")))
    }

    func testReadExactlyAcrossEverySplitAndAtTheEnd() throws {
        let bytes = (0..<40).map { UInt8($0) }
        for chunks in everySplit(bytes) {
            let reader = BufferedReader(ScriptedStream(chunks), capacity: 16)
            for k in 0..<5 { XCTAssertEqual(try reader.readExactly(7), Array(bytes[(7 * k)..<(7 * k + 7)])) }
            XCTAssertEqual(try reader.readExactly(0), [])
            XCTAssertThrowsError(try reader.readExactly(7)) {
                XCTAssertEqual($0 as? BufferedReadError, .unexpectedEnd(needed: 7, got: 5))
            }
            // Nothing was consumed: the last five are still there.
            var rest = [UInt8](repeating: 0, count: 16)
            let n = try rest.withUnsafeMutableBytes { try reader.read(into: $0) }
            XCTAssertEqual(Array(rest[..<n]), Array(bytes[35...]))
            XCTAssertEqual(try rest.withUnsafeMutableBytes { try reader.read(into: $0) }, 0)
        }
    }

    /// A push parser's way in: it takes what it can, the rest stays for
    /// the next call; a throw consumes nothing; false at the end.
    func testWithAvailableBytesConsumesWhatTheBodySaysOnEverySplit() throws {
        let bytes = (0..<40).map { UInt8($0) }
        for chunks in everySplit(bytes) {
            let reader = BufferedReader(ScriptedStream(chunks), capacity: 16)
            var taken: [UInt8] = []
            var calls = 0
            while try reader.withAvailableBytes({ available in
                calls += 1
                // Three bytes at most per call, and none on every fourth.
                let n = calls % 4 == 0 ? 0 : min(3, available.count)
                taken += available[..<n]
                return n
            }) {}
            XCTAssertEqual(taken, bytes)
            XCTAssertFalse(try reader.withAvailableBytes { _ in XCTFail("called at the end"); return 0 })
        }
        let reader = BufferedReader(ScriptedStream("abc"))
        XCTAssertThrowsError(try reader.withAvailableBytes { _ in throw TestError("parse") })
        XCTAssertEqual(try reader.readExactly(3), Array("abc".utf8), "a throw consumed nothing")
    }

    func testMixingReadLineReadExactlyAndReadIntoLosesNoBytes() throws {
        let input = Array("HEADER 5\r\nhelloNEXT\nrest of the stream".utf8)
        for chunks in everySplit(input) {
            let reader = BufferedReader(ScriptedStream(chunks), capacity: 16)
            XCTAssertEqual(try reader.readLine(), "HEADER 5")
            XCTAssertEqual(try reader.readExactly(5), Array("hello".utf8))
            XCTAssertEqual(try reader.peek(4), Array("NEXT".utf8))
            XCTAssertEqual(try reader.readLine(), "NEXT")
            let rest = try readToTheEnd(bufferSize: 5, atMost: input.count) { try reader.read(into: $0) }
            XCTAssertEqual(String(decoding: rest, as: UTF8.self), "rest of the stream")
        }
    }

    func testLargeReadsGoStraightIntoTheCallersBuffer() throws {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let stream = ScriptedStream([Array(bytes[..<10]), Array(bytes[10...])])
        let reader = BufferedReader(stream, capacity: 1024)
        XCTAssertEqual(try reader.readExactly(4), Array(bytes[..<4]))
        XCTAssertEqual(try reader.readExactly(60_000), Array(bytes[4..<60_004]))
        XCTAssertEqual(stream.recvBufferSizes, [1024, 60_000 - 6], "the rest of a large read went straight in")
        var big = [UInt8](repeating: 0, count: 50_000)
        let n = try big.withUnsafeMutableBytes { try reader.read(into: $0) }
        XCTAssertEqual(n, 39_996)
        XCTAssertEqual(Array(big[..<n]), Array(bytes[60_004...]))
        XCTAssertEqual(stream.recvBufferSizes.last, 50_000)
        XCTAssertEqual(reader.bytesMoved, 0)
    }

    func testATimedOutReadCanBeRetriedWithoutLosingBytes() throws {
        let (a, b) = try connectedSocketPair()
        defer { a.close(); b.close() }
        let reader = BufferedReader(b)
        try a.sendAll("partial li")
        XCTAssertThrowsError(try reader.readLine(timeout: 0.02)) {
            XCTAssertEqual(($0 as? SocketError)?.reason, .timedOut(seconds: 0.02), "\($0)")
        }
        XCTAssertThrowsError(try reader.readExactly(20, timeout: 0.02))
        try a.sendAll("ne\nand 10 bytes")
        XCTAssertEqual(try reader.readLine(timeout: 5), "partial line")
        XCTAssertEqual(try reader.readExactly(5, timeout: 5), Array("and 1".utf8))
    }

    func testASecondGreenletReadingTheSameReaderGetsBusy() throws {
        let (a, b) = try connectedSocketPair()
        defer { a.close(); b.close() }
        let reader = BufferedReader(b)
        let first = spawn { try reader.readLine() }
        defer { try? first.kill(timeout: 5) }
        try Green.sleep(0)
        XCTAssertThrowsError(try reader.readLine()) { XCTAssertEqual($0 as? BufferedReadError, .busy) }
        try a.sendAll("for the first\n")
        XCTAssertEqual(try first.get(timeout: 5), "for the first")
        // Refused even with bytes buffered: the waiter's line is whole.
        try a.sendAll("abc")
        XCTAssertEqual(try reader.peek(3), Array("abc".utf8))
        let waiter = spawn { try reader.readLine() }
        defer { try? waiter.kill(timeout: 5) }
        try Green.sleep(0)
        var taken = [UInt8](repeating: 0, count: 8)
        XCTAssertThrowsError(try taken.withUnsafeMutableBytes { try reader.read(into: $0) }) {
            XCTAssertEqual($0 as? BufferedReadError, .busy)
        }
        XCTAssertThrowsError(try reader.readExactly(2)) { XCTAssertEqual($0 as? BufferedReadError, .busy) }
        try a.sendAll("de\n")
        XCTAssertEqual(try waiter.get(timeout: 5), "abcde")
    }

    // MARK: - The lines loop

    func testTheLinesLoopEndsAtTheEndOfTheStream() throws {
        let reader = BufferedReader(ScriptedStream(Array(text.utf8).map { [$0] }), capacity: 16)
        let lines = reader.lines()
        var seen: [String] = []
        for line in lines { seen.append(line) }
        XCTAssertEqual(seen, expectedLines)
        XCTAssertNil(lines.error)
        XCTAssertNoThrow(try lines.check())
    }

    func testTheLinesLoopKeepsTheErrorThatEndedIt() throws {
        let tooLong = BufferedReader(ScriptedStream("short\n\(String(repeating: "z", count: 100))\nafter\n"))
        let lines = tooLong.lines(maxLength: 50)
        var seen: [String] = []
        for line in lines { seen.append(line) }
        XCTAssertEqual(seen, ["short"])
        XCTAssertEqual(lines.error as? BufferedReadError, .lineTooLong(limit: 50))
        XCTAssertThrowsError(try lines.check()) { XCTAssertEqual($0 as? BufferedReadError, .lineTooLong(limit: 50)) }
        XCTAssertNil(lines.next(), "ended for good")

        let stream = ScriptedStream("one\ntwo")
        stream.endError = SocketError(operation: "recv", reason: .system(errno: ECONNRESET))
        let broken = BufferedReader(stream).lines()
        seen = []
        for line in broken { seen.append(line) }
        XCTAssertEqual(seen, ["one"], "the unfinished line is not taken for a last line")
        XCTAssertEqual((broken.error as? SocketError)?.errno, ECONNRESET)
        // Not an interrupt: nothing is thrown at the next blocking call.
        try Green.sleep(0)
    }

    func testAKillDuringTheLinesLoopEndsItAndIsThrownAtTheNextBlockingCall() throws {
        let stream = ScriptedStream("a\nb\n")
        stream.parkAtEnd = true
        let lines = BufferedReader(stream).lines()
        try checkAKillDuringForInEndsTheLoop(over: lines) { seen in
            XCTAssertEqual(seen(), ["a", "b"])
        }
        XCTAssertNil(lines.error, "an interrupt is not kept as the loop's error")
    }

    func testATimeoutDuringTheLinesLoopIsThrownAtTheNextBlockingCallOnce() throws {
        let (a, b) = try connectedSocketPair()
        defer { a.close(); b.close() }
        try a.sendAll("x\ny\n")
        let lines = BufferedReader(b).lines()
        XCTAssertEqual(try forInUntilATimeoutExpires(over: lines), ["x", "y"])
        XCTAssertNil(lines.error)
    }

    // MARK: - The writer

    func testTheWriterGathersSmallWritesAndSendsInOrder() throws {
        let stream = ScriptedStream([])
        let writer = BufferedWriter(stream, capacity: 16)
        try writer.write("ab")
        try writer.write([0x63, 0x64])
        XCTAssertEqual(stream.sends, [], "nothing sent before a flush")
        XCTAssertEqual(writer.bufferedCount, 4)
        try writer.flush()
        try writer.flush()
        XCTAssertEqual(stream.sends, [Array("abcd".utf8)], "one send, none for an empty buffer")
        try writer.write("0123456789")
        try writer.write("ABCDEFGHIJ")   // does not fit: the first ten go first
        XCTAssertEqual(stream.sends.last, Array("0123456789".utf8))
        let large = [UInt8](repeating: 0x2A, count: 40)
        try writer.write(large)          // the buffered ten, then the large write straight through
        XCTAssertEqual(stream.sends.suffix(2), [Array("ABCDEFGHIJ".utf8), large])
        XCTAssertEqual(writer.bufferedCount, 0)
        try writer.write("é!")
        try writer.flush()
        XCTAssertEqual(stream.sends.joined().count, 4 + 10 + 10 + 40 + 3)
        XCTAssertEqual(Array(stream.sends.joined()), Array("abcd0123456789ABCDEFGHIJ".utf8) + large + Array("é!".utf8))
    }

    func testAFailedFlushThrowsAndDropsTheBufferedBytes() throws {
        let stream = ScriptedStream([])
        let writer = BufferedWriter(stream)
        try writer.write("lost")
        stream.sendError = SocketError(operation: "send", reason: .system(errno: EPIPE))
        XCTAssertThrowsError(try writer.flush()) { XCTAssertEqual(($0 as? SocketError)?.errno, EPIPE) }
        XCTAssertEqual(writer.bufferedCount, 0)
        stream.sendError = nil
        try writer.write("next")
        try writer.flush()
        XCTAssertEqual(stream.sends, [Array("next".utf8)])
    }

    // MARK: - Real connections

    func testReaderAndWriterOverLoopbackTCP() throws {
        let listener = try Socket.listen(on: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        // The server answers each line with its length and the line, as
        // "<n>\n<bytes>", until "quit".
        let server = spawn { () throws -> Int in
            let (conn, _) = try listener.accept(timeout: 5)
            defer { conn.close() }
            let reader = BufferedReader(conn)
            let writer = BufferedWriter(conn)
            var served = 0
            for line in reader.lines() {
                if line == "quit" { break }
                try writer.write("\(line.utf8.count)\n\(line)")
                served += 1
                if reader.bufferedCount == 0 { try writer.flush() }
            }
            try writer.flush()
            return served
        }
        defer { try? server.kill(timeout: 5) }
        let client = try Socket.connect(host: "127.0.0.1", port: listener.localAddress!.port, timeout: 5)
        defer { client.close() }
        let writer = BufferedWriter(client, capacity: 1000)
        let reader = BufferedReader(client, capacity: 100)
        let sent = (0..<2_000).map { "line \($0): " + String(repeating: "w", count: $0 % 300) }
        try withTimeout(20) {
            let pump = spawn {
                for line in sent { try writer.write(line + (line.utf8.count % 2 == 1 ? "\r\n" : "\n")) }
                try writer.write("quit\n")
                try writer.flush()
            }
            for line in sent {
                let count = try reader.readLine(maxLength: 10)
                XCTAssertEqual(count, String(line.utf8.count))
                XCTAssertEqual(String(decoding: try reader.readExactly(line.utf8.count), as: UTF8.self), line)
            }
            try pump.get()
        }
        XCTAssertEqual(try server.get(timeout: 5), 2_000)
        XCTAssertNil(try reader.readLine(timeout: 5), "the server closed")
    }
}
