/// The charset a document declares in its first bytes, found as browsers
/// prescan a byte stream (WHATWG HTML, "prescan a byte stream to determine
/// its encoding", simplified): the first `<meta charset=X>` or `<meta
/// http-equiv=Content-Type content="...; charset=X">`, skipping comments.
/// Used when the HTTP header names no charset.
enum CharsetPrescan {
    static func charset(in bytes: UnsafeRawBufferPointer) -> String? {
        let end = min(bytes.count, HTMLLinkParser.prescanBytes)
        var i = 0
        func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b + 32 : b }
        func matches(_ word: String, at j: Int) -> Bool {
            var k = j
            for w in word.utf8 {
                guard k < end, lower(bytes[k]) == w else { return false }
                k += 1
            }
            return true
        }
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0C || b == 0x0D || b == 0x2F }
        while i < end {
            if matches("<!--", at: i) {
                i += 4
                while i < end && !matches("-->", at: i) { i += 1 }
                i += 3
                continue
            }
            guard matches("<meta", at: i), i + 5 < end, isSpace(bytes[i + 5]) else {
                i += 1
                continue
            }
            // The tag's attributes, up to its `>`.
            i += 5
            var charset: String?
            var httpEquivContentType = false
            var content: String?
            while i < end && bytes[i] != UInt8(ascii: ">") {
                while i < end && isSpace(bytes[i]) { i += 1 }
                var name: [UInt8] = []
                while i < end, !isSpace(bytes[i]), bytes[i] != UInt8(ascii: "="), bytes[i] != UInt8(ascii: ">") {
                    name.append(lower(bytes[i]))
                    i += 1
                }
                while i < end && isSpace(bytes[i]) { i += 1 }
                var value: [UInt8] = []
                if i < end && bytes[i] == UInt8(ascii: "=") {
                    i += 1
                    while i < end && isSpace(bytes[i]) { i += 1 }
                    if i < end, bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") {
                        let quote = bytes[i]
                        i += 1
                        while i < end && bytes[i] != quote { value.append(bytes[i]); i += 1 }
                        i += 1
                    } else {
                        while i < end, !isSpace(bytes[i]), bytes[i] != UInt8(ascii: ">") { value.append(bytes[i]); i += 1 }
                    }
                }
                if name.isEmpty && value.isEmpty { i += 1; continue }
                let text = String(decoding: value, as: UTF8.self)
                switch String(decoding: name, as: UTF8.self) {
                case "charset": charset = charset ?? text
                case "http-equiv": httpEquivContentType = text.lowercased() == "content-type"
                case "content": content = content ?? text
                default: break
                }
            }
            if let charset, !charset.isEmpty { return charset.trimmingASCIISpace() }
            if httpEquivContentType, let content, let found = charsetParameter(in: content) { return found }
        }
        return nil
    }

    /// The `charset=` of a Content-Type value, quotes removed.
    static func charsetParameter(in contentType: String) -> String? {
        let lowered = contentType.lowercased()
        guard let range = lowered.range(of: "charset=") else { return nil }
        var value = lowered[range.upperBound...].prefix { $0 != ";" }.trimmingASCIISpace()
        if value.hasPrefix("\"") || value.hasPrefix("'") { value = String(value.dropFirst()) }
        if value.hasSuffix("\"") || value.hasSuffix("'") { value = String(value.dropLast()) }
        return value.isEmpty ? nil : value
    }
}

extension StringProtocol {
    func trimmingASCIISpace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\u{0C}" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
