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

/// Incremental RESP parsing: feed bytes as they come, take whole replies.
/// Resumable: the elements of an aggregate parsed so far are kept while
/// the rest arrives, and a bulk string is not looked at again until all
/// its bytes are here, so a reply of any size costs one pass over its
/// bytes however it is cut.
struct RESPParser {
    private var buffer: [UInt8] = []
    /// Where the next unparsed element starts.
    private var start = 0
    /// The buffer must hold this many bytes before parsing is worth
    /// trying again (a bulk string's end).
    private var needed = 0
    /// Aggregates (arrays, maps, sets, pushes) being filled, innermost last.
    private var open: [Aggregate] = []
    /// Limits that keep a hostile or broken server from exhausting memory.
    var maxBulkBytes = 512 * 1024 * 1024
    var maxElements = 16 * 1024 * 1024
    var maxDepth = 64
    /// Elements parsed whole so far (each once, however the bytes came).
    private(set) var elementsParsed = 0

    private struct Aggregate {
        let type: UInt8
        let count: Int
        var items: [RedisValue]
    }

    /// One element: a whole scalar, or the header of an aggregate.
    private enum Element {
        case value(RedisValue)
        case aggregate(type: UInt8, count: Int)
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            needed -= start
            start = 0
        } else if start > 64 * 1024 {
            buffer.removeFirst(start)
            needed -= start
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole reply, or nil if more bytes are needed.
    mutating func next() throws -> RedisValue? {
        while true {
            guard buffer.count >= needed else { return nil }
            var at = start
            guard let element = try element(&at) else { return nil }
            start = at
            var value: RedisValue
            switch element {
            case .value(let v):
                value = v
            case .aggregate(let type, let count):
                if count == 0 {
                    value = Self.make(type, [])
                } else {
                    guard open.count < maxDepth else {
                        throw RESPProtocolError(description: "replies nested deeper than \(maxDepth)")
                    }
                    open.append(Aggregate(type: type, count: count, items: []))
                    open[open.count - 1].items.reserveCapacity(min(count, 1024))
                    continue
                }
            }
            // Into the aggregates it completes, innermost first.
            while !open.isEmpty {
                open[open.count - 1].items.append(value)
                guard open[open.count - 1].items.count == open[open.count - 1].count else { break }
                let done = open.removeLast()
                value = Self.make(done.type, done.items)
            }
            if open.isEmpty { return value }
        }
    }

    private static func make(_ type: UInt8, _ items: [RedisValue]) -> RedisValue {
        switch type {
        case UInt8(ascii: "~"): return .set(items)
        case UInt8(ascii: ">"): return .push(items)
        case UInt8(ascii: "%"): return .map(stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) })
        default: return .array(items)
        }
    }

    /// The line at `at` without its CRLF, moving past it; nil if incomplete.
    private func line(_ at: inout Int) throws -> ArraySlice<UInt8>? {
        var i = at
        while i + 1 < buffer.count {
            if buffer[i] == 13 {
                guard buffer[i + 1] == 10 else { throw RESPProtocolError(description: "a CR not followed by LF") }
                let l = buffer[at..<i]
                at = i + 2
                return l
            }
            i += 1
        }
        if buffer.count - at > 64 * 1024 { throw RESPProtocolError(description: "a line longer than 64 KiB") }
        return nil
    }

    private func integer(_ bytes: ArraySlice<UInt8>) throws -> Int {
        guard let v = Int(String(decoding: bytes, as: UTF8.self)) else {
            throw RESPProtocolError(description: "not an integer: \(String(decoding: bytes.prefix(40), as: UTF8.self))")
        }
        return v
    }

    /// The element at `at`, moving past it; nil if incomplete.
    private mutating func element(_ at: inout Int) throws -> Element? {
        guard at < buffer.count else { return nil }
        let type = buffer[at]
        var i = at + 1
        guard let head = try line(&i) else { return nil }
        let text = { String(decoding: head, as: UTF8.self) }
        let result: Element
        switch type {
        case UInt8(ascii: "+"): result = .value(.simple(text()))
        case UInt8(ascii: "-"): result = .value(.error(text()))
        case UInt8(ascii: ":"): result = .value(.integer(try integer(head)))
        case UInt8(ascii: "_"): result = .value(.null)
        case UInt8(ascii: "#"): result = .value(.boolean(text() == "t"))
        case UInt8(ascii: ","):
            let t = text()
            guard let d = Double(t == "inf" ? "infinity" : t == "-inf" ? "-infinity" : t) else {
                throw RESPProtocolError(description: "not a double: \(t)")
            }
            result = .value(.double(d))
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            let n = try integer(head)
            if n < 0 { result = .value(.null); break }
            guard n <= maxBulkBytes else { throw RESPProtocolError(description: "a bulk string of \(n) bytes") }
            guard buffer.count - i >= n + 2 else {
                needed = i + n + 2
                return nil
            }
            guard buffer[i + n] == 13, buffer[i + n + 1] == 10 else {
                throw RESPProtocolError(description: "a bulk string not ended by CRLF")
            }
            var bytes = Array(buffer[i..<i + n])
            if type == UInt8(ascii: "=") { bytes = Array(bytes.dropFirst(min(4, bytes.count))) }   // "txt:" prefix
            i += n + 2
            result = .value(type == UInt8(ascii: "!") ? .error(String(decoding: bytes, as: UTF8.self)) : .bulk(bytes))
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"):
            let n = try integer(head)
            if n < 0 { result = .value(.null); break }
            guard n <= maxElements else { throw RESPProtocolError(description: "\(n) elements") }
            let elements = type == UInt8(ascii: "%") ? n * 2 : n
            guard elements <= maxElements else { throw RESPProtocolError(description: "\(n) elements") }
            result = .aggregate(type: type, count: elements)
        default:
            throw RESPProtocolError(description: "unknown reply type \(String(UnicodeScalar(type)))")
        }
        at = i
        elementsParsed += 1
        return result
    }

    /// A command as RESP: an array of bulk strings.
    static func encode(_ arguments: [[UInt8]], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "*"))
        out.append(contentsOf: String(arguments.count).utf8)
        out.append(contentsOf: [13, 10])
        for a in arguments {
            out.append(UInt8(ascii: "$"))
            out.append(contentsOf: String(a.count).utf8)
            out.append(contentsOf: [13, 10])
            out.append(contentsOf: a)
            out.append(contentsOf: [13, 10])
        }
    }
}
