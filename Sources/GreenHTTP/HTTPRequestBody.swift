import Glibc

/// What a request sends as its body: bytes in memory, pieces from a
/// producer as they come (for a body of any size, in constant memory), or
/// a file.
///
/// A body whose length is known goes with `Content-Length`; one whose
/// length is not (`stream(length: nil, ...)`) goes chunked. A body over
/// `HTTPClient.Options.expectContinueThreshold`, or of unknown length,
/// is announced with `Expect: 100-continue`: the client waits (at most
/// `expectContinueTimeout`) for the server's go-ahead before sending it,
/// and does not send it at all when the server answers first (a 401, a
/// 413).
///
/// A body is used on the greenlet that sends the request: a producer's
/// `next` runs there.
public enum HTTPRequestBody {
    /// These bytes, sent with their count as `Content-Length` (an empty
    /// body: `Content-Length: 0` for POST, PUT and PATCH, none otherwise).
    case bytes([UInt8])
    /// Pieces from `next` until it returns nil. `length`, when given, is
    /// what the pieces add up to (a mismatch ends the request with an
    /// error and closes the connection). `next` is called once per piece,
    /// on the calling greenlet; what it throws ends the request and is
    /// rethrown. A producer is read once: a request whose body streamed
    /// is not sent again, neither on a redirect that keeps the body (307,
    /// 308: that response is returned as it is) nor on a stale connection
    /// (unless none of it was written).
    case stream(length: Int?, next: () throws -> [UInt8]?)
    /// The file at this path, sent with its size as `Content-Length`, read
    /// piece by piece as it goes (again for a redirect or a retry). The
    /// reads are plain `read(2)` calls: they hold the hub for as long as
    /// the disk takes (as gevent's file reads do). A file that cannot be
    /// opened or read fails the request with `.requestBody`.
    case file(String)

    /// A body from a sequence of pieces (chunked: its length is not known
    /// in advance).
    public static func chunks<S: Sequence>(_ pieces: S) -> HTTPRequestBody where S.Element == [UInt8] {
        var iterator = pieces.makeIterator()
        return .stream(length: nil) { iterator.next() }
    }

    /// No body.
    public static var empty: HTTPRequestBody { .bytes([]) }

    /// Whether the body can be sent a second time (a redirect, a retry).
    var isReplayable: Bool {
        if case .stream = self { return false }
        return true
    }

    var isEmpty: Bool {
        if case .bytes(let b) = self { return b.isEmpty }
        return false
    }
}

/// A file being sent as a request body.
final class RequestBodyFile {
    let path: String
    let fd: Int32
    let size: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RequestBodyFile.failure(path, "cannot open", errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw RequestBodyFile.failure(path, "cannot stat", e)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw HTTPRequestBodyError(description: "request body \(path): not a regular file")
        }
        self.path = path
        self.fd = fd
        size = Int(st.st_size)
    }

    deinit { close(fd) }

    /// Reads the next piece into `buffer`; 0 at the end. Disk reads block
    /// the hub for as long as the page cache makes them take (as gevent's
    /// file reads do).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw RequestBodyFile.failure(path, "cannot read", errno) }
        }
    }

    static func failure(_ path: String, _ what: String, _ err: Int32) -> HTTPRequestBodyError {
        HTTPRequestBodyError(description: "request body \(path): \(what): \(String(cString: strerror(err)))")
    }
}

/// A request body that could not be sent as declared: a file that cannot
/// be read, or a stream whose pieces do not add up to its length.
public struct HTTPRequestBodyError: Error, CustomStringConvertible {
    /// What went wrong, naming the file.
    public let description: String
}
