// swift-green: locating the Swift runtime's per-thread access list.
//
// Swift's dynamic exclusivity checking keeps, per thread, a linked list of
// open accesses whose head is the first word of the runtime's thread-local
// context. Greenlets give each context its own list, as Swift Concurrency
// does for tasks (see green_context.h). The runtime's exported
// swift_task_{exit,enter}ThreadLocalContext do the job but each looks up
// the thread-local through __tls_get_addr, and two of them cost more than
// the whole register switch. So on x86_64 the address of that head is
// located once per thread and the switch moves lists with two loads and
// two stores.
//
// Locating it reads the machine code of the runtime's own accessor (the
// exported enter function calls SwiftTLSContext::get, which is
// `lea tls_index(%rip),%rdi; call __tls_get_addr; lea off(%rax),%rax`).
// Every step is checked: the byte patterns must match exactly, and the
// found address is then verified against the runtime's exported functions
// by moving a marker list in and out through them. Anything unexpected (a
// different toolchain, a static standard library, another CPU) leaves the
// slot NULL and the switch calls the runtime functions: slower, equally
// correct.
#define _GNU_SOURCE
#include "green_switch.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

__thread void **green_access_head_slot;
static __thread int resolved_for_thread;

#if defined(__x86_64__)
typedef struct { unsigned long module, offset; } tls_index_t;
extern void *__tls_get_addr(tls_index_t *ti);

static tls_index_t *runtime_tls_index;
static int32_t runtime_tls_offset;
static pthread_once_t find_once = PTHREAD_ONCE_INIT;

static int32_t read_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void find_runtime_tls_index(void) {
    const unsigned char *enter = dlsym(RTLD_DEFAULT, "swift_task_enterThreadLocalContext");
    if (!enter) return;
    // push %rbp; mov %rsp,%rbp; push %rbx; push %rax; mov %rdi,%rbx; call get
    static const unsigned char enter_prefix[] = {0x55, 0x48, 0x89, 0xe5, 0x53, 0x50, 0x48, 0x89, 0xfb, 0xe8};
    if (memcmp(enter, enter_prefix, sizeof enter_prefix) != 0) return;
    const unsigned char *get = enter + sizeof enter_prefix + 4 + read_i32(enter + sizeof enter_prefix);
    // push %rbp; mov %rsp,%rbp; lea idx(%rip),%rdi; call __tls_get_addr;
    // lea off(%rax),%rax; pop %rbp; ret
    static const unsigned char get_prefix[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0x8d, 0x3d};
    if (memcmp(get, get_prefix, sizeof get_prefix) != 0) return;
    const unsigned char *after_lea = get + sizeof get_prefix + 4;
    if (after_lea[0] != 0xe8) return;
    const unsigned char *after_call = after_lea + 5;
    static const unsigned char lea_rax[] = {0x48, 0x8d, 0x80};
    if (memcmp(after_call, lea_rax, sizeof lea_rax) != 0) return;
    if (after_call[7] != 0x5d || after_call[8] != 0xc3) return;
    runtime_tls_index = (tls_index_t *)(after_lea + read_i32(get + sizeof get_prefix));
    runtime_tls_offset = read_i32(after_call + 3);
}

/// Checks `slot` against the runtime's own functions: with the thread's
/// accesses moved out, entering a one-element marker list must make it
/// the head at `slot`, and exiting must empty it again.
static int verify_slot(void **slot) {
    char saved[2 * sizeof(void *)] = {0};
    swift_task_exitThreadLocalContext(saved);
    int ok = *slot == NULL;
    // An access record: pointer, pc, next-and-action (next = NULL).
    void *marker[3] = {NULL, NULL, NULL};
    void *state[2] = {marker, marker};
    if (ok) {
        swift_task_enterThreadLocalContext((char *)state);
        ok = *slot == (void *)marker;
        swift_task_exitThreadLocalContext((char *)state);
        ok = ok && *slot == NULL && state[0] == (void *)marker;
    }
    swift_task_enterThreadLocalContext(saved);
    return ok;
}
#endif

void green_access_resolve_for_thread(void) {
    if (resolved_for_thread) return;
    resolved_for_thread = 1;
#if defined(__x86_64__)
    if (getenv("GREEN_ACCESS_SWAP_RUNTIME")) return; // force the portable path
    pthread_once(&find_once, find_runtime_tls_index);
    if (!runtime_tls_index) return;
    void **slot = (void **)((char *)__tls_get_addr(runtime_tls_index) + runtime_tls_offset);
    if (verify_slot(slot)) green_access_head_slot = slot;
#endif
}

int green_access_fast_path(void) { return green_access_head_slot != NULL; }
