// swift-green: switching between contexts.
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
#ifndef SWIFT_GREEN_SWITCH_H
#define SWIFT_GREEN_SWITCH_H

#include <stddef.h>

#include "green_access_set.h"
#include "green_compact.h"
#include "green_context.h"
#include "green_stack.h"

#ifdef __cplusplus
extern "C" {
#endif

// Implemented in assembly. Saves the callee-saved state on the current
// stack, stores the stack pointer in *save_sp, switches to load_sp and
// returns into whatever was saved there.
void green_switch_asm(void **save_sp, void *load_sp);
// Saves the callee-saved state on the current stack and the stack pointer
// in *save_sp like green_switch_asm, then calls fn(arg) on `scratch_top`,
// and switches to the stack pointer fn returns.
void green_switch_via(void **save_sp, void *arg, void *(*fn)(void *), void *scratch_top);
void green_context_switch_ucontext(green_context *from, green_context *to);

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

/// A happens-before edge ThreadSanitizer cannot see by itself, from a
/// release on `key` to an acquire of it (no-ops in other builds). Swift's
/// concurrency runtime is not instrumented: a continuation resumed before
/// its task reached the await hands the task everything the resumer wrote
/// through atomics of the runtime's that the tool does not know.
void green_tsan_release(const void *key);
void green_tsan_acquire(const void *key);

/// The bare switch without the runtime's bookkeeping, for the baseline
/// figure `c_switch_ns`: a C ping-pong between two contexts, `count` round
/// trips. Returns 0, or -1 if the assembly switch is not built.
int green_bench_c_pingpong(long count, size_t stack_size);

#ifdef __cplusplus
}
#endif

#endif
