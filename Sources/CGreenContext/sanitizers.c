// swift-green: telling AddressSanitizer and ThreadSanitizer about switches.
//
// Both tools keep per-stack state that a hand-made switch would leave
// behind: ASan knows the bounds of "the" stack of a thread (and keeps fake
// frames for detect_stack_use_after_return), TSan keeps a shadow call stack
// and the happens-before clock of the running thread of execution. Each
// offers fiber annotations for user-level switches:
//
//   ASan: __sanitizer_start_switch_fiber(&save, bottom, size) just before
//         the switch (save = NULL when the context leaves for good, which
//         frees its fake stack), and __sanitizer_finish_switch_fiber(save,..)
//         first thing on the other side (NULL on a context's first entry).
//   TSan: a fiber per context (__tsan_create_fiber), and
//         __tsan_switch_to_fiber(fiber, 0) just before the switch. Flags 0:
//         the switch synchronises, as it does, since greenlets of a thread
//         run one at a time.
//
// Compiled only into builds for one of the tools (GREEN_ANNOTATE_SWITCHES,
// defined by the package manifest when GREEN_SANITIZE=address|thread; the
// header routes green_context_switch here). A sanitized build without it
// would report false errors on every switch, so it does not compile.
// Valgrind needs no switch annotation, only its stacks registered
// (stack.c, GREEN_VALGRIND).
#define _GNU_SOURCE
#include "green_switch.h"
#include "green_tools.h"

#include <pthread.h>

#if GREEN_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if GREEN_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#if (GREEN_ASAN || GREEN_TSAN) && !defined(GREEN_ANNOTATE_SWITCHES)
#error "swift-green: a sanitized build must annotate its context switches: build with GREEN_SANITIZE=address or GREEN_SANITIZE=thread in the environment (see `make sanitize`)"
#endif

int green_context_tool_annotations(void) {
    int mask = 0;
#if GREEN_ASAN && defined(GREEN_ANNOTATE_SWITCHES)
    mask |= 1;
#endif
#if GREEN_TSAN && defined(GREEN_ANNOTATE_SWITCHES)
    mask |= 2;
#endif
#if defined(GREEN_VALGRIND)
    mask |= 4;
#endif
    return mask;
}

void green_tsan_release(const void *key) {
#if GREEN_TSAN
    __tsan_release((void *)key);
#else
    (void)key;
#endif
}

void green_tsan_acquire(const void *key) {
#if GREEN_TSAN
    __tsan_acquire((void *)key);
#else
    (void)key;
#endif
}

#if defined(GREEN_ANNOTATE_SWITCHES)

#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

// Apart from the context, whose size every greenlet pays for in the other
// builds: made with the context's first setup, kept while the hub reuses
// it, freed by green_context_destroy.
struct green_tool_state {
    /// ASan's fake stack of the context while it is suspended.
    void *asan_fake_stack;
    /// The bounds of a thread's own stack (contexts without a green_stack).
    const void *own_stack_bottom;
    size_t own_stack_size;
    /// TSan's fiber, and whether this context created it.
    void *tsan_fiber;
    uint8_t tsan_fiber_owned;
};

static struct green_tool_state *tool_state(green_context *ctx) {
    if (!ctx->tools) {
        ctx->tools = calloc(1, sizeof *ctx->tools);
        if (!ctx->tools) {
            static const char msg[] = "swift-green: out of memory for a context's sanitizer state\n";
            (void)!syscall(SYS_write, 2, msg, sizeof msg - 1);
            abort();
        }
    }
    return ctx->tools;
}

void green_tools_init_current(green_context *ctx) {
    struct green_tool_state *t = tool_state(ctx);
    // The thread's own stack: ASan needs its bounds to switch back to it.
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr = NULL;
        size_t size = 0;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            t->own_stack_bottom = addr;
            t->own_stack_size = size;
        }
        pthread_attr_destroy(&attr);
    }
#if GREEN_TSAN
    t->tsan_fiber = __tsan_get_current_fiber();
    t->tsan_fiber_owned = 0;
#endif
}

void green_tools_init(green_context *ctx) {
    struct green_tool_state *t = tool_state(ctx);
    (void)t;
#if GREEN_ASAN
    // A reused stack may still carry the poisoned redzones of frames its
    // last greenlet never returned from.
    __asan_unpoison_memory_region(ctx->stack->base, ctx->stack->size);
    t->asan_fake_stack = NULL;
#endif
#if GREEN_TSAN
    // A context the hub reuses keeps its fiber: TSan's fibers are costly
    // (a thread state each), and the greenlets a context runs one after
    // the other are ordered anyway, by the switches between them.
    if (!t->tsan_fiber || !t->tsan_fiber_owned) {
        t->tsan_fiber = __tsan_create_fiber(0);
        t->tsan_fiber_owned = 1;
    }
#endif
}

void green_tools_destroy(green_context *ctx) {
    struct green_tool_state *t = ctx->tools;
    if (!t) return;
#if GREEN_TSAN
    if (t->tsan_fiber && t->tsan_fiber_owned) __tsan_destroy_fiber(t->tsan_fiber);
#endif
    free(t);
    ctx->tools = NULL;
}

void green_tools_first_entry(green_context *ctx) {
    (void)ctx;
#if GREEN_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}

void green_context_switch_annotated(green_context *from, green_context *to, int final) {
#if GREEN_ASAN
    const void *bottom = to->stack ? (const void *)to->stack->base : to->tools->own_stack_bottom;
    size_t size = to->stack ? to->stack->size : to->tools->own_stack_size;
    __sanitizer_start_switch_fiber(final ? NULL : &from->tools->asan_fake_stack, bottom, size);
#else
    (void)final;
#endif
#if GREEN_TSAN
    __tsan_switch_to_fiber(to->tools->tsan_fiber, 0);
#endif
    green_context_switch_core(from, to);
    // Back in `from`, switched to by some other context.
#if GREEN_ASAN
    __sanitizer_finish_switch_fiber(from->tools->asan_fake_stack, NULL, NULL);
#endif
}

#endif
