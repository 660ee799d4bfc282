import Foundation
import Glibc

/// One WARC/1.1 record as it goes into the file: the version line, named
/// fields, `Content-Length`, a blank line, the block, and the two CRLFs
/// that end every record.
struct WARCRecord {
    var fields: [(name: String, value: String)]
    var block: [UInt8]

    /// The version line and fields, up to and including the blank line
    /// before the block. `Content-Length` comes last, from the block.
    var head: [UInt8] {
        var text = "WARC/1.1\r\n"
        for field in fields { text += "\(field.name): \(field.value)\r\n" }
        text += "Content-Length: \(block.count)\r\n\r\n"
        return Array(text.utf8)
    }

    static let trailer: [UInt8] = Array("\r\n\r\n".utf8)

    /// A fresh `WARC-Record-ID`: a random (version 4) UUID as a URN in
    /// angle brackets, as the standard writes it.
    static func makeID() -> String {
        "<urn:uuid:\(UUID().uuidString.lowercased())>"
    }

    /// `WARC-Date`: UTC, to the microsecond, as WARC/1.1 allows
    /// (`2026-12-01T10:20:30.123456Z`); order within a second survives.
    static func formatDate(_ date: Date) -> String {
        let since1970 = date.timeIntervalSince1970
        var seconds = time_t(since1970.rounded(.down))
        var micros = Int(((since1970 - Double(seconds)) * 1_000_000).rounded())
        if micros == 1_000_000 {
            seconds += 1
            micros = 0
        }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let microDigits = String(micros)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
            + "." + String(repeating: "0", count: 6 - microDigits.count) + microDigits + "Z"
    }

    /// Whether `value` can stand as a field value: a CR or LF would end the
    /// field early and let the rest pass for fields of its own.
    static func isSafeFieldValue(_ value: String) -> Bool {
        !value.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }
}
