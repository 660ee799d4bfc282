import Glibc
import CHTTPParser

/// Incremental HTTP/1.x parsing through Node's http_parser, with limits.
/// Feed it bytes as they arrive; complete messages come out in order
/// (pipelined ones too). One parser per connection; not thread-safe.
final class HTTPMessageParser {
    enum Kind { case request, response }

    let kind: Kind
    let limits: HTTPLimits
    private let parser: UnsafeMutablePointer<http_parser>

    // The message being parsed.
    private var url: [UInt8] = []
    private var statusText: [UInt8] = []
    /// Header names and values, back to back in one buffer (one
    /// allocation per connection, not two per field).
    private var fieldBytes: [UInt8] = []
    /// Per field: where its name starts, where its value starts, where it ends.
    private var fields: [(name: Int, value: Int, end: Int)] = []
    private var lastWasValue = false
    private var body: [UInt8] = []
    private var headerBytes = 0
    /// A message has begun and not completed.
    private(set) var inMessage = false
    /// Its header section is complete (only the body is left).
    private(set) var headersComplete = false
    /// For responses to HEAD (and 1xx/204/304): the body is absent.
    var expectNoBody = false
    /// Whether a response's body is kept (in the completed response) or
    /// handed out as it arrives (`takeStreamedBody`), given the status
    /// and headers. Nil: kept. A streamed body is not held to
    /// `maxBodyBytes`: whoever takes it bounds what they keep.
    var streamsBody: ((_ status: Int, _ headers: HTTPHeaders) -> Bool)?
    /// The status and headers of the response being read, once its header
    /// section is complete (responses only).
    private(set) var head: (status: Int, reason: String, headers: HTTPHeaders)?
    private var streaming = false
    /// Requests' bodies stream (the server's streaming handlers): the
    /// head is handed out as soon as it is read (`requestHead`), the body
    /// through `takeStreamedBody`, and the parser pauses at the end of
    /// each request until `resume()`.
    var streamsRequestBodies = false
    /// The head of the request being read, when request bodies stream.
    private(set) var requestHead: HTTPRequest?
    /// The last request's head asked for `100-continue` and a body follows.
    private(set) var wantsContinue = false
    /// Stopped at the end of a streamed request (see `resume`).
    private(set) var paused = false
    /// Whether the current message's body streams (`streamsBody` said so).
    var isStreamingBody: Bool { streaming }
    private var streamed: [UInt8] = []

    private(set) var requests: [HTTPRequest] = []
    private(set) var responses: [HTTPResponse] = []
    /// Whether the connection may carry another message after the last one.
    private(set) var keepAlive = true
    private var failure: HTTPParseError?

    init(_ kind: Kind, limits: HTTPLimits = HTTPLimits()) {
        self.kind = kind
        self.limits = limits
        parser = .allocate(capacity: 1)
        http_parser_init(parser, kind == .request ? HTTP_REQUEST : HTTP_RESPONSE)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit { parser.deallocate() }

    /// Takes the requests completed so far.
    func takeRequests() -> [HTTPRequest] {
        defer { requests.removeAll(keepingCapacity: true) }
        return requests
    }

    /// Takes the body bytes of a streamed response received so far.
    func takeStreamedBody() -> [UInt8] {
        defer { streamed.removeAll(keepingCapacity: true) }
        return streamed
    }

    /// Takes the responses completed so far.
    func takeResponses() -> [HTTPResponse] {
        defer { responses.removeAll(keepingCapacity: true) }
        return responses
    }

    /// Parses `bytes`. Throws `HTTPParseError` on malformed input or a
    /// limit exceeded; the parser is then unusable.
    @discardableResult
    func feed(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        if let failure { throw failure }
        chunk = bytes
        let n = bytes.withMemoryRebound(to: CChar.self) { chars in
            http_parser_execute(parser, &HTTPMessageParser.settings, chars.baseAddress, chars.count)
        }
        if kind == .request && inMessage && !headersComplete, let base = bytes.baseAddress {
            // A line feed after the last field or value, for the next one.
            lineFeedSinceLast = lineFeedSinceLast || memchr(base + lastEnd, 0x0A, bytes.count - lastEnd) != nil
        }
        lastEnd = 0
        chunk = UnsafeRawBufferPointer(start: nil, count: 0)
        try checkError(consumed: n, of: bytes.count)
        return n
    }

    /// Takes the head of the request being read (request bodies stream).
    func takeRequestHead() -> HTTPRequest? {
        defer { requestHead = nil }
        return requestHead
    }

    /// Takes the request's wish for a 100 (Continue) (reported once).
    func takeContinueWish() -> Bool {
        defer { wantsContinue = false }
        return wantsContinue
    }

    /// Goes on after the pause at the end of a streamed request; the
    /// caller feeds again the bytes the pause left unread.
    func resume() {
        guard paused else { return }
        paused = false
        green_http_pause(parser, 0)
    }

    /// Whether the last request asked to switch protocols (`Upgrade`):
    /// the parser stopped after it, and what follows is not HTTP.
    var isUpgrade: Bool { green_http_is_upgrade(parser) != 0 }

    // MARK: - RFC 9112 rules http_parser does not keep (requests)
    //
    // Debian's http_parser is built lenient: a field name may hold spaces
    // ("Host : x" gives the field "Host "), and a field line continued on
    // the next line (obs-fold) is joined to the value. A server must
    // refuse both with 400 (RFC 9112 sections 5.1 and 5.2): a proxy that
    // read them otherwise would see other fields, or other requests.

    /// The chunk being parsed (its bytes show what lies between fields).
    private var chunk = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Where the last field or value callback's bytes ended in `chunk`.
    private var lastEnd = 0
    /// Whether a line feed came since the last field or value: a value
    /// after a line feed is a folded line's continuation (a value split
    /// by a read has none between; a field's value follows its colon on
    /// the same line).
    private var lineFeedSinceLast = false

    /// Notes a field or value callback at `at` of `length` bytes; returns
    /// whether a line feed came since the previous one.
    private func crossedLine(_ at: UnsafePointer<CChar>?, _ length: Int) -> Bool {
        guard let at, let base = chunk.baseAddress else { return false }
        let offset = UnsafeRawPointer(at) - base
        guard offset >= lastEnd && offset <= chunk.count else { return false }
        let crossed = lineFeedSinceLast || memchr(base + lastEnd, 0x0A, offset - lastEnd) != nil
        lastEnd = offset + length
        lineFeedSinceLast = false
        return crossed
    }

    /// The rules for a request's head, once http_parser has read it.
    private func requestHeadProblem() -> String? {
        // Byte loops, not collection calls: this runs for every request.
        var hosts = 0
        var spaced = -1   // a field whose name holds white space
        var badHost = false
        fieldBytes.withUnsafeBufferPointer { bytes in
            guard let b = bytes.baseAddress else { return }
            for (i, f) in fields.enumerated() {
                var j = f.name
                while j < f.value {
                    if b[j] == 0x20 || b[j] == 0x09 {
                        spaced = i
                        return
                    }
                    j += 1
                }
                // "host", any case.
                if f.value - f.name == 4 && b[f.name] | 0x20 == 0x68 && b[f.name + 1] | 0x20 == 0x6F
                    && b[f.name + 2] | 0x20 == 0x73 && b[f.name + 3] | 0x20 == 0x74 {
                    hosts += 1
                    // Without the optional white space around the value.
                    var k = f.value, end = f.end
                    while k < end && (b[k] == 0x20 || b[k] == 0x09) { k += 1 }
                    while end > k && (b[end - 1] == 0x20 || b[end - 1] == 0x09) { end -= 1 }
                    while k < end {
                        let c = b[k]
                        if c <= 0x20 || c == 0x2F || c == 0x40 || c == 0x5C || c == 0x7F {
                            badHost = true
                            return
                        }
                        k += 1
                    }
                }
            }
        }
        if spaced >= 0 {
            let f = fields[spaced]
            let name = String(decoding: fieldBytes[f.name..<f.value], as: UTF8.self)
            return "white space in or after the field name \(name.debugDescription)"
        }
        if badHost { return "a Host value that is not host[:port]" }
        if hosts > 1 { return "more than one Host field" }
        if hosts == 0 && parser.pointee.http_major == 1 && parser.pointee.http_minor >= 1 {
            return "an HTTP/1.1 request without Host"
        }
        return nil
    }

    /// Tells the parser the peer closed. Completes a response whose body
    /// runs to the end of the stream; throws `.truncated` if a message was
    /// cut short.
    func finish() throws {
        if let failure { throw failure }
        let wasInMessage = inMessage
        http_parser_execute(parser, &HTTPMessageParser.settings, nil, 0)
        if green_http_errno(parser) == HPE_INVALID_EOF_STATE { throw HTTPParseError(kind: .truncated) }
        try checkError(consumed: 0, of: 0)
        if wasInMessage && inMessage { throw HTTPParseError(kind: .truncated) }
    }

    private func checkError(consumed: Int, of total: Int) throws {
        if let failure { throw failure }
        let err = green_http_errno(parser)
        if err == HPE_PAUSED && paused { return }
        if err != HPE_OK || (consumed != total && !isUpgradeOrPaused) {
            let e = HTTPParseError(kind: .malformed(name: String(cString: http_errno_name(err)),
                                                   detail: String(cString: http_errno_description(err))))
            failure = e
            throw e
        }
    }

    private var isUpgradeOrPaused: Bool { green_http_is_upgrade(parser) != 0 }

    private func fail(_ kind: HTTPParseError.Kind) -> Int32 {
        failure = HTTPParseError(kind: kind)
        return 1
    }

    // MARK: - Callbacks

    private static func this(_ p: UnsafeMutablePointer<http_parser>?) -> HTTPMessageParser {
        Unmanaged<HTTPMessageParser>.fromOpaque(p!.pointee.data).takeUnretainedValue()
    }

    private static func append(_ to: inout [UInt8], _ at: UnsafePointer<CChar>?, _ length: Int) {
        guard let at, length > 0 else { return }
        at.withMemoryRebound(to: UInt8.self, capacity: length) {
            to.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
        }
    }

    // `nonisolated(unsafe)` (C callbacks, and a `var` so that `&` can pass
    // it as the const pointer `http_parser_execute` takes): written once,
    // by the lazy initializer (run once, thread-safely); from then on only
    // read, by parsers on any thread.
    nonisolated(unsafe) private static var settings: http_parser_settings = {
        var s = http_parser_settings()
        s.on_message_begin = { p in this(p).begin() }
        s.on_url = { p, at, length in this(p).urlData(at, length) }
        s.on_status = { p, at, length in this(p).statusData(at, length) }
        s.on_header_field = { p, at, length in this(p).headerField(at, length) }
        s.on_header_value = { p, at, length in this(p).headerValue(at, length) }
        s.on_headers_complete = { p in this(p).headersDone() }
        s.on_body = { p, at, length in this(p).bodyData(at, length) }
        s.on_message_complete = { p in this(p).complete() }
        return s
    }()

    private func begin() -> Int32 {
        lineFeedSinceLast = false
        url.removeAll(keepingCapacity: true)
        statusText.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
        fieldBytes.removeAll(keepingCapacity: true)
        body = []
        lastWasValue = false
        headerBytes = 0
        inMessage = true
        headersComplete = false
        head = nil
        streaming = false
        return 0
    }

    private func countHeaderBytes(_ length: Int) -> Bool {
        headerBytes += length
        return headerBytes <= limits.maxHeaderBytes
    }

    private func urlData(_ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        guard countHeaderBytes(length) else { return fail(.targetTooLong(limit: limits.maxHeaderBytes)) }
        HTTPMessageParser.append(&url, at, length)
        return 0
    }

    private func statusData(_ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        guard countHeaderBytes(length) else { return fail(.headersTooLarge(limit: limits.maxHeaderBytes)) }
        HTTPMessageParser.append(&statusText, at, length)
        return 0
    }

    private func headerField(_ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        guard countHeaderBytes(length) else { return fail(.headersTooLarge(limit: limits.maxHeaderBytes)) }
        if kind == .request { _ = crossedLine(at, length) }
        if fields.isEmpty || lastWasValue {
            guard fields.count < limits.maxHeaderCount else { return fail(.tooManyHeaders(limit: limits.maxHeaderCount)) }
            fields.append((fieldBytes.count, fieldBytes.count, fieldBytes.count))
            lastWasValue = false
        }
        HTTPMessageParser.append(&fieldBytes, at, length)
        fields[fields.count - 1].value = fieldBytes.count
        fields[fields.count - 1].end = fieldBytes.count
        return 0
    }

    private func headerValue(_ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        guard countHeaderBytes(length) else { return fail(.headersTooLarge(limit: limits.maxHeaderBytes)) }
        // After a line feed: a value that continues one (or, non-empty,
        // the first part of one left empty: "X:\r\n c"). http_parser
        // reports an empty value at the start of the next line.
        if kind == .request && crossedLine(at, length) && (lastWasValue || length > 0) {
            return fail(.invalidRequest("a field line folded onto the next line (obs-fold)"))
        }
        lastWasValue = true
        HTTPMessageParser.append(&fieldBytes, at, length)
        fields[fields.count - 1].end = fieldBytes.count
        return 0
    }

    private func headersDone() -> Int32 {
        headersComplete = true
        if kind == .request, let problem = requestHeadProblem() { return fail(.invalidRequest(problem)) }
        if kind == .request {
            let hasBody = parser.pointee.content_length != UInt64.max && parser.pointee.content_length > 0
                || green_http_is_chunked(parser) != 0
            // RFC 9110 section 10.1.1: only an HTTP/1.1 request with a body
            // (looked up without building the headers: most have none).
            wantsContinue = hasBody && parser.pointee.http_major == 1 && parser.pointee.http_minor >= 1
                && fieldValue("expect")?.caseInsensitiveEquals("100-continue") == true
            if streamsRequestBodies {
                let headers = collectHeaders()
                streaming = true
                let method = String(cString: http_method_str(http_method(green_http_method(parser))))
                requestHead = HTTPRequest(method: method, target: String(decoding: url, as: UTF8.self),
                                          version: (Int(parser.pointee.http_major), Int(parser.pointee.http_minor)),
                                          headers: headers)
            }
        }
        if kind == .response {
            let headers = collectHeaders()
            let status = Int(green_http_status(parser))
            head = (status, String(decoding: statusText, as: UTF8.self), headers)
            streaming = streamsBody?(status, headers) ?? false
        }
        let length = parser.pointee.content_length
        if length != UInt64.max && !streaming {
            if length > UInt64(limits.maxBodyBytes) { return fail(.bodyTooLarge(limit: limits.maxBodyBytes)) }
            // The whole body in one allocation (bounded by the limit just checked).
            body.reserveCapacity(Int(length))
        }
        // 1: tell the parser this response has no body (HEAD and the like).
        return kind == .response && expectNoBody ? 1 : 0
    }

    private func bodyData(_ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        if streaming {
            HTTPMessageParser.append(&streamed, at, length)
            return 0
        }
        guard body.count + length <= limits.maxBodyBytes else { return fail(.bodyTooLarge(limit: limits.maxBodyBytes)) }
        HTTPMessageParser.append(&body, at, length)
        return 0
    }

    /// The first value of the field `lowercaseName`, read off the bytes.
    private func fieldValue(_ lowercaseName: String) -> String? {
        fieldBytes.withUnsafeBufferPointer { bytes in
            for f in fields where f.value - f.name == lowercaseName.utf8.count {
                let name = UnsafeBufferPointer(rebasing: bytes[f.name..<f.value])
                if zip(name, lowercaseName.utf8).allSatisfy({ $0 | 0x20 == $1 }) {
                    return String(decoding: UnsafeBufferPointer(rebasing: bytes[f.value..<f.end]), as: UTF8.self)
                }
            }
            return nil
        }
    }

    private func collectHeaders() -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count)
        fieldBytes.withUnsafeBufferPointer { bytes in
            for f in fields {
                headers.add(String(decoding: UnsafeBufferPointer(rebasing: bytes[f.name..<f.value]), as: UTF8.self),
                            String(decoding: UnsafeBufferPointer(rebasing: bytes[f.value..<f.end]), as: UTF8.self))
            }
        }
        return headers
    }

    private func complete() -> Int32 {
        // Trailers of a chunked message come after the head was built.
        let headers = head.map { $0.headers.count == fields.count ? $0.headers : collectHeaders() } ?? collectHeaders()
        let version = (Int(parser.pointee.http_major), Int(parser.pointee.http_minor))
        keepAlive = http_should_keep_alive(parser) != 0
        switch kind {
        case .request:
            let method = String(cString: http_method_str(http_method(green_http_method(parser))))
            requests.append(HTTPRequest(method: method, target: String(decoding: url, as: UTF8.self),
                                        version: version, headers: headers, body: body))
        case .response:
            var r = HTTPResponse(status: Int(green_http_status(parser)),
                                 reason: String(decoding: statusText, as: UTF8.self), headers: headers, body: body)
            r.version = version
            responses.append(r)
        }
        inMessage = false
        headersComplete = false
        body = []
        if kind == .request && streaming {
            // Stop here until the server has dealt with this request: the
            // next one's head must not overwrite it.
            green_http_pause(parser, 1)
            paused = true
        }
        return 0
    }
}

/// Parsing a buffer that holds whole HTTP/1.x messages (a capture, a
/// test, a fuzzer), with the limits the server and client apply. Throws
/// `HTTPParseError` on malformed input, a limit exceeded, or a message
/// cut short at the end. Pure computations: any thread, never blocking.
public enum HTTPParsing {
    /// The requests in `bytes`, in order, bodies read whole.
    public static func requests(in bytes: [UInt8], limits: HTTPLimits = HTTPLimits()) throws -> [HTTPRequest] {
        try requests(inPieces: [bytes], limits: limits)
    }

    /// The same, fed piece by piece as a server reads them off a socket.
    public static func requests(inPieces pieces: [[UInt8]], limits: HTTPLimits = HTTPLimits()) throws -> [HTTPRequest] {
        let parser = HTTPMessageParser(.request, limits: limits)
        for piece in pieces { _ = try piece.withUnsafeBytes { try parser.feed($0) } }
        try parser.finish()
        return parser.takeRequests()
    }

    /// Responses, as a client reads them (the last may run to the end of
    /// the buffer).
    public static func responses(in bytes: [UInt8], limits: HTTPLimits = HTTPLimits()) throws -> [HTTPResponse] {
        let parser = HTTPMessageParser(.response, limits: limits)
        _ = try bytes.withUnsafeBytes { try parser.feed($0) }
        try parser.finish()
        return parser.takeResponses()
    }
}

/// Checks for fuzzers: the client's quick reading of a URL against
/// Foundation's. Not API.
@_spi(Fuzzing) public enum HTTPFuzzing {
    /// The quick parse (nil when it declines) and Foundation's, as
    /// (text, scheme, host, port, target).
    public static func requestURL(_ s: String) -> (quick: [String]?, careful: [String]?) {
        func parts(_ r: RequestURL?) -> [String]? {
            r.map { [$0.text, $0.scheme, $0.host, String($0.port), $0.target] }
        }
        return (parts(RequestURL(quickOnly: s)), parts(RequestURL(foundationOnly: s)))
    }
}
