/// A connected stream of bytes that reads and writes cooperatively: what
/// `BufferedReader` and `BufferedWriter` work over. `Socket` conforms
/// here, `TLSSocket` in GreenTLS; a test can conform a scripted fake.
///
/// Both calls block only the calling greenlet and throw the interrupt when
/// it is killed or an enclosing timeout expires. Confined, like the
/// streams themselves, to the thread that made the stream.
public protocol ByteStream: AnyObject {
    /// Reads what is available into `buffer` (waiting until something is;
    /// `buffer` is never empty), each wait at most `timeout` seconds (nil:
    /// the stream's default). Returns the byte count; 0 means the end of
    /// the stream.
    func recv(into buffer: UnsafeMutableRawBufferPointer, timeout: Double?) throws -> Int

    /// Writes all of `bytes`, waiting as long as the stream's rules for
    /// `timeout` allow (nil: the stream's default). If it throws, part of
    /// `bytes` may have been written.
    func sendAll(_ bytes: UnsafeRawBufferPointer, timeout: Double?) throws
}

extension Socket: ByteStream {}
