/// HTTP header fields in the order they came, with case-insensitive
/// lookup by name. A value: any thread.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// The fields, in order, names as written.
    public private(set) var fields: [(name: String, value: String)] = []

    /// No fields.
    public init() {}

    /// The fields of a literal, in its order (`["Accept": "*/*"]`).
    public init(dictionaryLiteral elements: (String, String)...) {
        for (n, v) in elements { add(n, v) }
    }

    /// Appends a field (a name may repeat).
    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    /// Whether a request may carry this name: not empty, no control
    /// character, colon or white space. Checked on bytes: "\r\n" is a
    /// single Character in Swift and would pass a Character test.
    public static func isSendableName<S: StringProtocol>(_ name: S) -> Bool {
        !name.isEmpty && !name.utf8.contains { isControl($0) || $0 == 0x3A || $0 == 0x20 || $0 == 0x09 }
    }

    /// Whether a request may carry this value: no control character but
    /// tab (a CR or LF would start another header line).
    public static func isSendableValue<S: StringProtocol>(_ value: S) -> Bool {
        !value.utf8.contains(where: isControl)
    }

    private static func isControl(_ b: UInt8) -> Bool { (b < 0x20 && b != 0x09) || b == 0x7F }

    /// Makes room for `n` fields.
    public mutating func reserveCapacity(_ n: Int) {
        fields.reserveCapacity(n)
    }

    /// Replaces every field named `name` by one with `value`.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    /// Removes every field named `name` (any case).
    public mutating func remove(_ name: String) {
        fields.removeAll { $0.name.caseInsensitiveEquals(name) }
    }

    /// The first value of `name`, if any.
    public subscript(name: String) -> String? {
        fields.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    /// The number of fields, repeated names counted each time.
    public var count: Int { fields.count }

    /// The (name, value) pairs in order.
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }

    /// One "Name: value" line per field.
    public var description: String {
        fields.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
    }
}

extension String {
    /// ASCII case-insensitive equality (header names are ASCII).
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7a)
        }
    }
}
