// Patch mode's switch (the hooks Swift installs), the count of calls
// that cooperated, and the list of the functions it defines.
#include "patch_internal.h"

static _Atomic(const green_patch_hooks *) active_hooks = NULL;
static _Atomic unsigned long cooperative_calls = 0;

void green_patch_set_hooks(const green_patch_hooks *hooks) { atomic_store(&active_hooks, hooks); }
unsigned long green_patch_cooperative_calls(void) { return atomic_load(&cooperative_calls); }

// The hooks when the call should cooperate, else NULL.
const green_patch_hooks *gp_cooperating(void) {
    const green_patch_hooks *h = atomic_load_explicit(&active_hooks, memory_order_acquire);
    if (h && h->in_greenlet()) {
        atomic_fetch_add_explicit(&cooperative_calls, 1, memory_order_relaxed);
        return h;
    }
    return NULL;
}

// ------------------------------------------------------------ the list

#define INTERPOSER(name) { #name, (void *)name }

static const struct {
    const char *name;
    void *address;
} interposers[] = {
    INTERPOSER(sleep), INTERPOSER(usleep), INTERPOSER(nanosleep), INTERPOSER(clock_nanosleep),
    INTERPOSER(poll), INTERPOSER(ppoll), INTERPOSER(select), INTERPOSER(pselect),
    INTERPOSER(epoll_wait), INTERPOSER(epoll_pwait), INTERPOSER(epoll_pwait2),
    INTERPOSER(read), INTERPOSER(write), INTERPOSER(readv), INTERPOSER(writev),
    INTERPOSER(recv), INTERPOSER(send), INTERPOSER(recvfrom), INTERPOSER(sendto),
    INTERPOSER(recvmsg), INTERPOSER(sendmsg), INTERPOSER(connect), INTERPOSER(accept), INTERPOSER(accept4),
    INTERPOSER(__read_chk), INTERPOSER(__recv_chk), INTERPOSER(__recvfrom_chk), INTERPOSER(__poll_chk),
    INTERPOSER(__ppoll_chk), INTERPOSER(getaddrinfo),
};

const char *green_patch_interposer(unsigned index, void **address) {
    if (index >= sizeof interposers / sizeof interposers[0]) return NULL;
    if (address) *address = interposers[index].address;
    return interposers[index].name;
}
