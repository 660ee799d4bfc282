// Patch mode: blocking libc calls made inside a greenlet become
// cooperative, the analogue of gevent.monkey.patch_all(). The functions
// below are defined in this target with libc's names, so a program that
// links it (import GreenPatch) calls them instead of libc's; each calls
// the real one (dlsym(RTLD_NEXT)) unless patch mode is on and the caller
// runs in a spawned greenlet, in which case it asks the runtime (the
// hooks) to wait cooperatively.
#ifndef SWIFT_GREEN_PATCH_H
#define SWIFT_GREEN_PATCH_H

typedef struct green_patch_hooks {
    /// 1 when the calling thread runs a spawned greenlet (not a thread's
    /// main greenlet): only then does a call cooperate.
    int (*in_greenlet)(void);
    /// Parks the calling greenlet for `seconds`; 0 when the time passed,
    /// -1 when it was interrupted (killed, or a timeout expired).
    int (*sleep_for)(double seconds);
    /// Parks the calling greenlet until `fd` is readable (`writable` 0)
    /// or writable (1); 0 when it is, -1 when interrupted.
    int (*wait_fd)(int fd, int writable);
    /// Parks until one of `count` fds is ready (`events`: 1 readable, 2
    /// writable, 3 both) or `timeout` seconds passed (< 0: no limit); 0
    /// when something is ready or the time is up, -1 when interrupted.
    int (*wait_any)(const int *fds, const int *events, int count, double timeout);
    /// Runs `work(arg)` on another OS thread and parks until it is done
    /// (not interruptible: `arg` is the caller's until then). `arg`, and
    /// all `work` touches, must be on the heap, never on the caller's
    /// stack: a compact greenlet's stack is not there while it is parked.
    void (*run_elsewhere)(void (*work)(void *), void *arg);
} green_patch_hooks;

/// Turns patch mode on with `hooks`, or off with NULL.
void green_patch_set_hooks(const green_patch_hooks *hooks);

/// Calls that cooperated so far (for tests and diagnostics).
unsigned long green_patch_cooperative_calls(void);

/// The libc functions this target defines: the name of the `index`th
/// (from 0), and in `*address` (unless NULL) this program's definition of
/// it; NULL past the last. For checking that each is exported (a shared
/// library's call, or a dlopen'ed one's, binds to the definition found
/// first in the program's dynamic symbols).
const char *green_patch_interposer(unsigned index, void **address);

#endif
