// What the files of patch mode share: the includes (with _FORTIFY_SOURCE
// off, so that libc's names can be defined here), libc's function types,
// REAL (libc's own function, found with dlsym), the clock helpers, and the
// hooks test. Each file of the target includes this first.
#ifndef GREEN_PATCH_INTERNAL_H
#define GREEN_PATCH_INTERNAL_H

// Fortified builds turn some of libc's names into inline wrappers, which
// cannot be defined again; fortified.c defines the fortified entry points
// (__read_chk, ...) itself instead.
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "green_patch.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

// The hooks when the call should cooperate (patch mode on, in a spawned
// greenlet), else NULL; counts the calls that do. hooks.c.
__attribute__((visibility("hidden"))) const green_patch_hooks *gp_cooperating(void);

typedef unsigned int (*sleep_fn)(unsigned int);
typedef int (*usleep_fn)(useconds_t);
typedef int (*nanosleep_fn)(const struct timespec *, struct timespec *);
typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*readv_fn)(int, const struct iovec *, int);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*recvfrom_fn)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*ppoll_fn)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
typedef int (*pselect_fn)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
typedef int (*epoll_pwait_fn)(int, struct epoll_event *, int, int, const sigset_t *);
typedef int (*epoll_pwait2_fn)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

// libc's own function, found once (a racing first call finds the same).
#define REAL(name) \
    static _Atomic(name##_fn) real_##name = NULL; \
    name##_fn name##_real = atomic_load_explicit(&real_##name, memory_order_relaxed); \
    if (!name##_real) { \
        name##_real = (name##_fn)dlsym(RTLD_NEXT, #name); \
        atomic_store_explicit(&real_##name, name##_real, memory_order_relaxed); \
    }

// ------------------------------------------------------------------ time
//
// Deadlines are CLOCK_MONOTONIC seconds; -1 is none (wait for ever).

static inline double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// `seconds` from now. A wait longer than 30 years is taken as for ever,
// which keeps the arithmetic finite (LONG_MAX seconds is a common "never").
static inline double deadline_in(double seconds) { return seconds > 1e9 ? -1.0 : now_s() + seconds; }

static inline int passed(double deadline) { return deadline >= 0 && now_s() >= deadline; }

// Seconds left until `deadline` (0 once passed), -1 for none.
static inline double left_until(double deadline) {
    if (deadline < 0) return -1.0;
    double left = deadline - now_s();
    return left > 0 ? left : 0;
}

static inline double timespec_s(const struct timespec *t) { return (double)t->tv_sec + (double)t->tv_nsec / 1e9; }

// As the kernel checks a timeout: seconds >= 0, nanoseconds in [0, 1e9).
static inline int timespec_valid(const struct timespec *t) {
    return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1000000000L;
}

static inline int timespec_zero(const struct timespec *t) { return t->tv_sec == 0 && t->tv_nsec == 0; }

// `request` minus the `elapsed` seconds, not below zero: what an
// interrupted sleep reports as left.
static inline struct timespec timespec_left(const struct timespec *request, double elapsed) {
    double left = timespec_s(request) - elapsed;
    struct timespec t = { 0, 0 };
    if (left > 0) {
        t.tv_sec = (time_t)left;
        t.tv_nsec = (long)((left - (double)t.tv_sec) * 1e9);
        if (t.tv_nsec >= 1000000000L) t.tv_nsec = 999999999L;
    }
    return t;
}


// The fortified entry points fortified.c defines (no header declares
// them with _FORTIFY_SOURCE off); hooks.c lists them.
ssize_t __read_chk(int fd, void *buffer, size_t length, size_t buffer_size);
ssize_t __recv_chk(int fd, void *buffer, size_t length, size_t buffer_size, int flags);
ssize_t __recvfrom_chk(int fd, void *buffer, size_t length, size_t buffer_size, int flags, struct sockaddr *from,
                       socklen_t *from_size);
int __poll_chk(struct pollfd *fds, nfds_t count, int timeout_ms, size_t fds_size);
int __ppoll_chk(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask,
                size_t fds_size);

#endif
