import CZlib
import Glibc

/// A file written as a series of gzip members, one per `writeMember`
/// call, each complete on disk before the call returns: a reader can
/// start at any member boundary, and a process that dies leaves whole
/// members behind (the WARC convention of one record per member).
///
/// Bytes go to the file descriptor with write(2), member by member; there
/// is no user-space buffer left to lose. Not thread-safe: one thread at a
/// time. A blocking write to a local file is short enough to make on a
/// hub thread.
final class GzipMemberFile {
    let path: String
    private var fd: Int32
    // zlib's state points back at its z_stream (deflateStateCheck compares
    // the two), so the stream lives at a fixed address for the file's life;
    // `output` is the compressed bytes' staging area. Both are allocated in
    // init and freed in deinit, and nothing else keeps either pointer.
    private let stream: UnsafeMutablePointer<z_stream>
    private let output: UnsafeMutableBufferPointer<UInt8>
    /// The end of the last complete member: a failed write is cut back to
    /// it, so the file never ends in half a member.
    private var committed: off_t = 0
    /// Why the file can no longer be written, once it cannot.
    private var broken: String?

    /// Creates (or truncates) `path`. Throws `WARCError` naming the file
    /// when it cannot be opened or zlib cannot start.
    init(creating path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WARCError(path: path, message: "open: \(String(cString: strerror(errno)))") }
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        output = .allocate(capacity: 64 * 1024)
        // deflateInit2 is a macro; this is what it expands to. windowBits
        // 15 + 16: a gzip header and trailer around the deflate data.
        let rc = deflateInit2_(stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                               ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            // deinit runs (every property is set) and frees the rest.
            Glibc.close(fd)
            fd = -1
            throw WARCError(path: path, message: "zlib deflateInit2 failed (\(rc))")
        }
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
        // Harmless (Z_STREAM_ERROR) on a stream whose init failed.
        deflateEnd(stream)
        stream.deallocate()
        output.deallocate()
    }

    /// Compresses `parts`, in order, into one gzip member and writes it.
    /// Throws `WARCError` when a write fails (a full disk, say); the file
    /// is then cut back to the previous member and stays usable, unless
    /// even that failed, after which every call throws.
    func writeMember(_ parts: [UInt8]...) throws {
        if let broken { throw WARCError(path: path, message: broken) }
        guard fd >= 0 else { throw WARCError(path: path, message: "already closed") }
        do {
            for (index, part) in parts.enumerated() {
                try compress(part, finish: index == parts.count - 1)
            }
            committed = lseek(fd, 0, SEEK_CUR)
        } catch let error as WARCError {
            deflateReset(stream)
            if ftruncate(fd, committed) != 0 || lseek(fd, committed, SEEK_SET) != committed {
                broken = "\(error.message); the file could not be cut back to its last whole record"
            }
            throw error
        }
    }

    /// Closes the file. Throws `WARCError` when close(2) reports a failed
    /// write (as NFS may). Closing twice does nothing.
    func close() throws {
        guard fd >= 0 else { return }
        let rc = Glibc.close(fd)
        fd = -1
        if rc != 0 { throw WARCError(path: path, message: "close: \(String(cString: strerror(errno)))") }
    }

    private func compress(_ bytes: [UInt8], finish: Bool) throws {
        try bytes.withUnsafeBufferPointer { input in
            // zlib reads next_in and never writes through it (z_const).
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.pointee.avail_in = uInt(input.count)
            while true {
                stream.pointee.next_out = output.baseAddress
                stream.pointee.avail_out = uInt(output.count)
                let rc = deflate(stream, finish ? Z_FINISH : Z_NO_FLUSH)
                guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                    throw WARCError(path: path, message: "zlib deflate failed (\(rc))")
                }
                let produced = output.count - Int(stream.pointee.avail_out)
                try writeAll(UnsafeBufferPointer(rebasing: output[0..<produced]))
                if finish {
                    if rc == Z_STREAM_END { break }
                } else if stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 {
                    break
                }
            }
        }
        if finish { deflateReset(stream) }
    }

    private func writeAll(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        var rest = bytes
        while !rest.isEmpty {
            let n = write(fd, rest.baseAddress, rest.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw WARCError(path: path, message: "write: \(String(cString: strerror(errno)))")
            }
            rest = UnsafeBufferPointer(rebasing: rest[n...])
        }
    }
}
