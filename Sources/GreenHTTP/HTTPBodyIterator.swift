import Green

/// A `for` loop over a body's pieces (`HTTPResponseStream`,
/// `HTTPRequestBodyStream`). A `for` loop cannot throw from its iterator:
/// an error ends the loop and is kept in the stream's `error`; a kill or
/// an expired timeout ends it too and is thrown at the greenlet's next
/// blocking call. Used on the greenlet that reads the stream.
public struct HTTPBodyIterator: IteratorProtocol {
    let nextPiece: () throws -> [UInt8]?
    let failed: (any Error) -> Void

    /// The next piece of the body, waiting for it as the stream's `next()`
    /// does (blocking only the calling greenlet); nil at the end or on an
    /// error (kept in the stream's `error`). Never throws.
    public mutating func next() -> [UInt8]? {
        do {
            return try nextPiece()
        } catch {
            failed(error)
            Hub.rearmInterrupt()
            return nil
        }
    }
}

/// The pieces `next` gives until the end, at most `limit` bytes; more
/// throws what `tooLarge` makes.
func collectBody(limit: Int, next: () throws -> [UInt8]?, tooLarge: () -> any Error) throws -> [UInt8] {
    var all: [UInt8] = []
    while let piece = try next() {
        guard all.count + piece.count <= limit else { throw tooLarge() }
        all += piece
    }
    return all
}
