// swift-green: execution contexts and their stacks.
//
// DESIGN
//
// A context is a suspended thread of execution: a saved stack pointer (the
// callee-saved registers and the floating-point control state live on the
// stack it points into) plus what the runtime needs to find out about it from
// a signal handler (its stack and its name).
//
// Switching (`green_context_switch`) is a plain function call into a few
// instructions of assembly (switch_x86_64.S, switch_aarch64.S): push the
// callee-saved registers and the FP control word(s), store the stack pointer,
// load the other one, pop, return. No system call, no signal mask: a
// greenlet does not own a signal mask, its OS thread does. Everything the
// ABI lets a callee clobber is already saved by the compiler at the call
// site, which is why this is enough.
//
// `ucontext` (makecontext/swapcontext) is the portable fallback. It builds
// everywhere, costs a `rt_sigprocmask` system call per switch, and can be
// forced with -DGREEN_FORCE_UCONTEXT (env GREEN_CONTEXT=ucontext when
// building the package), so both paths are tested and measured.
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
#ifndef SWIFT_GREEN_CONTEXT_H
#define SWIFT_GREEN_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------- stacks

/// How a stack's lower end is protected.
typedef enum green_guard_kind {
    /// MADV_GUARD_INSTALL (Linux 6.13+): guard pages that live in the page
    /// tables and do not split the memory mapping, so they cost no entry of
    /// vm.max_map_count. Preferred whenever the kernel has it.
    GREEN_GUARD_MADVISE = 0,
    /// mprotect(PROT_NONE): a classic guard page. Each one splits the slab's
    /// mapping in two, so they are handed out up to a process-wide budget.
    GREEN_GUARD_MPROTECT = 1,
    /// No guard page: a canary pattern at the bottom of the stack, checked
    /// each time the context switches out and when the stack is released.
    GREEN_GUARD_CANARY = 2,
} green_guard_kind;

typedef struct green_stack {
    /// Lowest usable address (just above the guard zone).
    char *base;
    /// Usable bytes, from `base` up.
    size_t size;
    struct green_stack *next_free;
    /// Bytes below `base` that fault when touched (0 for canary stacks).
    uint32_t guard_size;
    uint8_t guard_kind;      // green_guard_kind
    uint8_t guard_installed; // guard set up on first use, kept across reuse
    uint8_t in_use;
    /// Valgrind's id for this stack (builds with GREEN_VALGRIND only).
    uint32_t valgrind_id;
} green_stack;

typedef struct green_stack_pool green_stack_pool;

/// Creates a pool of stacks of `stack_size` usable bytes (rounded up to
/// pages). `guard_kind` < 0 picks the best the kernel offers. Thread-
/// confined: one pool per hub.
green_stack_pool *green_stack_pool_create(size_t stack_size, int guard_kind);
/// Unmaps every slab. Only call when no stack of the pool is in use.
void green_stack_pool_destroy(green_stack_pool *pool);
/// A stack ready to run on, from the free list or a new slab; NULL with
/// errno set when memory (or the mapping budget) is exhausted.
green_stack *green_stack_acquire(green_stack_pool *pool);
/// Returns a stack to the free list. Stacks beyond the pool's idle limit
/// give their pages back to the kernel (MADV_DONTNEED) but keep their
/// address range, guard and slot.
void green_stack_release(green_stack_pool *pool, green_stack *stack);
size_t green_stack_pool_stack_size(const green_stack_pool *pool);
size_t green_stack_pool_in_use(const green_stack_pool *pool);
size_t green_stack_pool_free_count(const green_stack_pool *pool);
size_t green_stack_pool_resident_free_count(const green_stack_pool *pool);
size_t green_stack_pool_total(const green_stack_pool *pool);
size_t green_stack_pool_slab_count(const green_stack_pool *pool);
/// How many stacks of each guard kind the pool has set up.
size_t green_stack_pool_guarded(const green_stack_pool *pool, int guard_kind);
void green_stack_pool_set_idle_limit(green_stack_pool *pool, size_t limit);
/// The guard kind `green_stack_pool_create(.., -1)` picks on this kernel,
/// after environment overrides (GREEN_STACK_GUARD=madvise|mprotect|canary).
int green_stack_default_guard_kind(void);
/// Process-wide number of mprotect guard pages that may still be set up.
long green_stack_mprotect_budget_left(void);
void green_stack_set_mprotect_budget(long budget);

// -------------------------------------------------------------- contexts

typedef enum green_context_kind {
    GREEN_CONTEXT_ASM = 0,
    GREEN_CONTEXT_UCONTEXT = 1,
} green_context_kind;

typedef void (*green_entry_fn)(void *arg);

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
    void *entry_arg;
    /// Link in the hub's free list while the context is not in use.
    struct green_context *next_free;
    /// Identifies the context in overflow reports.
    uint64_t id;
    char name[48];
    uint8_t kind;          // green_context_kind
    uint8_t check_canary;  // stack has no guard page: check at switch-out
    uint8_t tsan_fiber_owned; // tsan_fiber was created for this context
    uint8_t compact_reported; // its image outgrew the report limit (reported)
    /// Sanitizer bookkeeping, used only by builds annotated for a sanitizer
    /// (see sanitizers.c): AddressSanitizer's fake stack of this context
    /// while it is suspended, the bounds of a thread's own stack (contexts
    /// without a green_stack), ThreadSanitizer's fiber.
    void *asan_fake_stack;
    const void *own_stack_bottom;
    size_t own_stack_size;
    void *tsan_fiber;
    /// Compact contexts only (see compact.c): the run stack they share,
    /// and the image of their stack while another context runs on it.
    struct green_shared_stack *shared;
    void *saved;
    uint32_t saved_size;
    uint32_t saved_cap;
} green_context;

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

// ----------------------------------------------------------- the switch

// Implemented in assembly. Saves the callee-saved state on the current
// stack, stores the stack pointer in *save_sp, switches to load_sp and
// returns into whatever was saved there.
void green_switch_asm(void **save_sp, void *load_sp);
// Saves the callee-saved state on the current stack and the stack pointer
// in *save_sp like green_switch_asm, then calls fn(arg) on `scratch_top`,
// and switches to the stack pointer fn returns.
void green_switch_via(void **save_sp, void *arg, void *(*fn)(void *), void *scratch_top);
void green_context_switch_ucontext(green_context *from, green_context *to);

// Provided by the Swift runtime (libswiftCore); see the design note above.
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

// ------------------------------------------------------ compact contexts
//
// A compact context runs on a run stack it shares with the hub's other
// compact contexts, and while another one runs there, its stack lives on
// the heap: only the bytes in use, [sp, top). Switching to a compact
// context whose image is not on the shared stack saves the current
// occupant's image and copies the target's back to the same addresses (so
// pointers into a stack stay valid across switches), on a small scratch
// stack of its own. Assembly contexts only; builds annotated for a
// sanitizer or Valgrind have none (init returns -1, ENOTSUP).

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

/// The switch itself, without the canary check and sanitizer annotations.
static inline __attribute__((always_inline))
void green_context_switch_core(green_context *from, green_context *to) {
    green_access_swap(from, to);
    green_current_context = to;
#if defined(GREEN_FORCE_UCONTEXT) || !(defined(__x86_64__) || defined(__aarch64__))
    green_context_switch_ucontext(from, to);
#else
    if (__builtin_expect(from->kind == GREEN_CONTEXT_ASM, 1)) {
        if (__builtin_expect(to->shared != NULL, 0) && to->shared->owner != to) {
            green_switch_compact(from, to);
        } else {
            green_switch_asm(&from->sp, to->sp);
        }
    } else {
        green_context_switch_ucontext(from, to);
    }
#endif
}

// Sanitizers (AddressSanitizer, ThreadSanitizer) must be told about every
// switch between stacks. Builds for them define GREEN_ANNOTATE_SWITCHES for
// this header in C and in Swift (env GREEN_SANITIZE=address|thread when
// building the package; `make sanitize`), and the switch then goes through
// sanitizers.c. Other builds compile none of it.
#if defined(GREEN_ANNOTATE_SWITCHES)
/// `final`: `from` has finished and is never switched back to.
void green_context_switch_annotated(green_context *from, green_context *to, int final);
#endif

/// Suspends `from` (the running context) and resumes `to`. Returns when
/// something switches back to `from`.
static inline __attribute__((always_inline))
void green_context_switch(green_context *from, green_context *to) {
    if (__builtin_expect(from->check_canary, 0) && !green_stack_canary_intact(from->stack)) {
        green_context_report_overflow(from, NULL, "its canary was overwritten (stack has no guard page)");
    }
#if defined(GREEN_ANNOTATE_SWITCHES)
    green_context_switch_annotated(from, to, 0);
#else
    green_context_switch_core(from, to);
#endif
}

/// The last switch away from a finished context, which is never resumed.
static inline __attribute__((always_inline))
void green_context_exit_to(green_context *from, green_context *to) {
    // A finished compact context's stack is dead: nothing to save.
    if (__builtin_expect(from->shared != NULL, 0) && from->shared->owner == from) from->shared->owner = NULL;
#if defined(GREEN_ANNOTATE_SWITCHES)
    if (__builtin_expect(from->check_canary, 0) && !green_stack_canary_intact(from->stack)) {
        green_context_report_overflow(from, NULL, "its canary was overwritten (stack has no guard page)");
    }
    green_context_switch_annotated(from, to, 1);
#else
    green_context_switch(from, to);
#endif
}

/// Which tools this build annotates switches and stacks for: a mask of
/// 1 (AddressSanitizer), 2 (ThreadSanitizer), 4 (Valgrind).
int green_context_tool_annotations(void);

/// The bare switch without the runtime's bookkeeping, for the baseline
/// figure `c_switch_ns`: a C ping-pong between two contexts, `count` round
/// trips. Returns 0, or -1 if the assembly switch is not built.
int green_bench_c_pingpong(long count, size_t stack_size);

#ifdef __cplusplus
}
#endif


// ------------------------------------------------------- blocked-hub monitor
//
// A watchdog thread notices a hub whose running greenlet has not switched
// for longer than a threshold (a greenlet spinning, or blocking in a call
// that does not cooperate) and reports it once per incident, naming the
// greenlet, with a backtrace taken on the blocked thread (a signal).
// Each hub owns a green_hub_monitor; the hub thread writes it on every
// switch (one writer) and the watchdog only reads. Both sides use relaxed
// atomic loads and stores, which on x86_64 and aarch64 are the plain moves
// they would be anyway, and make the sharing well defined (and clean under
// ThreadSanitizer). The epoch tells the watchdog whether what it read is
// still the same incident, as in a sequence lock.

typedef struct green_hub_monitor {
    /// Bumped by the hub on every switch and every loop pass.
    uint64_t epoch;
    /// 1 while the hub waits for events (idle, not blocked).
    int idle;
    /// Spawned greenlets alive on the hub: a thread with none (only its
    /// main greenlet) stalls nobody when it blocks, and is not reported.
    int others;
    /// The context running on the hub.
    const green_context *current;
    // The watchdog's own view, and the registry link.
    uint64_t seen_epoch;
    double seen_since;
    int reported;
    void *thread;                       // pthread_t of the hub's thread
    int tid;                            // its kernel thread id
    struct green_hub_monitor *next;
    // Filled by the blocked thread's signal handler.
    void *backtrace[48];
    int backtrace_count;
    int backtrace_ready;
    /// Incidents reported for this hub (written by the watchdog, read by
    /// the hub's figures).
    uint64_t incidents;
    /// The hub's number, named in reports (green_monitor_set_tag).
    uint64_t tag;
} green_hub_monitor;

/// Registers `m` for the calling thread's hub (starts the watchdog on
/// first use unless the monitor is off).
void green_monitor_register(green_hub_monitor *m);
void green_monitor_unregister(green_hub_monitor *m);

static inline void green_monitor_switched(green_hub_monitor *m, const green_context *to) {
    __atomic_store_n(&m->current, to, __ATOMIC_RELAXED);
    __atomic_store_n(&m->epoch, __atomic_load_n(&m->epoch, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}
static inline void green_monitor_set_idle(green_hub_monitor *m, int idle) {
    __atomic_store_n(&m->idle, idle, __ATOMIC_RELAXED);
    __atomic_store_n(&m->epoch, __atomic_load_n(&m->epoch, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}
static inline void green_monitor_set_others(green_hub_monitor *m, int others) {
    __atomic_store_n(&m->others, others, __ATOMIC_RELAXED);
}

/// Seconds a greenlet may hold its hub before a report; 0 turns the
/// monitor off. Default 0.1, or GREEN_MONITOR_MS (0: off) from the
/// environment.
void green_monitor_set_threshold(double seconds);
double green_monitor_threshold(void);
/// Reports made so far, and the last one's text (copied into `buffer`).
uint64_t green_monitor_report_count(void);
void green_monitor_last_report(char *buffer, size_t size);
/// Whether reports are emitted (default 1): written to standard error,
/// or handed to the sink. Off, they are still counted and kept.
void green_monitor_set_print(int print);
/// Sets the number reports name the hub by (the registry's).
void green_monitor_set_tag(green_hub_monitor *m, uint64_t tag);
/// Incidents reported for `m`'s hub so far. Any thread.
static inline uint64_t green_monitor_incidents(const green_hub_monitor *m) {
    return __atomic_load_n(&m->incidents, __ATOMIC_RELAXED);
}

/// One blocked-hub report, as handed to the sink.
typedef struct green_monitor_incident {
    /// The whole report, exactly as written to stderr by default.
    const char *text;
    /// The greenlet that held the hub, and the hub's tag.
    const char *greenlet;
    uint64_t hub_tag;
    double held_seconds;
    double threshold_seconds;
    /// The system call the thread waits in (-1: it was running on the CPU,
    /// or unknown), and its name ("" if unknown).
    long syscall_number;
    const char *syscall_name;
    /// The blocked thread's backtrace, one symbol line each (none if the
    /// thread waited in the kernel).
    char *const *backtrace;
    int backtrace_count;
} green_monitor_incident;

/// Receives each report on the watchdog thread, no lock of the monitor
/// held; returns nonzero if it took the report, 0 to have it written to
/// stderr as by default. Must not block for long: the watchdog watches
/// every hub.
typedef int (*green_monitor_sink_fn)(const green_monitor_incident *incident);
/// Sets (or, with NULL, removes) the sink. Any thread.
void green_monitor_set_sink(green_monitor_sink_fn sink);

#endif
