/// An address handed to code on another thread that writes through it
/// only while its owner waits for that write (see `HubHandle.run`).
///
/// `@unchecked Sendable`: the memory is the owner's, allocated before the
/// address is handed over and freed only once the owner is resumed, which
/// the writer does after its write (or instead of it): one thread uses it
/// at a time, in the order the hand-over and the resumption set.
@usableFromInline
struct SendableAddress: @unchecked Sendable {
    @usableFromInline let raw: UnsafeMutableRawPointer
    @usableFromInline init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }
}
