// Linux calls the Glibc module does not import (they need _GNU_SOURCE),
// wrapped for Swift. Nothing else lives here.
#ifndef SWIFT_GREEN_LINUX_H
#define SWIFT_GREEN_LINUX_H

#include <sys/socket.h>

/// accept4(2): accept a connection with SOCK_NONBLOCK / SOCK_CLOEXEC set
/// atomically.
int green_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/// pipe2(2).
int green_pipe2(int fds[2], int flags);

/// pidfd_open(2): an fd that becomes readable when process `pid` exits;
/// -1 with errno ENOSYS on kernels before 5.3.
int green_pidfd_open(int pid);

/// prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to the
/// calling process when its parent thread exits (prctl is variadic, so
/// Swift cannot call it).
int green_set_parent_death_signal(int signal);

/// 1 on the process's main thread (its thread id is the process id),
/// else 0.
int green_is_main_thread(void);

/// Relaxed atomic operations on a 64-bit integer anywhere (shared memory
/// included), for counters that may lose updates without a data race.
#include <stdint.h>
static inline int64_t green_atomic_load_relaxed(const int64_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void green_atomic_store_relaxed(int64_t *p, int64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline int64_t green_atomic_add_relaxed(int64_t *p, int64_t v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

#endif
