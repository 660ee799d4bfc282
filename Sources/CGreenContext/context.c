// swift-green: setting up contexts, and the ucontext fallback.
#define _GNU_SOURCE
#include "green_frames.h"
#include "green_switch.h"
#include "green_tools.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(offsetof(green_context, name) % sizeof(uint64_t) == 0,
               "green_context_set_identity stores the name in 8-byte words");

__thread green_context *green_current_context;
__thread void *green_current_hub;

#if defined(GREEN_FORCE_UCONTEXT) || !(defined(__x86_64__) || defined(__aarch64__))
#define GREEN_HAVE_ASM_DEFAULT 0
#else
#define GREEN_HAVE_ASM_DEFAULT 1
#endif

#if defined(__x86_64__) || defined(__aarch64__)
#define GREEN_HAVE_ASM 1
#else
#define GREEN_HAVE_ASM 0
#endif

int green_context_default_kind(void) {
    return GREEN_HAVE_ASM_DEFAULT ? GREEN_CONTEXT_ASM : GREEN_CONTEXT_UCONTEXT;
}

int green_context_asm_available(void) { return GREEN_HAVE_ASM; }

static int effective_kind(int kind) {
    if (!GREEN_HAVE_ASM_DEFAULT) return GREEN_CONTEXT_UCONTEXT;
    return kind;
}

void green_context_init_current(green_context *ctx, int kind) {
    green_access_resolve_for_thread();
    memset(ctx, 0, sizeof *ctx);
    ctx->kind = (uint8_t)effective_kind(kind);
    if (ctx->kind == GREEN_CONTEXT_UCONTEXT) {
        // Filled by the first swapcontext away from this stack.
        ctx->ucontext = calloc(1, sizeof(ucontext_t));
    }
#if defined(GREEN_ANNOTATE_SWITCHES)
    green_tools_init_current(ctx);
#endif
}

// The return address makecontext gives a context's first frame (the same
// for every context: the C library's start of a context), for backtraces.
// Atomic: every hub's thread stores it, a dump's reads it.
static _Atomic uintptr_t ucontext_entry_return;

uintptr_t green_ucontext_entry_return(void) {
    return atomic_load_explicit(&ucontext_entry_return, memory_order_relaxed);
}

// makecontext passes int arguments only, so the context pointer travels
// as two 32-bit halves.
static void ucontext_start(unsigned int hi, unsigned int lo) {
    green_context *ctx = (green_context *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
#if defined(GREEN_ANNOTATE_SWITCHES)
    green_tools_first_entry(ctx);
#endif
    ctx->entry(ctx->entry_arg);
    abort(); // entry functions never return
}

#if defined(GREEN_ANNOTATE_SWITCHES)
// The first frame of an assembly context in an annotated build: tells the
// tool the switch has landed, then runs the entry function.
static void annotated_start(void *arg) {
    green_context *ctx = arg;
    green_tools_first_entry(ctx);
    ctx->entry(ctx->entry_arg);
    abort(); // entry functions never return
}
#endif

#if defined(__x86_64__)
extern void green_start_x86_64(void);
#elif defined(__aarch64__)
extern void green_start_aarch64(void);
#endif

// Builds the first frame green_switch_asm will pop on a fresh stack.
int green_context_first_frame(green_context *ctx, green_entry_fn entry, void *arg) {
    uintptr_t top = ((uintptr_t)ctx->stack->base + ctx->stack->size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    // See switch_x86_64.S for the frame. The return slot sits at an
    // address = 8 (mod 16) so that green_start_x86_64 runs with rsp = 0
    // (mod 16) and its `call` gives the entry function a normal frame.
    uint64_t *ret_slot = (uint64_t *)(top - 24);
    ret_slot[0] = (uint64_t)(uintptr_t)green_start_x86_64;
    ret_slot[1] = 0;
    ret_slot[2] = 0;
    uint64_t *frame = ret_slot - 7;
    uint32_t mxcsr = 0x1F80;     // all exceptions masked, round to nearest
    uint16_t x87cw = 0x037F;     // same, extended precision
    memset(frame, 0, 8);
    memcpy((char *)frame, &mxcsr, 4);
    memcpy((char *)frame + 4, &x87cw, 2);
    frame[1] = 0;                         // r15
    frame[2] = 0;                         // r14
    frame[3] = (uint64_t)(uintptr_t)entry; // r13
    frame[4] = (uint64_t)(uintptr_t)arg;   // r12
    frame[5] = 0;                         // rbx
    frame[6] = 0;                         // rbp
    ctx->sp = frame;
    return 0;
#elif defined(__aarch64__)
    uint64_t *frame = (uint64_t *)(top - 176);
    memset(frame, 0, 176);
    frame[0] = (uint64_t)(uintptr_t)arg;    // x19
    frame[1] = (uint64_t)(uintptr_t)entry;  // x20
    frame[11] = (uint64_t)(uintptr_t)green_start_aarch64; // x30
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    frame[20] = fpcr;
    ctx->sp = frame;
    return 0;
#else
    errno = ENOTSUP;
    return -1;
#endif
}

int green_context_init(green_context *ctx, int kind, green_stack *stack,
                       green_entry_fn entry, void *arg) {
    ctx->sp = NULL;
    ctx->access_set[0] = ctx->access_set[1] = NULL;
    ctx->shared = NULL;
    ctx->stack = stack;
    ctx->entry = entry;
    ctx->entry_arg = arg;
    ctx->kind = (uint8_t)effective_kind(kind);
    ctx->check_canary = stack->guard_kind == GREEN_GUARD_CANARY;
    ctx->wait_record_busy = 0;
    uintptr_t top = ((uintptr_t)stack->base + stack->size) & ~(uintptr_t)15;

    if (ctx->kind == GREEN_CONTEXT_UCONTEXT) {
        ucontext_t *uc = ctx->ucontext;
        if (!uc) {
            uc = calloc(1, sizeof *uc);
            if (!uc) return -1;
            ctx->ucontext = uc;
        }
        if (getcontext(uc) != 0) return -1;
        uc->uc_stack.ss_sp = stack->base;
        uc->uc_stack.ss_size = top - (uintptr_t)stack->base;
        uc->uc_link = NULL;
        uintptr_t p = (uintptr_t)ctx;
        makecontext(uc, (void (*)(void))ucontext_start, 2,
                    (unsigned int)(p >> 32), (unsigned int)(p & 0xffffffffu));
        // A null frame pointer in the first frame, as the assembly entry
        // leaves: makecontext keeps the one getcontext saved (this
        // function's caller's), and a backtrace of the greenlet (frames.c,
        // gdb) would walk on into this thread's stack.
#if defined(__x86_64__)
        uc->uc_mcontext.gregs[REG_RBP] = 0;
        // The first frame's return address, at the stack pointer
        // makecontext left: the C library's start of a context.
        atomic_store_explicit(&ucontext_entry_return, *(const uintptr_t *)uc->uc_mcontext.gregs[REG_RSP],
                              memory_order_relaxed);
#elif defined(__aarch64__)
        uc->uc_mcontext.regs[29] = 0;
        atomic_store_explicit(&ucontext_entry_return, (uintptr_t)uc->uc_mcontext.regs[30], memory_order_relaxed);
#endif
#if defined(GREEN_ANNOTATE_SWITCHES)
        green_tools_init(ctx);
#endif
        return 0;
    }
#if defined(GREEN_ANNOTATE_SWITCHES)
    green_tools_init(ctx);
    return green_context_first_frame(ctx, annotated_start, ctx);
#else
    return green_context_first_frame(ctx, entry, arg);
#endif
}

void green_context_destroy(green_context *ctx) {
#if defined(GREEN_ANNOTATE_SWITCHES)
    green_tools_destroy(ctx);
#endif
    free(ctx->ucontext);
    ctx->ucontext = NULL;
}

void green_context_switch_ucontext(green_context *from, green_context *to) {
    if (swapcontext((ucontext_t *)from->ucontext, (ucontext_t *)to->ucontext) != 0) {
        static const char msg[] = "swift-green: swapcontext failed\n";
        (void)!syscall(SYS_write, 2, msg, sizeof msg - 1);
        abort();
    }
}

// ------------------------------------------------------------ baseline

#if GREEN_HAVE_ASM
static void *pingpong_main_sp;
static void *pingpong_peer_sp;
static long pingpong_count;

static void pingpong_peer(void *arg) {
    (void)arg;
    for (;;) green_switch_asm(&pingpong_peer_sp, pingpong_main_sp);
}
#endif

int green_bench_c_pingpong(long count, size_t stack_size) {
#if GREEN_HAVE_ASM
    green_stack_pool *pool = green_stack_pool_create(stack_size, -1);
    if (!pool) return -1;
    green_stack *stack = green_stack_acquire(pool);
    if (!stack) { green_stack_pool_destroy(pool); return -1; }
    green_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.stack = stack;
    ctx.kind = GREEN_CONTEXT_ASM; // whatever the build's default
    green_context_first_frame(&ctx, pingpong_peer, NULL);
    pingpong_peer_sp = ctx.sp;
    pingpong_count = count;
    for (long i = 0; i < pingpong_count; i++) {
        green_switch_asm(&pingpong_main_sp, pingpong_peer_sp);
    }
    green_stack_release(pool, stack);
    green_stack_pool_destroy(pool);
    return 0;
#else
    (void)count; (void)stack_size;
    return -1;
#endif
}
