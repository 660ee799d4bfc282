// swift-green: reporting stack overflows.
//
// A greenlet that runs off the bottom of its stack touches its guard zone
// and the kernel sends SIGSEGV. The handler runs on an alternate signal
// stack (the faulting one is exhausted), recognises a fault inside (or just
// below) the running context's guard zone, writes one line naming the
// greenlet and its stack size, and aborts. Any other fault goes to whatever
// handler was installed before ours (for example the Swift runtime's
// backtracer), or to the default action.
//
// Everything here is async-signal-safe: write(2), no malloc, no stdio.
#define _GNU_SOURCE
#include "green_switch.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { ALT_STACK_BYTES = 64 * 1024 };
// A frame larger than the guard can jump over it; faults this far below a
// stack's base still count as its overflow.
enum { OVERFLOW_REACH = 256 * 1024 };

static struct sigaction previous_segv, previous_bus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_error;
static __thread int alt_stack_ready;

static size_t cat(char *buf, size_t at, size_t cap, const char *s) {
    while (*s && at + 1 < cap) buf[at++] = *s++;
    buf[at] = 0;
    return at;
}

static size_t cat_u64(char *buf, size_t at, size_t cap, uint64_t v, int hex) {
    char tmp[24];
    int n = 0;
    unsigned base = hex ? 16 : 10;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v && n < (int)sizeof tmp);
    if (hex) at = cat(buf, at, cap, "0x");
    while (n > 0 && at + 1 < cap) buf[at++] = tmp[--n];
    buf[at] = 0;
    return at;
}

void green_context_report_overflow(const green_context *ctx, const void *fault, const char *how) {
    char buf[512];
    size_t at = 0;
    at = cat(buf, at, sizeof buf, "swift-green: stack overflow in greenlet '");
    if (ctx->name[0]) {
        at = cat(buf, at, sizeof buf, ctx->name);
    } else {
        at = cat(buf, at, sizeof buf, "Greenlet-");
        at = cat_u64(buf, at, sizeof buf, ctx->id, 0);
    }
    at = cat(buf, at, sizeof buf, ctx->shared ? "' (compact: the hub's shared run stack of " : "' (stack size ");
    at = cat_u64(buf, at, sizeof buf, ctx->stack ? ctx->stack->size : 0, 0);
    at = cat(buf, at, sizeof buf, " bytes): ");
    at = cat(buf, at, sizeof buf, how);
    if (fault) {
        at = cat(buf, at, sizeof buf, " at ");
        at = cat_u64(buf, at, sizeof buf, (uint64_t)(uintptr_t)fault, 1);
    }
    at = cat(buf, at, sizeof buf,
             ctx->shared ? ". Recurse less, or give it a dedicated stack (stackMode: .dedicated, stackSize:).\n"
                         : ". Give it a larger stack (stackSize:) or recurse less.\n");
    // The system call itself: with patch mode linked, write() is an
    // interposer that runs Swift code, not something for a signal handler.
    (void)!syscall(SYS_write, 2, buf, at);
    // Die by SIGABRT whatever handlers the program installed.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGABRT, &dfl, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGABRT);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    abort();
}

static void chain(int sig, siginfo_t *info, void *uctx) {
    const struct sigaction *prev = sig == SIGBUS ? &previous_bus : &previous_segv;
    if (prev->sa_flags & SA_SIGINFO) {
        if (prev->sa_sigaction) { prev->sa_sigaction(sig, info, uctx); return; }
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    // Default action: restore it and return; the faulting instruction runs
    // again and the kernel delivers the signal with the default action.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
}

static void on_fault(int sig, siginfo_t *info, void *uctx) {
    green_context *cur = green_current_context;
    if (cur && cur->stack) {
        uintptr_t addr = (uintptr_t)info->si_addr;
        uintptr_t base = (uintptr_t)cur->stack->base;
        if (addr < base && base - addr <= OVERFLOW_REACH) {
            green_context_report_overflow(cur, info->si_addr,
                addr + cur->stack->guard_size >= base ? "it hit the guard page"
                                                      : "it faulted below its stack");
        }
    }
    chain(sig, info, uctx);
}

static pthread_key_t alt_stack_key;

// Thread exit: stop using the alternate stack, then give it back.
static void free_alt_stack(void *mem) {
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_flags = SS_DISABLE;
    if (sigaltstack(&ss, NULL) == 0) munmap(mem, ALT_STACK_BYTES);
}

static void install_process_handler(void) {
    if (pthread_key_create(&alt_stack_key, free_alt_stack) != 0) install_error = -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &previous_segv) != 0) install_error = -1;
    if (sigaction(SIGBUS, &sa, &previous_bus) != 0) install_error = -1;
}

int green_overflow_handler_install_for_thread(void) {
    pthread_once(&install_once, install_process_handler);
    if (install_error) return -1;
    if (alt_stack_ready) return 0;
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE) &&
        current.ss_size >= ALT_STACK_BYTES / 2) {
        alt_stack_ready = 1; // the thread already has one big enough (the Swift runtime may set one)
        return 0;
    }
    void *mem = mmap(NULL, ALT_STACK_BYTES, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return -1;
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = mem;
    ss.ss_size = ALT_STACK_BYTES;
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ALT_STACK_BYTES);
        return -1;
    }
    pthread_setspecific(alt_stack_key, mem);
    alt_stack_ready = 1;
    return 0;
}
