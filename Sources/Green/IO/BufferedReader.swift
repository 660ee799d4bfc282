import Glibc

/// What went wrong in a `BufferedReader` call, besides the stream's own
/// errors (`SocketError`, `TLSError`) and interrupts, which pass through
/// unchanged.
public enum BufferedReadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No line end (or delimiter) came within `limit` bytes. Nothing was
    /// consumed: the bytes stay buffered, for `read(into:)` to skip or for
    /// the connection to be dropped.
    case lineTooLong(limit: Int)
    /// The stream ended after `got` of the `needed` bytes. `readExactly`
    /// of at most the buffer's capacity consumed nothing: the `got` bytes
    /// can still be read with `read(into:)`.
    case unexpectedEnd(needed: Int, got: Int)
    /// Another greenlet is waiting in this reader: two readers would take
    /// each other's bytes. Refused even when bytes are buffered.
    case busy

    /// What went wrong, in a sentence.
    public var description: String {
        switch self {
        case .lineTooLong(let limit): return "a line (or delimited field) longer than \(limit) bytes"
        case .unexpectedEnd(let needed, let got): return "the stream ended after \(got) of \(needed) bytes"
        case .busy: return "another greenlet is already reading from this buffered reader"
        }
    }
}

/// Reads a `ByteStream` (`Socket`, `TLSSocket`) through one buffer: lines,
/// delimited fields, exact byte counts and plain reads, in any mix on the
/// same reader without losing a byte between them.
///
/// ```swift
/// let reader = BufferedReader(socket)
/// while let header = try reader.readLine(maxLength: 100, timeout: 30) {   // "PUT 5"
///     let count = Int(header.split(separator: " ").last ?? "") ?? 0
///     let payload = try reader.readExactly(count, timeout: 30)
/// }
/// ```
///
/// Every call that needs more bytes than are buffered blocks only the
/// calling greenlet; `timeout` bounds each wait for the stream (nil: the
/// stream's default), as with `Socket.recv` (wrap the call in
/// `withTimeout` to bound it as a whole). Calls throw the stream's errors,
/// `BufferedReadError`, or the interrupt when the greenlet is killed or an
/// enclosing timeout expires. A call that throws consumes nothing (its
/// bytes stay buffered and the next call sees them), except
/// `readExactly` of more than `capacity` bytes, which loses the part it
/// had read. At the end of the stream, calls return nil (or 0) once
/// nothing is left; the end is remembered, the stream is not asked again.
///
/// The buffer (`capacity`, 16 KiB by default) is compacted only when a
/// call needs more room at its end, and grows (doubling, up to what the
/// call needs) only for a call that needs more than `capacity` bytes
/// buffered at once (a longer line, a larger peek): every byte is moved a
/// bounded number of times, however the input is cut. Reads of at least
/// `capacity` bytes go straight from the stream to the caller.
///
/// The reader holds `any ByteStream` rather than being generic over it:
/// the stream is called once per buffer fill, never per byte, so the
/// existential call costs nothing measurable, and one reader type serves
/// both plain and TLS connections. Confined to the thread that made it;
/// while one greenlet waits in it, calls from others throw `.busy`.
public final class BufferedReader {
    /// The stream read from. Reading it directly skips the buffered bytes.
    public let stream: any ByteStream
    /// The buffer's size in bytes; it grows for a line or a peek that
    /// needs more.
    public private(set) var capacity: Int

    // `storage` is this reader's memory (freed in deinit, replaced only by
    // `makeRoom`). Invariant: the unread bytes are storage[start..<end],
    // 0 <= start <= end <= capacity. While a greenlet waits in `receive`
    // (`waiting`), every other call is refused: the pending recv writes at
    // the address it was given, and the waiting call holds offsets from
    // `start`.
    private var storage: UnsafeMutablePointer<UInt8>
    private var start = 0
    private var end = 0
    /// The stream returned 0.
    private var atEnd = false
    /// A greenlet is parked in `stream.recv`.
    private var waiting = false
    /// Bytes moved to compact or grow the buffer, for tests to check that
    /// no input makes the reader quadratic.
    private(set) var bytesMoved = 0

    /// A reader of `stream` with a buffer of `capacity` bytes (at least 16).
    public init(_ stream: any ByteStream, capacity: Int = 16 * 1024) {
        self.stream = stream
        self.capacity = max(16, capacity)
        storage = .allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    /// Bytes buffered and not read yet.
    public var bufferedCount: Int { end - start }

    /// Whether the stream ended and every byte was read. Does not wait:
    /// false may just mean the end has not been seen yet.
    public var isAtEnd: Bool { atEnd && start == end }

    // MARK: - Lines

    /// The next line, without its "\n" or "\r\n" (a lone "\r" is kept);
    /// the last line is returned even if no newline ends it. Nil at the
    /// end of the stream with nothing left. Invalid UTF-8 is repaired
    /// (each bad sequence becomes U+FFFD); use `readLineBytes` for exact
    /// bytes.
    ///
    /// Throws `BufferedReadError.lineTooLong(limit: maxLength)` if the line
    /// is longer than `maxLength` bytes (its line end not counted),
    /// consuming nothing.
    public func readLine(maxLength: Int = 8192, timeout: Double? = nil) throws -> String? {
        try withLine(maxLength: maxLength, timeout: timeout) { String(decoding: $0, as: UTF8.self) }
    }

    /// The next line as bytes; see `readLine`.
    public func readLineBytes(maxLength: Int = 8192, timeout: Double? = nil) throws -> [UInt8]? {
        try withLine(maxLength: maxLength, timeout: timeout) { Array($0) }
    }

    /// Calls `body` with the next line's bytes where they lie in the
    /// buffer (no copy), without its "\n" or "\r\n", then consumes the
    /// line; returns `body`'s result, or nil at the end of the stream with
    /// nothing left. The bytes are valid only during `body`, which must
    /// not use this reader. Otherwise as `readLine`.
    public func withLine<R>(maxLength: Int = 8192, timeout: Double? = nil,
                            _ body: (UnsafeBufferPointer<UInt8>) throws -> R) throws -> R? {
        precondition(maxLength >= 0, "maxLength must not be negative")
        try checkIdle()
        let limit = maxLength > Int.max - 2 ? Int.max : maxLength + 2   // the line and "\r\n"
        let newline = UInt8(ascii: "\n")
        let found = try withUnsafeBytes(of: newline) {
            try scan(for: $0, limit: limit, tooLong: maxLength, timeout: timeout)
        }
        var length = found ?? (end - start)
        if found == nil && length == 0 { return nil }
        let taken = length
        if found != nil {
            length -= 1
            if length > 0 && storage[start + length - 1] == UInt8(ascii: "\r") { length -= 1 }
        }
        if length > maxLength { throw BufferedReadError.lineTooLong(limit: maxLength) }
        defer { consume(taken) }
        return try body(UnsafeBufferPointer(start: storage + start, count: length))
    }

    /// Iterates over the lines (see `readLine`) until the end of the
    /// stream, for a `for` loop, which cannot throw from its iterator:
    ///
    /// ```swift
    /// let lines = reader.lines(maxLength: 4096)
    /// for line in lines { ... }
    /// try lines.check()     // the error that ended the loop, if any
    /// ```
    ///
    /// If the greenlet is killed or an enclosing timeout expires while the
    /// loop waits, the loop ends and the interrupt is thrown at the
    /// greenlet's next blocking call (as a `for` loop over a `Queue`).
    /// Any other error (a line too long, a connection reset, the stream's
    /// own `timeout`) ends the loop and is kept in `Lines.error`:
    /// `check()` throws it. Where the difference matters, loop with
    /// `while let line = try reader.readLine()`.
    public func lines(maxLength: Int = 8192, timeout: Double? = nil) -> Lines {
        Lines(reader: self, maxLength: maxLength, timeout: timeout)
    }

    /// The lines of a reader, for a `for` loop; see
    /// `BufferedReader.lines(maxLength:timeout:)`. Iterates once: a second
    /// loop continues where the first one stopped. Confined, like its
    /// reader, to the thread that made it.
    public final class Lines: Sequence, IteratorProtocol {
        /// The reader the lines come from.
        public let reader: BufferedReader
        /// The longest line accepted; a longer one ends the loop with
        /// `BufferedReadError.lineTooLong`.
        public let maxLength: Int
        /// Seconds each wait for the stream may last (nil: the stream's
        /// default).
        public let timeout: Double?
        /// The error that ended the loop, other than an interrupt (which
        /// is rethrown at the next blocking call instead); nil if the loop
        /// has not ended or ended at the end of the stream (or by `break`).
        public private(set) var error: (any Error)?

        init(reader: BufferedReader, maxLength: Int, timeout: Double?) {
            self.reader = reader
            self.maxLength = maxLength
            self.timeout = timeout
        }

        /// Throws `error`, if the loop ended on one.
        public func check() throws {
            if let error { throw error }
        }

        /// The next line; nil at the end of the stream, on an interrupt
        /// (rearmed) and on any other error (kept in `error`), and from
        /// then on.
        public func next() -> String? {
            if error != nil { return nil }
            let outcome = separatingInterrupts { try reader.readLine(maxLength: maxLength, timeout: timeout) }
            switch outcome.result {
            case .success(let line):
                return line
            case .failure(let error):
                if outcome.interrupted {
                    Hub.rearmInterrupt()
                } else {
                    self.error = error
                }
                return nil
            }
        }
    }

    // MARK: - Delimited fields

    /// The bytes up to and including the next `delimiter` (any length;
    /// it may arrive cut across reads). At the end of the stream: the
    /// remaining bytes, without a delimiter (check the suffix to tell), or
    /// nil if none remain.
    ///
    /// Throws `BufferedReadError.lineTooLong(limit: maxLength)` if no
    /// delimiter ends within `maxLength` bytes (delimiter included),
    /// consuming nothing.
    public func read(until delimiter: [UInt8], maxLength: Int = 8192, timeout: Double? = nil) throws -> [UInt8]? {
        try withBytes(until: delimiter, maxLength: maxLength, timeout: timeout) { Array($0) }
    }

    /// The bytes up to and including the next `delimiter` byte; see
    /// `read(until:maxLength:timeout:)` for a byte sequence.
    public func read(until delimiter: UInt8, maxLength: Int = 8192, timeout: Double? = nil) throws -> [UInt8]? {
        try withBytes(until: [delimiter], maxLength: maxLength, timeout: timeout) { Array($0) }
    }

    /// Calls `body` with the bytes up to and including the next
    /// `delimiter` where they lie in the buffer (no copy), then consumes
    /// them; see `read(until:maxLength:timeout:)`. The bytes are valid
    /// only during `body`, which must not use this reader.
    public func withBytes<R>(until delimiter: [UInt8], maxLength: Int = 8192, timeout: Double? = nil,
                             _ body: (UnsafeBufferPointer<UInt8>) throws -> R) throws -> R? {
        precondition(!delimiter.isEmpty, "an empty delimiter")
        precondition(maxLength >= 0, "maxLength must not be negative")
        try checkIdle()
        let found = try delimiter.withUnsafeBytes {
            try scan(for: $0, limit: maxLength, tooLong: maxLength, timeout: timeout)
        }
        let length = found ?? (end - start)
        if found == nil && length == 0 { return nil }
        defer { consume(length) }
        return try body(UnsafeBufferPointer(start: storage + start, count: length))
    }

    // MARK: - Byte counts

    /// Exactly `n` bytes. Throws `BufferedReadError.unexpectedEnd` if the
    /// stream ends first; see `readExactly(into:timeout:)`.
    public func readExactly(_ n: Int, timeout: Double? = nil) throws -> [UInt8] {
        precondition(n >= 0, "a negative byte count")
        return try [UInt8](unsafeUninitializedCapacity: n) { buffer, count in
            try readExactly(into: UnsafeMutableRawBufferPointer(buffer), timeout: timeout)
            count = n
        }
    }

    /// Fills all of `buffer`. Throws `BufferedReadError.unexpectedEnd` if
    /// the stream ends first. Up to `capacity` bytes, the call waits until
    /// all of them are buffered, so an error (the end, a timeout, a kill)
    /// consumes nothing. A larger `buffer` gets the buffered bytes, then
    /// the rest straight from the stream (no copy through the buffer); an
    /// error then loses what this call had read.
    public func readExactly(into buffer: UnsafeMutableRawBufferPointer, timeout: Double? = nil) throws {
        try checkIdle()
        let n = buffer.count
        if n <= capacity {
            guard try ensure(n, timeout: timeout) else {
                throw BufferedReadError.unexpectedEnd(needed: n, got: end - start)
            }
            take(n, into: buffer)
            return
        }
        var got = take(min(n, end - start), into: buffer)
        while got < n {
            if atEnd { throw BufferedReadError.unexpectedEnd(needed: n, got: got) }
            got += try receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[got...]), timeout: timeout)
        }
    }

    /// Reads what is available into `buffer`: the buffered bytes if there
    /// are any, otherwise what one read of the stream gives (straight
    /// into `buffer` when it is at least `capacity` bytes). Returns the
    /// count; 0 at the end of the stream (or for an empty `buffer`).
    public func read(into buffer: UnsafeMutableRawBufferPointer, timeout: Double? = nil) throws -> Int {
        try checkIdle()
        if buffer.isEmpty { return 0 }
        if start == end {
            if atEnd { return 0 }
            if buffer.count >= capacity { return try receive(into: buffer, timeout: timeout) }
            if try fill(needed: 1, timeout: timeout) == 0 { return 0 }
        }
        return take(min(buffer.count, end - start), into: buffer)
    }

    /// For push parsers (an HTTP parser, a decoder) that take what they
    /// can and say how much: hands the buffered bytes to `body` without
    /// copying them, after one read of the stream if none are buffered,
    /// and consumes the count `body` returns (at most what it was given;
    /// the rest stays buffered for the next call). Returns false, without
    /// calling `body`, at the end of the stream. What `body` throws is
    /// rethrown with nothing consumed. `body` must not call this reader.
    public func withAvailableBytes(timeout: Double? = nil, _ body: (UnsafeRawBufferPointer) throws -> Int) throws -> Bool {
        try checkIdle()
        if start == end {
            if atEnd { return false }
            if try fill(needed: 1, timeout: timeout) == 0 { return false }
        }
        let used = try body(UnsafeRawBufferPointer(start: storage + start, count: end - start))
        precondition(used >= 0 && used <= end - start, "withAvailableBytes: consumed \(used) of \(end - start) bytes")
        consume(used)
        return true
    }

    /// The next `n` bytes without consuming them, waiting until they are
    /// buffered (the buffer grows if `n` is larger than it); fewer only at
    /// the end of the stream.
    public func peek(_ n: Int, timeout: Double? = nil) throws -> [UInt8] {
        precondition(n >= 0, "a negative byte count")
        try checkIdle()
        _ = try ensure(n, timeout: timeout)
        return Array(UnsafeBufferPointer(start: storage + start, count: min(n, end - start)))
    }

    // MARK: - The buffer

    /// Searches the unread bytes for `delimiter`, reading more while none
    /// is found within `limit` bytes. Returns the length up to the end of
    /// the first match, or nil at the end of the stream (every unread
    /// byte is then the tail, fewer than `limit`). Throws `.lineTooLong(
    /// limit: tooLong)` once `limit` bytes hold no match. Each byte is
    /// looked at once per call, however the bytes arrive.
    private func scan(for delimiter: UnsafeRawBufferPointer, limit: Int, tooLong: Int,
                      timeout: Double?) throws -> Int? {
        let d = delimiter.count
        let first = Int32(delimiter[0])
        // Offsets from `start`, which stay valid when the buffer moves.
        var from = 0   // the first place a match may still begin
        while true {
            let window = min(end - start, limit)
            let base = UnsafeRawPointer(storage + start)
            while from + d <= window {
                guard let hit = memchr(base + from, first, window - d + 1 - from) else { break }
                let at = base.distance(to: UnsafeRawPointer(hit))
                if d == 1 || memcmp(hit + 1, delimiter.baseAddress! + 1, d - 1) == 0 { return at + d }
                from = at + 1
            }
            from = max(from, window - d + 1)
            if end - start >= limit { throw BufferedReadError.lineTooLong(limit: tooLong) }
            if atEnd { return nil }
            try fill(needed: limit, timeout: timeout)
        }
    }

    /// Waits until `n` bytes are buffered; false if the stream ends first.
    private func ensure(_ n: Int, timeout: Double?) throws -> Bool {
        while end - start < n {
            if atEnd { return false }
            try fill(needed: n, timeout: timeout)
        }
        return true
    }

    /// One read of the stream into the free end of the buffer, making room
    /// first if there is none; the call in progress needs `needed` bytes
    /// buffered (more than there are). Returns the count read, 0 at the
    /// end.
    @discardableResult
    private func fill(needed: Int, timeout: Double?) throws -> Int {
        if end == capacity { makeRoom(needed: needed) }
        let n = try receive(into: UnsafeMutableRawBufferPointer(start: storage + end, count: capacity - end),
                            timeout: timeout)
        end += n
        return n
    }

    /// Frees space at the end of a full buffer for a call that needs
    /// `needed` bytes buffered. Compacts (moves the unread bytes to the
    /// front) when that leaves room for the whole need or frees at least
    /// half the buffer; otherwise grows the buffer, doubling it up to
    /// `needed`. Either way each move is paid for by bytes the call
    /// consumes or by the buffer doubling, so no input makes it quadratic.
    private func makeRoom(needed: Int) {
        let unread = end - start
        if start > 0 && (needed <= capacity || unread <= capacity / 2) {
            memmove(storage, storage + start, unread)
        } else {
            let grown = max(capacity + 1, min(capacity > Int.max / 2 ? Int.max : capacity * 2, needed))
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
            bigger.update(from: storage + start, count: unread)
            storage.deallocate()
            storage = bigger
            capacity = grown
        }
        bytesMoved += unread
        start = 0
        end = unread
    }

    /// Reads the stream once into `buffer` (not empty), noting its end.
    private func receive(into buffer: UnsafeMutableRawBufferPointer, timeout: Double?) throws -> Int {
        waiting = true
        defer { waiting = false }
        let n = try stream.recv(into: buffer, timeout: timeout)
        if n == 0 { atEnd = true }
        return n
    }

    /// Copies `n` buffered bytes into `buffer` and consumes them.
    @discardableResult
    private func take(_ n: Int, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        if n > 0 { buffer.baseAddress!.copyMemory(from: storage + start, byteCount: n) }
        consume(n)
        return n
    }

    /// Refuses a call while another greenlet waits in this reader: it
    /// holds offsets into the unread bytes that a consume would shift.
    @inline(__always)
    private func checkIdle() throws {
        if waiting { throw BufferedReadError.busy }
    }

    private func consume(_ n: Int) {
        start += n
        // An empty buffer starts over at the front.
        if start == end {
            start = 0
            end = 0
        }
    }
}
