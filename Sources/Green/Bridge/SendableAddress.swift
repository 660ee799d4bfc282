/// An address handed to code on another thread that writes through it
/// only while its owner waits for that write (see `HubHandle.run`).
@usableFromInline
struct SendableAddress: @unchecked Sendable {
    @usableFromInline let raw: UnsafeMutableRawPointer
    @usableFromInline init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }
}
