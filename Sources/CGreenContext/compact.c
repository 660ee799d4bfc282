// swift-green: compact contexts, which share one run stack per hub and keep
// only the bytes of stack they use on the heap while parked (the technique
// of Python's greenlet and of libaco).
//
// The run stack holds one context's stack at a time, its "owner". A switch
// to a compact context that is not the owner goes through green_switch_via:
// the current context is suspended as by any switch, then, on a scratch
// stack no context runs on, the owner's bytes [sp, top) are copied to its
// heap image and the target's image is copied back to the very addresses
// it came from (or, the first time, its first frame is written), and the
// target resumes. A switch to the owner, or away from a compact context to
// any other kind, is a plain switch: the owner's bytes stay where they are
// until another compact context needs the run stack (saving is lazy).
//
// Nothing may point into a parked compact context's stack from outside:
// the runtime keeps its wait records (wait-list nodes, libev watchers) in
// the context (green_context.wait_record), not on the stack. The copy runs in C inside the switch, so
// no Swift code (and no exclusivity check) sees a half-copied stack.
#define _GNU_SOURCE
#include "green_switch.h"
#include "green_tools.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { SCRATCH_STACK_BYTES = 64 * 1024 };

int green_compact_available(void) {
#if defined(GREEN_ANNOTATE_SWITCHES) || defined(GREEN_VALGRIND) || defined(GREEN_FORCE_UCONTEXT) || \
    !(defined(__x86_64__) || defined(__aarch64__))
    return 0;
#else
    return 1;
#endif
}

static char *aligned_top(const green_stack *st) {
    return (char *)(((uintptr_t)st->base + st->size) & ~(uintptr_t)15);
}

green_shared_stack *green_shared_stack_create(size_t size) {
    if (!green_compact_available()) {
        errno = ENOTSUP;
        return NULL;
    }
    green_shared_stack *sh = calloc(1, sizeof *sh);
    if (!sh) return NULL;
    sh->stack_pool = green_stack_pool_create(size, -1);
    sh->scratch_pool = green_stack_pool_create(SCRATCH_STACK_BYTES, -1);
    if (sh->stack_pool) sh->stack = green_stack_acquire(sh->stack_pool);
    if (sh->scratch_pool) sh->scratch = green_stack_acquire(sh->scratch_pool);
    if (!sh->stack || !sh->scratch) {
        int err = errno ? errno : ENOMEM;
        green_shared_stack_destroy(sh);
        errno = err;
        return NULL;
    }
    sh->top = aligned_top(sh->stack);
    sh->scratch_top = aligned_top(sh->scratch);
    sh->report_limit = 64 * 1024;
    return sh;
}

void green_shared_stack_destroy(green_shared_stack *sh) {
    if (!sh) return;
    if (sh->stack) green_stack_release(sh->stack_pool, sh->stack);
    if (sh->scratch) green_stack_release(sh->scratch_pool, sh->scratch);
    green_stack_pool_destroy(sh->stack_pool);
    green_stack_pool_destroy(sh->scratch_pool);
    free(sh);
}

int green_context_init_compact(green_context *ctx, green_shared_stack *sh, green_entry_fn entry, void *arg) {
    if (!green_compact_available() || !sh) {
        errno = ENOTSUP;
        return -1;
    }
    ctx->sp = NULL;   // no image yet: the first frame is written when it first runs
    ctx->access_set[0] = ctx->access_set[1] = NULL;
    ctx->stack = sh->stack;
    ctx->entry = entry;
    ctx->entry_arg = arg;
    ctx->kind = GREEN_CONTEXT_ASM;
    ctx->check_canary = sh->stack->guard_kind == GREEN_GUARD_CANARY;
    ctx->compact_reported = 0;
    ctx->wait_record_busy = 0;
    ctx->shared = sh;
    ctx->saved_size = 0;
    return 0;
}

void green_context_compact_release(green_context *ctx) {
    green_shared_stack *sh = ctx->shared;
    if (!sh) return;
    if (sh->owner == ctx) sh->owner = NULL;
    sh->image_bytes -= ctx->saved_cap;
    free(ctx->saved);
    ctx->saved = NULL;
    ctx->saved_size = ctx->saved_cap = 0;
    ctx->shared = NULL;
    ctx->compact_reported = 0;
}

// Messages go out by the system call itself: with patch mode linked,
// write() is an interposer that may run Swift code and even park, which
// must not happen in the middle of a switch.
static void say(const char *msg, size_t len) { (void)!syscall(SYS_write, 2, msg, len); }

static void die(const char *msg, size_t len) {
    say(msg, len);
    abort();
}

void green_compact_report_print(const green_compact_report *r) {
    char line[256];
    int len = snprintf(line, sizeof line,
                       "swift-green: compact greenlet %s (id %llu) parked with %zu bytes of stack, over the "
                       "report limit of %zu: its image costs that much heap while it is parked\n",
                       r->name[0] ? r->name : "(unnamed)", (unsigned long long)r->id, r->bytes, r->limit);
    if (len > 0) say(line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
}

static _Atomic int reports_deferred = 0;

void green_compact_set_deferred_reports(int deferred) {
    atomic_store_explicit(&reports_deferred, deferred, memory_order_relaxed);
}

// Inside a switch: written now, or, when reports are deferred, noted for
// the hub to report once the switch is over (written now all the same
// with the queue full).
static void report_large_image(green_shared_stack *sh, green_context *c, size_t n) {
    c->compact_reported = 1;
    green_compact_report r = { .id = c->id, .bytes = n, .limit = sh->report_limit };
    _Static_assert(sizeof r.name == sizeof c->name, "a report holds a context's name");
    memcpy(r.name, c->name, sizeof r.name);
    r.name[sizeof r.name - 1] = 0;
    if (atomic_load_explicit(&reports_deferred, memory_order_relaxed)
        && sh->pending_count < sizeof sh->pending / sizeof sh->pending[0]) {
        sh->pending[sh->pending_count++] = r;
    } else {
        green_compact_report_print(&r);
    }
}

int green_shared_stack_take_report(green_shared_stack *sh, green_compact_report *out) {
    if (sh->pending_count == 0) return 0;
    *out = sh->pending[0];
    sh->pending_count--;
    memmove(&sh->pending[0], &sh->pending[1], sh->pending_count * sizeof sh->pending[0]);
    return 1;
}

// Copies the run stack's owner out to its image.
static void save_image(green_shared_stack *sh, green_context *c) {
    size_t n = (size_t)(sh->top - (char *)c->sp);
    // Exact size, so that a parked greenlet holds what it uses; kept while
    // it fits and is not more than twice too big.
    if (n > c->saved_cap || n < c->saved_cap / 2) {
        void *p = realloc(c->saved, n);
        if (!p) {
            static const char msg[] = "swift-green: out of memory saving a compact greenlet's stack\n";
            die(msg, sizeof msg - 1);
        }
        c->saved = p;
        sh->image_bytes += n - c->saved_cap;
        c->saved_cap = (uint32_t)n;
    }
    memcpy(c->saved, c->sp, n);
    c->saved_size = (uint32_t)n;
    sh->saves++;
    sh->bytes_copied += n;
    if (sh->report_limit && n > sh->report_limit && !c->compact_reported) report_large_image(sh, c, n);
}

// Runs on the scratch stack: the owner out, the target in. Returns the
// stack pointer to resume the target at.
static void *swap_in(void *arg) {
    green_context *to = arg;
    green_shared_stack *sh = to->shared;
    if (sh->owner) save_image(sh, sh->owner);
    if (to->sp == NULL) {
        green_context_first_frame(to, to->entry, to->entry_arg);
    } else {
        memcpy(to->sp, to->saved, to->saved_size);
        sh->restores++;
        sh->bytes_copied += to->saved_size;
        to->saved_size = 0;
    }
    sh->owner = to;
    return to->sp;
}

void green_switch_compact(green_context *from, green_context *to) {
    green_switch_via(&from->sp, to, swap_in, to->shared->scratch_top);
}
