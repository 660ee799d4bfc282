// swift-green: execution contexts.
//
// A context is a suspended thread of execution: a saved stack pointer (the
// callee-saved registers and the floating-point control state live on the
// stack it points into) plus what the runtime needs to find out about it from
// a signal handler (its stack and its name). How contexts switch is in
// green_switch.h; compact contexts, which share a run stack, in
// green_compact.h.
#ifndef SWIFT_GREEN_CONTEXT_H
#define SWIFT_GREEN_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "green_stack.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum green_context_kind {
    GREEN_CONTEXT_ASM = 0,
    GREEN_CONTEXT_UCONTEXT = 1,
} green_context_kind;

typedef void (*green_entry_fn)(void *arg);

/// Bytes of a context's wait record (see `wait_record`).
enum { GREEN_WAIT_RECORD_BYTES = 64 };

/// Sanitizer bookkeeping of a context, kept apart (`green_context.tools`):
/// builds annotated for a sanitizer (see sanitizers.c) allocate it, the
/// others never do.
struct green_tool_state;

typedef struct green_context {
    /// Saved stack pointer while suspended (assembly contexts).
    void *sp;
    /// Swift exclusivity access set of this context while it is suspended.
    void *access_set[2];
    /// Only for ucontext contexts: a heap-allocated ucontext_t.
    void *ucontext;
    /// The stack this context runs on; NULL for a thread's original stack.
    green_stack *stack;
    green_entry_fn entry;
    union {
        /// The argument of `entry`, until the context first runs.
        void *entry_arg;
        /// Link in the hub's free list while the context is not in use
        /// (it is set up again, `entry_arg` included, when taken).
        struct green_context *next_free;
    };
    /// Identifies the context in overflow reports.
    uint64_t id;
    char name[48];
    uint8_t kind;          // green_context_kind
    uint8_t check_canary;  // stack has no guard page: check at switch-out
    uint8_t compact_reported; // its image outgrew the report limit (reported)
    uint8_t wait_record_busy; // wait_record holds a blocking call's record
    /// Sanitizer bookkeeping (NULL in builds not annotated for one).
    struct green_tool_state *tools;
    /// Compact contexts only (see compact.c): the run stack they share,
    /// and the image of their stack while another context runs on it.
    struct green_shared_stack *shared;
    void *saved;
    uint32_t saved_size;
    uint32_t saved_cap;
    /// What a blocking call of the context's greenlet keeps while it is
    /// parked and others write into (its wait-list node, its sleep's
    /// timer, its fd watcher): here rather than on its stack, so that a
    /// parked compact greenlet's stack, copied away, holds none of it, no
    /// wait allocates, and no blocking call's frame (kept whole in a
    /// compact greenlet's image) carries a buffer for one. A greenlet waits
    /// in one blocking call at a time; `wait_record_busy` says the record
    /// is taken.
    uint64_t wait_record[GREEN_WAIT_RECORD_BYTES / sizeof(uint64_t)];
} green_context;

/// The wait record of `ctx` (see `green_context.wait_record`).
static inline void *green_context_wait_record(green_context *ctx) { return ctx->wait_record; }

/// The kind of context the runtime uses by default: assembly where it
/// exists for this CPU, unless GREEN_FORCE_UCONTEXT was defined.
int green_context_default_kind(void);
/// Whether the assembly switch exists for this CPU.
int green_context_asm_available(void);

/// Makes `ctx` a context for the calling thread's current stack (a
/// thread's "main greenlet", or the stack a hub was created on).
void green_context_init_current(green_context *ctx, int kind);
/// Prepares `ctx` to start `entry(arg)` on `stack` when first switched to.
/// `entry` must never return: it ends by switching away for good.
/// Returns 0, or -1 with errno set.
int green_context_init(green_context *ctx, int kind, green_stack *stack,
                       green_entry_fn entry, void *arg);
/// Frees what `green_context_init` allocated (the ucontext, if any).
void green_context_destroy(green_context *ctx);

/// Sets the id and name (`length` bytes of UTF-8, cut to fit; 0 for none)
/// a context is reported by. The blocked-hub monitor reads them from its
/// own thread, so they are written word by word with relaxed atomics.
static inline void green_context_set_identity(green_context *ctx, uint64_t id,
                                              const char *name, size_t length) {
    __atomic_store_n(&ctx->id, id, __ATOMIC_RELAXED);
    enum { words = sizeof ctx->name / sizeof(uint64_t) };
    char padded[sizeof ctx->name];
    __builtin_memset(padded, 0, sizeof padded);
    if (length > sizeof padded - 1) length = sizeof padded - 1;
    if (length) __builtin_memcpy(padded, name, length);
    uint64_t *slots = (uint64_t *)(void *)ctx->name;
    for (size_t w = 0; w < words; w++) {
        uint64_t word;
        __builtin_memcpy(&word, padded + w * sizeof word, sizeof word);
        __atomic_store_n(&slots[w], word, __ATOMIC_RELAXED);
    }
}

/// Reports a smashed canary or a guard-page hit for `ctx` on stderr and
/// aborts. Async-signal-safe.
void green_context_report_overflow(const green_context *ctx, const void *fault, const char *how)
    __attribute__((noreturn));
/// Whether the canary at the bottom of `stack` is intact.
int green_stack_canary_intact(const green_stack *stack);

/// The context running on this thread, as far as switches tell; read by the
/// overflow handler.
extern __thread green_context *green_current_context;
static inline void green_current_context_set(green_context *ctx) { green_current_context = ctx; }

/// The calling thread's hub (an opaque, retained Swift object), or NULL.
extern __thread void *green_current_hub;
static inline void *green_hub_get(void) { return green_current_hub; }
static inline void green_hub_set(void *hub) { green_current_hub = hub; }

/// Installs the process-wide SIGSEGV/SIGBUS handler that recognises stack
/// overflows (once), and an alternate signal stack for the calling thread
/// (once per thread). Returns 0, or -1 with errno set.
int green_overflow_handler_install_for_thread(void);

#ifdef __cplusplus
}
#endif

#endif
