import Foundation

/// A `.warc.gz` file as `wget --warc-file` writes it (WARC/1.1): a
/// `warcinfo` record first, then a `request` and a `response` record per
/// fetched URL, each record its own gzip member.
///
/// Each record carries WARC-Record-ID, WARC-Date (UTC, microseconds),
/// WARC-Warcinfo-ID, and for an exchange WARC-Target-URI,
/// WARC-Concurrent-To (each record of the pair names the other),
/// WARC-IP-Address when known, Content-Type `application/http;msgtype=…`,
/// WARC-Block-Digest and WARC-Payload-Digest (`sha1:` base32), and
/// `WARC-Truncated` on a response that was cut short.
///
/// The digests: the block digest covers the record's whole block, the
/// HTTP message exactly as sent or received. The payload digest covers
/// the bytes after the HTTP header block *as transferred*: a chunked body
/// with its chunk framing, a gzip body still compressed. That is what
/// warcio hashes when it checks a record (`warcio check`; its
/// `DigestVerifyingReader` starts hashing the record stream right after
/// the parsed HTTP headers and decodes nothing) and what its own writer
/// and wget write; a digest of the decoded entity would fail there. See
/// `WARCDigest.httpPayloadOffset` for where the headers end.
///
/// Not thread-safe and not `Sendable`: one thread at a time, normally the
/// crawl's hub thread. Each call writes its records to the file with
/// write(2) before returning, blocking that thread meanwhile (a short
/// local write).
public final class WARCWriter {
    /// The file written.
    public let path: String
    /// The WARC-Record-ID of the file's `warcinfo` record, which every
    /// later record names in WARC-Warcinfo-ID.
    public let warcinfoID: String
    private let file: GzipMemberFile

    /// Creates (or truncates) `path` and writes the `warcinfo` record:
    /// `software`, `format: WARC File Format 1.1`, `conformsTo`, then
    /// `extraInfo` fields in order (`robots: obey`, say). Throws
    /// `WARCError` naming the file when it cannot be created or written.
    public init(path: String, software: String = "swift-green-crawl/0.1",
                extraInfo: [(name: String, value: String)] = [], date: Date = Date()) throws {
        self.path = path
        file = try GzipMemberFile(creating: path)
        warcinfoID = WARCRecord.makeID()
        var fields: [(name: String, value: String)] = [
            ("software", software),
            ("format", "WARC File Format 1.1"),
            ("conformsTo", "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"),
        ]
        fields += extraInfo
        for field in fields where !WARCRecord.isSafeFieldValue(field.name) || !WARCRecord.isSafeFieldValue(field.value) {
            throw WARCError(path: path, message: "warcinfo field \"\(field.name)\" has control characters")
        }
        let info = Array(fields.map { "\($0.name): \($0.value)\r\n" }.joined().utf8)
        try write(WARCRecord(fields: [
            ("WARC-Type", "warcinfo"),
            ("WARC-Record-ID", warcinfoID),
            ("WARC-Date", WARCRecord.formatDate(date)),
            ("WARC-Filename", (path as NSString).lastPathComponent),
            ("Content-Type", "application/warc-fields"),
            ("WARC-Block-Digest", WARCDigest.sha1(info[...])),
        ], block: info))
    }

    /// Writes the `request` and then the `response` record of one fetch.
    ///
    /// `request` is the request's bytes as sent; `response` the bytes as
    /// received from the connection (status line, headers, and the body
    /// with its transfer coding and content coding intact), up to where
    /// the fetch stopped. `truncated` says why the response is incomplete,
    /// if it is (`.length`: cut by a size limit). `date` is when the fetch
    /// began; `ipAddress` the peer's address, if known.
    ///
    /// Returns the two records' IDs. Throws `WARCError` naming the file
    /// when the URI or address holds control characters (nothing is
    /// written), when the file was closed, or when a write fails (a full
    /// disk): the file is cut back to the last whole record and later
    /// calls may succeed.
    @discardableResult
    public func writeExchange(targetURI: String, date: Date, ipAddress: String?,
                              request: [UInt8], response: [UInt8],
                              truncated: WARCTruncation? = nil) throws -> (requestID: String, responseID: String) {
        guard WARCRecord.isSafeFieldValue(targetURI), WARCRecord.isSafeFieldValue(ipAddress ?? "") else {
            throw WARCError(path: path, message: "target URI or IP address has control characters: \(targetURI.debugDescription)")
        }
        let requestID = WARCRecord.makeID()
        let responseID = WARCRecord.makeID()
        let when = WARCRecord.formatDate(date)
        func record(type: String, id: String, concurrentTo: String, message: [UInt8]) -> WARCRecord {
            var fields: [(name: String, value: String)] = [
                ("WARC-Type", type),
                ("WARC-Record-ID", id),
                ("WARC-Warcinfo-ID", warcinfoID),
                ("WARC-Concurrent-To", concurrentTo),
                ("WARC-Target-URI", targetURI),
                ("WARC-Date", when),
            ]
            if let ipAddress { fields.append(("WARC-IP-Address", ipAddress)) }
            fields.append(("Content-Type", "application/http;msgtype=\(type)"))
            fields.append(("WARC-Block-Digest", WARCDigest.sha1(message[...])))
            fields.append(("WARC-Payload-Digest", WARCDigest.sha1(message[WARCDigest.httpPayloadOffset(message)...])))
            return WARCRecord(fields: fields, block: message)
        }
        try write(record(type: "request", id: requestID, concurrentTo: responseID, message: request))
        var responseRecord = record(type: "response", id: responseID, concurrentTo: requestID, message: response)
        if let truncated { responseRecord.fields.append(("WARC-Truncated", truncated.rawValue)) }
        try write(responseRecord)
        return (requestID, responseID)
    }

    /// Closes the file. Every record was on disk already; this reports a
    /// failure close(2) may still give. Throws `WARCError`. Later writes
    /// throw; a second close does nothing.
    public func close() throws {
        try file.close()
    }

    private func write(_ record: WARCRecord) throws {
        try file.writeMember(record.head, record.block, WARCRecord.trailer)
    }
}

/// Why a response record holds less than the whole response: the values
/// of `WARC-Truncated` the standard names.
public enum WARCTruncation: String, Sendable {
    /// Cut at a size limit.
    case length
    /// Cut at a time limit.
    case time
    /// The connection ended early.
    case disconnect
    /// Any other reason.
    case unspecified
}

/// A WARC file could not be written: which file, and what failed
/// (`write: No space left on device`, say).
public struct WARCError: Error, CustomStringConvertible {
    public let path: String
    public let message: String

    public var description: String { "WARC file \(path): \(message)" }
}
