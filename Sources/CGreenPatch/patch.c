#define _GNU_SOURCE
#include "green_patch.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
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

// ---------------------------------------------------------------- sockets
//
// On a socket in blocking mode, inside a greenlet: the call is made
// without blocking (MSG_DONTWAIT, or O_NONBLOCK for the call's duration),
// and when it would block the greenlet parks until the socket is ready,
// then tries again. A socket the program made non-blocking itself, and
// every other kind of fd (files, pipes, terminals), get libc's call.

// Whether `fd` is a socket in blocking mode (two cheap system calls,
// only in a greenlet with patch mode on).
static int blocking_socket(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && !(flags & O_NONBLOCK);
}

static int would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK; }

ssize_t recv(int fd, void *buffer, size_t length, int flags) {
    const green_patch_hooks *h = cooperating();
    REAL(recv);
    if (!h || (flags & MSG_DONTWAIT) || !blocking_socket(fd)) return recv_real(fd, buffer, length, flags);
    for (;;) {
        ssize_t n = recv_real(fd, buffer, length, flags | MSG_DONTWAIT);
        if (n >= 0 || !would_block()) return n;
        if (h->wait_fd(fd, 0) != 0) { errno = EINTR; return -1; }
    }
}

ssize_t send(int fd, const void *buffer, size_t length, int flags) {
    const green_patch_hooks *h = cooperating();
    REAL(send);
    if (!h || (flags & MSG_DONTWAIT) || !blocking_socket(fd)) return send_real(fd, buffer, length, flags);
    for (;;) {
        ssize_t n = send_real(fd, buffer, length, flags | MSG_DONTWAIT);
        if (n >= 0 || !would_block()) return n;
        if (h->wait_fd(fd, 1) != 0) { errno = EINTR; return -1; }
    }
}

ssize_t read(int fd, void *buffer, size_t length) {
    const green_patch_hooks *h = cooperating();
    REAL(read);
    if (!h || !blocking_socket(fd)) return read_real(fd, buffer, length);
    REAL(recv);
    for (;;) {
        // recv with no flags is read on a socket.
        ssize_t n = recv_real(fd, buffer, length, MSG_DONTWAIT);
        if (n >= 0) return n;
        if (errno == ENOTSOCK) return read_real(fd, buffer, length);
        if (!would_block()) return n;
        if (h->wait_fd(fd, 0) != 0) { errno = EINTR; return -1; }
    }
}

ssize_t write(int fd, const void *buffer, size_t length) {
    const green_patch_hooks *h = cooperating();
    REAL(write);
    if (!h || !blocking_socket(fd)) return write_real(fd, buffer, length);
    REAL(send);
    for (;;) {
        // send with no flags is write on a socket (SIGPIPE included).
        ssize_t n = send_real(fd, buffer, length, MSG_DONTWAIT);
        if (n >= 0) return n;
        if (errno == ENOTSOCK) return write_real(fd, buffer, length);
        if (!would_block()) return n;
        if (h->wait_fd(fd, 1) != 0) { errno = EINTR; return -1; }
    }
}

int connect(int fd, const struct sockaddr *address, socklen_t length) {
    const green_patch_hooks *h = cooperating();
    REAL(connect);
    if (!h || !blocking_socket(fd)) return connect_real(fd, address, length);
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int rc = connect_real(fd, address, length);
    int saved = errno;
    if (rc != 0 && saved == EINPROGRESS) {
        if (h->wait_fd(fd, 1) != 0) {
            fcntl(fd, F_SETFL, flags);
            errno = EINTR;
            return -1;
        }
        int error = 0;
        socklen_t size = sizeof error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
        rc = error == 0 ? 0 : -1;
        saved = error;
    }
    fcntl(fd, F_SETFL, flags);
    errno = saved;
    return rc;
}

static int accept_common(int fd, struct sockaddr *address, socklen_t *length, int flags, int with_flags) {
    const green_patch_hooks *h = cooperating();
    REAL(accept4);
    REAL(accept);
    if (!h || !blocking_socket(fd)) {
        return with_flags ? accept4_real(fd, address, length, flags) : accept_real(fd, address, length);
    }
    int listener = fcntl(fd, F_GETFL);
    for (;;) {
        fcntl(fd, F_SETFL, listener | O_NONBLOCK);
        int c = accept4_real(fd, address, length, flags);
        int saved = errno;
        fcntl(fd, F_SETFL, listener);
        if (c >= 0 || !(saved == EAGAIN || saved == EWOULDBLOCK)) {
            errno = saved;
            return c;
        }
        if (h->wait_fd(fd, 0) != 0) { errno = EINTR; return -1; }
    }
}

int accept(int fd, struct sockaddr *address, socklen_t *length) { return accept_common(fd, address, length, 0, 0); }
int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept_common(fd, address, length, flags, 1);
}

// ------------------------------------------------------------------ poll

int poll(struct pollfd *fds, nfds_t count, int timeout_ms) {
    const green_patch_hooks *h = cooperating();
    REAL(poll);
    if (!h || timeout_ms == 0 || count > 1024) return poll_real(fds, count, timeout_ms);
    // Ready now? Then as libc would answer.
    int n = poll_real(fds, count, 0);
    if (n != 0) return n;
    int want_fd[1024], want_events[1024], k = 0;
    for (nfds_t i = 0; i < count; i++) {
        if (fds[i].fd < 0) continue;
        int e = ((fds[i].events & (POLLIN | POLLPRI)) ? 1 : 0) | ((fds[i].events & POLLOUT) ? 2 : 0);
        want_fd[k] = fds[i].fd;
        want_events[k] = e ? e : 1;   // errors and hang-ups show as readable
        k++;
    }
    if (h->wait_any(want_fd, want_events, k, timeout_ms < 0 ? -1.0 : timeout_ms / 1000.0) != 0) {
        errno = EINTR;
        return -1;
    }
    return poll_real(fds, count, 0);
}

// ---------------------------------------------------------- getaddrinfo

struct resolve_job {
    const char *node, *service;
    const struct addrinfo *hints;
    struct addrinfo **result;
    int rc;
};

static void resolve_work(void *arg) {
    struct resolve_job *j = arg;
    REAL(getaddrinfo);
    j->rc = getaddrinfo_real(j->node, j->service, j->hints, j->result);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **result) {
    const green_patch_hooks *h = cooperating();
    if (h) {
        // The lookup blocks its thread: a pool thread, not the hub's.
        struct resolve_job j = { node, service, hints, result, EAI_SYSTEM };
        h->run_elsewhere(resolve_work, &j);
        return j.rc;
    }
    REAL(getaddrinfo);
    return getaddrinfo_real(node, service, hints, result);
}
