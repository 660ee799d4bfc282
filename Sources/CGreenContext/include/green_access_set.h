// swift-green: each context's own Swift exclusivity access set.
//
// Swift's dynamic exclusivity checking keeps a per-thread list of open
// accesses. A greenlet that suspends inside an `inout` access would leave
// that access visible to every other greenlet on the thread, which then
// trips "Simultaneous accesses" on innocent code. Swift Concurrency solves
// the same problem for tasks with swift_task_{enter,exit}ThreadLocalContext;
// each context here has the same two-word access-set slot and the switch
// moves the outgoing context's accesses out of the thread's list and the
// incoming one's in. A greenlet therefore sees only its own open accesses,
// exactly like a task.
#ifndef SWIFT_GREEN_ACCESS_SET_H
#define SWIFT_GREEN_ACCESS_SET_H

#include "green_context.h"

#ifdef __cplusplus
extern "C" {
#endif

// Provided by the Swift runtime (libswiftCore); see the note at the top.
void swift_task_enterThreadLocalContext(char *state);
void swift_task_exitThreadLocalContext(char *state);

/// The Swift runtime's per-thread head of open accesses, when it could be
/// located and verified for this thread (see access_set.c); NULL means the
/// switch goes through the runtime's enter/exit functions instead.
extern __thread void **green_access_head_slot;
/// Locates the slot for the calling thread (once). Called by
/// green_context_init_current, before the thread's first switch.
void green_access_resolve_for_thread(void);
/// Whether the calling thread switches access lists with the fast path.
int green_access_fast_path(void);

/// Moves the exclusivity accesses of `from` off the thread and those of
/// `to` onto it. Invariant kept by every switch: between switches the
/// thread's list holds exactly the running context's accesses, so moving
/// whole lists needs neither splicing nor tails.
static inline __attribute__((always_inline))
void green_access_swap(green_context *from, green_context *to) {
    void **slot = green_access_head_slot;
    if (__builtin_expect(slot != NULL, 1)) {
        from->access_set[0] = *slot;
        *slot = to->access_set[0];
        to->access_set[0] = NULL;
    } else {
        swift_task_exitThreadLocalContext((char *)from->access_set);
        swift_task_enterThreadLocalContext((char *)to->access_set);
    }
}

#ifdef __cplusplus
}
#endif

#endif
