#define _GNU_SOURCE
#include "green_patch.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static _Atomic(const green_patch_hooks *) active_hooks = NULL;
static _Atomic unsigned long cooperative_calls = 0;

void green_patch_set_hooks(const green_patch_hooks *hooks) { atomic_store(&active_hooks, hooks); }
unsigned long green_patch_cooperative_calls(void) { return atomic_load(&cooperative_calls); }

// The hooks when the call should cooperate, else NULL.
static const green_patch_hooks *cooperating(void) {
    const green_patch_hooks *h = atomic_load_explicit(&active_hooks, memory_order_acquire);
    if (h && h->in_greenlet()) {
        atomic_fetch_add_explicit(&cooperative_calls, 1, memory_order_relaxed);
        return h;
    }
    return NULL;
}

typedef unsigned int (*sleep_fn)(unsigned int);
typedef int (*usleep_fn)(useconds_t);
typedef int (*nanosleep_fn)(const struct timespec *, struct timespec *);

// libc's own function, found once (a racing first call finds the same).
#define REAL(name) \
    static _Atomic(name##_fn) real_##name = NULL; \
    name##_fn name##_real = atomic_load_explicit(&real_##name, memory_order_relaxed); \
    if (!name##_real) { \
        name##_real = (name##_fn)dlsym(RTLD_NEXT, #name); \
        atomic_store_explicit(&real_##name, name##_real, memory_order_relaxed); \
    }

unsigned int sleep(unsigned int seconds) {
    const green_patch_hooks *h = cooperating();
    if (h) {
        if (h->sleep_for((double)seconds) == 0) return 0;
        return seconds;   // interrupted: as a signal would, "seconds left" (not measured)
    }
    REAL(sleep);
    return sleep_real(seconds);
}

int usleep(useconds_t microseconds) {
    const green_patch_hooks *h = cooperating();
    if (h) {
        if (h->sleep_for((double)microseconds / 1e6) == 0) return 0;
        errno = EINTR;
        return -1;
    }
    REAL(usleep);
    return usleep_real(microseconds);
}

int nanosleep(const struct timespec *request, struct timespec *remaining) {
    const green_patch_hooks *h = cooperating();
    if (h) {
        if (!request || request->tv_nsec < 0 || request->tv_nsec >= 1000000000 || request->tv_sec < 0) {
            errno = EINVAL;
            return -1;
        }
        if (h->sleep_for((double)request->tv_sec + (double)request->tv_nsec / 1e9) == 0) return 0;
        if (remaining) *remaining = *request;
        errno = EINTR;
        return -1;
    }
    REAL(nanosleep);
    return nanosleep_real(request, remaining);
}
