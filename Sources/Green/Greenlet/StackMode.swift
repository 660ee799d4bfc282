import CGreenContext
import Glibc

/// How a greenlet keeps its stack, chosen at spawn (per greenlet, or for
/// all of a `Group`, `Pool` or server).
///
/// - `dedicated` (the default): a stack of its own, from the hub's pool.
///   Switching is a register swap. A parked greenlet costs the stack pages
///   it has touched, at least one (4 KiB).
/// - `compact`: the greenlet runs on a run stack it shares with the hub's
///   other compact greenlets; while another runs there, its stack is on
///   the heap, only the bytes in use (Python's greenlet and libaco do the
///   same). A parked greenlet costs about what its frames hold (1 to 2 KiB
///   for one waiting on an event) plus its objects; a switch to it copies
///   its stack back (and the previous occupant's out), so switching costs
///   about twice a copy of both. Pointers into its stack stay valid across
///   switches (the bytes go back to the same addresses), but nothing else
///   may hold one while it is parked: a pointer to a local handed to
///   another greenlet or thread that uses it while the owner waits (the
///   runtime's own wait records are in the greenlet's context).
///
/// Choose compact for very many mostly idle greenlets (a server holding
/// a million idle connections), dedicated for greenlets that switch a lot
/// or have deep stacks. Both kinds run side by side on one hub. Compact
/// needs the assembly switch, and builds annotated for a sanitizer or
/// Valgrind have none: there, `compact` greenlets get a dedicated stack
/// (`AnyGreenlet.isCompact` tells). The shared run stack has the default
/// stack size the hub was made with (`Hub.defaultStackSize`): a compact
/// greenlet that asks for a larger `stackSize` gets a dedicated stack of
/// that size.
public enum StackMode: Sendable, Equatable {
    /// A stack of the greenlet's own, from the hub's pool.
    case dedicated
    /// The hub's shared run stack, the greenlet's part of it kept on the
    /// heap while another greenlet runs there.
    case compact

    /// The mode of a spawn that names none: `.dedicated`, unless the
    /// environment says `GREEN_STACK_MODE=compact` when the process starts
    /// (`make test-compact` runs the whole suite so).
    public static let `default`: StackMode = {
        guard let v = getenv("GREEN_STACK_MODE") else { return .dedicated }
        switch String(cString: v) {
        case "compact": return .compact
        case "dedicated", "": return .dedicated
        case let other:
            GreenDiagnostics.emit(
                .warning, "GREEN_STACK_MODE is neither compact nor dedicated; using dedicated",
                metadata: ["GREEN_STACK_MODE": "\(other)"],
                plainLine: "swift-green: GREEN_STACK_MODE=\(other) is neither compact nor dedicated; using dedicated\n")
            return .dedicated
        }
    }()

    /// Whether this build and process can run compact greenlets (the
    /// assembly switch, not `GREEN_CONTEXT=ucontext`, no sanitizer or
    /// Valgrind annotations).
    public static let compactAvailable: Bool = green_compact_available() != 0
}
