import CGreenPatch
import Green

/// Patch mode (opt-in): inside a spawned greenlet, `sleep`, `usleep` and
/// `nanosleep` called from C (or any code in this program that calls
/// libc's) park the greenlet instead of the thread, so other greenlets run
/// meanwhile: the analogue of `gevent.monkey.patch_all()` for these calls.
/// Outside greenlets, and when patch mode is off, the calls are libc's.
///
/// Covered: the sleep family, and `read`, `write`, `recv`, `send`,
/// `connect`, `accept` and `accept4` on sockets in blocking mode (other
/// fds, and sockets the program made non-blocking, get libc's call), when
/// called from code linked into the program (the interposed symbols are
/// defined in the executable). Not yet: `poll`/`select`, `getaddrinfo`,
/// and calls made from inside shared libraries (an LD_PRELOAD build of the
/// same interposers).
public enum PatchMode {
    // Written once, then only read (by C, from any thread).
    nonisolated(unsafe) private static let hooks: UnsafeMutablePointer<green_patch_hooks> = {
        let p = UnsafeMutablePointer<green_patch_hooks>.allocate(capacity: 1)
        p.initialize(to: green_patch_hooks(
            in_greenlet: { Hub.isInSpawnedGreenlet ? 1 : 0 },
            sleep_for: { seconds in
                do {
                    try Green.sleep(seconds)
                    return 0
                } catch {
                    // The interrupt (kill, timeout) is re-armed for the
                    // greenlet's next cooperative call.
                    Hub.rearmInterrupt()
                    return -1
                }
            },
            wait_fd: { fd, writable in
                do {
                    _ = writable != 0 ? try waitWritable(fd: fd) : try waitReadable(fd: fd)
                    return 0
                } catch {
                    Hub.rearmInterrupt()
                    return -1
                }
            }))
        return p
    }()

    /// Turns patch mode on (process-wide).
    public static func enable() { green_patch_set_hooks(hooks) }

    /// Turns it off: the calls are libc's again.
    public static func disable() { green_patch_set_hooks(nil) }

    /// Calls that cooperated since the program started.
    public static var cooperativeCalls: UInt { UInt(green_patch_cooperative_calls()) }
}
