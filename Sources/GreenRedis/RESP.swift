import Green

/// A Redis reply (RESP2 and RESP3).
public enum RedisValue: Equatable, Sendable, CustomStringConvertible {
    case simple(String)
    /// A server error reply: "ERR ...", "WRONGTYPE ...".
    case error(String)
    case integer(Int)
    case bulk([UInt8])
    case null
    case array([RedisValue])
    // RESP3
    case double(Double)
    case boolean(Bool)
    case map([(RedisValue, RedisValue)])
    case set([RedisValue])
    /// Out-of-band data (pub/sub messages, invalidations).
    case push([RedisValue])

    public static func == (a: RedisValue, b: RedisValue) -> Bool {
        switch (a, b) {
        case (.simple(let x), .simple(let y)), (.error(let x), .error(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.bulk(let x), .bulk(let y)): return x == y
        case (.null, .null): return true
        case (.array(let x), .array(let y)), (.set(let x), .set(let y)), (.push(let x), .push(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.boolean(let x), .boolean(let y)): return x == y
        case (.map(let x), .map(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// A bulk or simple string as text.
    public var string: String? {
        switch self {
        case .bulk(let b): return String(decoding: b, as: UTF8.self)
        case .simple(let s): return s
        default: return nil
        }
    }

    public var int: Int? {
        switch self {
        case .integer(let i): return i
        case .bulk(let b): return Int(String(decoding: b, as: UTF8.self))
        default: return nil
        }
    }

    /// Array, set or push elements.
    public var array: [RedisValue]? {
        switch self {
        case .array(let a), .set(let a), .push(let a): return a
        default: return nil
        }
    }

    public var isNull: Bool { self == .null }

    public var description: String {
        switch self {
        case .simple(let s): return s
        case .error(let e): return "(error) \(e)"
        case .integer(let i): return "(integer) \(i)"
        case .bulk(let b): return "\"\(String(decoding: b, as: UTF8.self))\""
        case .null: return "(nil)"
        case .array(let a), .set(let a), .push(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .double(let d): return "(double) \(d)"
        case .boolean(let b): return "(boolean) \(b)"
        case .map(let m): return "{" + m.map { "\($0.0): \($0.1)" }.joined(separator: ", ") + "}"
        }
    }
}

/// A reply that is not RESP.
public struct RESPProtocolError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Reads RESP replies from a `BufferedReader`, each as it comes,
/// blocking the greenlet until its bytes are there. Lines are parsed where
/// they lie in the reader's buffer and bulk strings are read with
/// `readExactly` (a large one straight into its array), so every byte is
/// looked at once however the replies are cut; pipelined replies are
/// taken from the buffer one after another, the stream read only when it
/// runs dry. A class, not a struct: its state is not borrowed `inout`
/// across the blocking reads.
///
/// After any error the reader may stand in the middle of a reply: the
/// connection must be dropped.
final class RESPReader {
    let reader: BufferedReader
    /// Limits that keep a hostile or broken server from exhausting memory.
    var maxLineBytes = 64 * 1024
    var maxBulkBytes = 512 * 1024 * 1024
    var maxElements = 16 * 1024 * 1024
    var maxDepth = 64
    /// Elements parsed so far (each once, however the bytes came).
    private(set) var elementsParsed = 0

    private static let crlf: [UInt8] = [13, 10]

    init(_ reader: BufferedReader) { self.reader = reader }

    /// One element's first line: a whole scalar, or what follows it.
    private enum Header {
        case value(RedisValue)
        case bulk(type: UInt8, count: Int)
        case aggregate(type: UInt8, count: Int)
    }

    /// The next whole reply; nil if the stream ended before it began.
    /// Throws `RESPProtocolError` for bytes that are not RESP,
    /// `BufferedReadError.unexpectedEnd` if the stream ends inside a
    /// reply, and the stream's errors (`timeout` bounds each wait).
    func next(timeout: Double?) throws -> RedisValue? {
        try value(depth: 0, timeout: timeout, first: true)
    }

    private func value(depth: Int, timeout: Double?, first: Bool = false) throws -> RedisValue? {
        let header: Header? = try reader.withBytes(until: Self.crlf, maxLength: maxLineBytes + 2, timeout: timeout) {
            try parseHeader($0)
        }
        guard let header else {
            if first { return nil }
            throw BufferedReadError.unexpectedEnd(needed: 1, got: 0)
        }
        elementsParsed += 1
        switch header {
        case .value(let v):
            return v
        case .bulk(let type, let n):
            var bytes = try reader.readExactly(n + 2, timeout: timeout)
            guard bytes[n] == 13, bytes[n + 1] == 10 else {
                throw RESPProtocolError(description: "a bulk string not ended by CRLF")
            }
            bytes.removeLast(2)
            if type == UInt8(ascii: "=") { bytes = Array(bytes.dropFirst(min(4, bytes.count))) }   // "txt:" prefix
            return type == UInt8(ascii: "!") ? .error(String(decoding: bytes, as: UTF8.self)) : .bulk(bytes)
        case .aggregate(let type, let count):
            guard depth < maxDepth else { throw RESPProtocolError(description: "replies nested deeper than \(maxDepth)") }
            var items: [RedisValue] = []
            items.reserveCapacity(min(count, 1024))
            for _ in 0..<count {
                guard let item = try value(depth: depth + 1, timeout: timeout) else { break }   // never nil: thrown
                items.append(item)
            }
            switch type {
            case UInt8(ascii: "~"): return .set(items)
            case UInt8(ascii: ">"): return .push(items)
            case UInt8(ascii: "%"): return .map(stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) })
            default: return .array(items)
            }
        }
    }

    /// Parses a header line (CRLF included, as `withBytes` gives it).
    private func parseHeader(_ line: UnsafeBufferPointer<UInt8>) throws -> Header {
        guard line.count >= 2, line[line.count - 2] == 13, line[line.count - 1] == 10 else {
            throw BufferedReadError.unexpectedEnd(needed: line.count + 2, got: line.count)   // cut by the end
        }
        guard line.count > 2 else { throw RESPProtocolError(description: "an empty line") }
        let type = line[0]
        let head = UnsafeBufferPointer(rebasing: line[1..<line.count - 2])
        let text = { String(decoding: head, as: UTF8.self) }
        switch type {
        case UInt8(ascii: "+"): return .value(.simple(text()))
        case UInt8(ascii: "-"): return .value(.error(text()))
        case UInt8(ascii: ":"): return .value(.integer(try Self.integer(head)))
        case UInt8(ascii: "_"): return .value(.null)
        case UInt8(ascii: "#"): return .value(.boolean(text() == "t"))
        case UInt8(ascii: ","):
            let t = text()
            guard let d = Double(t == "inf" ? "infinity" : t == "-inf" ? "-infinity" : t) else {
                throw RESPProtocolError(description: "not a double: \(t)")
            }
            return .value(.double(d))
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            let n = try Self.integer(head)
            if n < 0 { return .value(.null) }
            guard n <= maxBulkBytes else { throw RESPProtocolError(description: "a bulk string of \(n) bytes") }
            return .bulk(type: type, count: n)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"):
            let n = try Self.integer(head)
            if n < 0 { return .value(.null) }
            let elements = type == UInt8(ascii: "%") && n <= maxElements ? n * 2 : n
            guard elements <= maxElements else { throw RESPProtocolError(description: "\(n) elements") }
            if elements == 0 { return .value(type == UInt8(ascii: "%") ? .map([]) : Self.empty(type)) }
            return .aggregate(type: type, count: elements)
        default:
            throw RESPProtocolError(description: "unknown reply type \(String(UnicodeScalar(type)))")
        }
    }

    private static func empty(_ type: UInt8) -> RedisValue {
        switch type {
        case UInt8(ascii: "~"): return .set([])
        case UInt8(ascii: ">"): return .push([])
        default: return .array([])
        }
    }

    /// A decimal integer, without going through a String.
    private static func integer(_ bytes: UnsafeBufferPointer<UInt8>) throws -> Int {
        var i = 0
        var negative = false
        if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            negative = sign == UInt8(ascii: "-")
            i = 1
        }
        var value = 0
        var overflow = i == bytes.count   // no digits
        while i < bytes.count, !overflow {
            let digit = Int(bytes[i]) - 48
            guard digit >= 0 && digit <= 9 else { overflow = true; break }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            overflow = o1 || o2
            value = sum
            i += 1
        }
        if overflow {
            throw RESPProtocolError(description: "not an integer: \(String(decoding: bytes.prefix(40), as: UTF8.self))")
        }
        return value
    }

    /// A command as RESP (an array of bulk strings), into `writer`.
    static func encode(_ arguments: [[UInt8]], to writer: BufferedWriter, timeout: Double?) throws {
        try writer.write("*\(arguments.count)\r\n", timeout: timeout)
        for a in arguments {
            try writer.write("$\(a.count)\r\n", timeout: timeout)
            try writer.write(a, timeout: timeout)
            try writer.write(crlf, timeout: timeout)
        }
    }
}
