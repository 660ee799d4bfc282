extension String {
    /// Without leading and trailing ASCII whitespace (HTML's definition of
    /// space around attribute values), without Foundation's bridging.
    func trimmingHTMLSpace() -> String {
        let u = utf8
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0C || b == 0x0D }
        guard let first = u.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = u.lastIndex(where: { !isSpace($0) })!
        if first == u.startIndex && last == u.index(before: u.endIndex) { return self }
        return String(self[first...last])
    }
}

extension String {
    /// The index just after "://", found without Foundation.
    func afterSchemeSeparator() -> String.Index? {
        let u = utf8
        var i = u.startIndex
        while i < u.endIndex {
            if u[i] == UInt8(ascii: ":") {
                let j = u.index(after: i)
                if j < u.endIndex, u[j] == UInt8(ascii: "/") {
                    let k = u.index(after: j)
                    if k < u.endIndex, u[k] == UInt8(ascii: "/") { return u.index(after: k) }
                }
                return nil
            }
            i = u.index(after: i)
        }
        return nil
    }
}
