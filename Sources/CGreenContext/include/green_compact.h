// swift-green: compact contexts (compact.c).
//
// A compact context runs on a run stack it shares with the hub's other
// compact contexts, and while another one runs there, its stack lives on
// the heap: only the bytes in use, [sp, top). Switching to a compact
// context whose image is not on the shared stack saves the current
// occupant's image and copies the target's back to the same addresses (so
// pointers into a stack stay valid across switches), on a small scratch
// stack of its own. Assembly contexts only; builds annotated for a
// sanitizer or Valgrind have none (init returns -1, ENOTSUP).
#ifndef SWIFT_GREEN_COMPACT_H
#define SWIFT_GREEN_COMPACT_H

#include <stddef.h>
#include <stdint.h>

#include "green_context.h"

#ifdef __cplusplus
extern "C" {
#endif

/// A compact context whose image outgrew the report limit, as noted
/// during a switch (the context may be gone by the time it is reported).
typedef struct green_compact_report {
    uint64_t id;
    char name[48];
    size_t bytes;
    size_t limit;
} green_compact_report;

typedef struct green_shared_stack {
    /// The run stack (guarded like any other) and the scratch stack the
    /// copies run on; each from a one-stack pool of its own.
    green_stack *stack;
    green_stack *scratch;
    green_stack_pool *stack_pool;
    green_stack_pool *scratch_pool;
    char *top;
    char *scratch_top;
    /// The context whose stack is on the run stack now (NULL: none).
    struct green_context *owner;
    /// An image saved beyond this many bytes is reported, once per
    /// context (0: never).
    size_t report_limit;
    /// Images saved and restored so far, and bytes copied doing it.
    uint64_t saves, restores, bytes_copied;
    /// Heap bytes held by the images of its contexts (their capacity),
    /// for the hub's figures.
    size_t image_bytes;
    /// Reports of images over the limit. A switch, where nothing but
    /// write(2) may run, writes them to stderr itself, unless reports are
    /// deferred (green_compact_set_deferred_reports): then it queues them
    /// here for the hub to take once the switch is over
    /// (green_shared_stack_take_report) and log; with the queue full, it
    /// writes them.
    green_compact_report pending[4];
    uint32_t pending_count;
} green_shared_stack;

/// A shared run stack of `size` usable bytes (guarded), or NULL with errno
/// set. Thread-confined, like the hub that owns it.
green_shared_stack *green_shared_stack_create(size_t size);
/// Only when no compact context on it is alive.
void green_shared_stack_destroy(green_shared_stack *shared);
/// Whether compact contexts exist in this build (assembly switch, no
/// sanitizer or Valgrind annotations).
int green_compact_available(void);
/// Prepares `ctx` to start `entry(arg)` on `shared` when first switched
/// to (its first frame is written then, not now: the shared stack may be
/// in use). Returns 0, or -1 with errno set (ENOTSUP: see above).
int green_context_init_compact(green_context *ctx, green_shared_stack *shared,
                               green_entry_fn entry, void *arg);
/// Frees a finished compact context's image (and leaves the shared stack
/// to nobody if it was the occupant). Nothing for other contexts.
void green_context_compact_release(green_context *ctx);
/// The out-of-line half of a switch to a compact context that is not on
/// its shared stack (defined in compact.c).
void green_switch_compact(green_context *from, green_context *to);
/// Whether switches queue their reports of images over the limit for
/// the hubs (1) or write them to stderr at once (0, the default).
/// Process-wide; any thread.
void green_compact_set_deferred_reports(int deferred);
/// Takes the oldest pending report of an image over the limit into
/// `out`; returns 0 when there is none. On the hub's thread, outside a
/// switch.
int green_shared_stack_take_report(green_shared_stack *shared, green_compact_report *out);
/// Writes `report` to stderr as one line, by the system call itself: the
/// runtime's plain output for it.
void green_compact_report_print(const green_compact_report *report);
/// Bytes of stack `ctx` holds on the heap while parked (0 if none).
static inline size_t green_context_saved_bytes(const green_context *ctx) { return ctx->saved_size; }

#ifdef __cplusplus
}
#endif

#endif
