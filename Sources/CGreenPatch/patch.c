// Fortified builds turn some of libc's names below into inline wrappers,
// which cannot be defined again; this file defines the fortified entry
// points (__read_chk, ...) itself instead.
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

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// `seconds` from now. A wait longer than 30 years is taken as for ever,
// which keeps the arithmetic finite (LONG_MAX seconds is a common "never").
static double deadline_in(double seconds) { return seconds > 1e9 ? -1.0 : now_s() + seconds; }

static int passed(double deadline) { return deadline >= 0 && now_s() >= deadline; }

// Seconds left until `deadline` (0 once passed), -1 for none.
static double left_until(double deadline) {
    if (deadline < 0) return -1.0;
    double left = deadline - now_s();
    return left > 0 ? left : 0;
}

static double timespec_s(const struct timespec *t) { return (double)t->tv_sec + (double)t->tv_nsec / 1e9; }

// As the kernel checks a timeout: seconds >= 0, nanoseconds in [0, 1e9).
static int timespec_valid(const struct timespec *t) {
    return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1000000000L;
}

static int timespec_zero(const struct timespec *t) { return t->tv_sec == 0 && t->tv_nsec == 0; }

// `request` minus the `elapsed` seconds, not below zero: what an
// interrupted sleep reports as left.
static struct timespec timespec_left(const struct timespec *request, double elapsed) {
    double left = timespec_s(request) - elapsed;
    struct timespec t = { 0, 0 };
    if (left > 0) {
        t.tv_sec = (time_t)left;
        t.tv_nsec = (long)((left - (double)t.tv_sec) * 1e9);
        if (t.tv_nsec >= 1000000000L) t.tv_nsec = 999999999L;
    }
    return t;
}

// ----------------------------------------------------------------- sleeps

unsigned int sleep(unsigned int seconds) {
    const green_patch_hooks *h = cooperating();
    if (h) {
        double start = now_s();
        if (h->sleep_for((double)seconds) == 0) return 0;
        // Interrupted (killed, or a timeout expired), as a signal would:
        // the seconds left, rounded as glibc rounds them.
        struct timespec request = { (time_t)seconds, 0 };
        struct timespec left = timespec_left(&request, now_s() - start);
        return (unsigned int)left.tv_sec + (left.tv_nsec >= 500000000L);
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
    REAL(nanosleep);
    // Invalid requests get libc's answer (EINVAL, EFAULT) at once.
    if (!request || !timespec_valid(request)) return nanosleep_real(request, remaining);
    const green_patch_hooks *h = cooperating();
    if (!h) return nanosleep_real(request, remaining);
    double start = now_s();
    if (h->sleep_for(timespec_s(request)) == 0) return 0;
    if (remaining) *remaining = timespec_left(request, now_s() - start);
    errno = EINTR;
    return -1;
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request, struct timespec *remaining) {
    REAL(clock_nanosleep);
    // Other clocks (CPU-time clocks, clocks of other processes), and
    // invalid requests, get libc's answer.
    int known = clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME || clock == CLOCK_TAI;
    if (!known || !request || !timespec_valid(request)) return clock_nanosleep_real(clock, flags, request, remaining);
    const green_patch_hooks *h = cooperating();
    if (!h) return clock_nanosleep_real(clock, flags, request, remaining);
    double seconds = timespec_s(request);
    if (flags & TIMER_ABSTIME) {
        struct timespec now;
        clock_gettime(clock, &now);
        seconds -= timespec_s(&now);
        if (seconds <= 0) return 0;
    }
    double start = now_s();
    if (h->sleep_for(seconds) == 0) return 0;
    if (!(flags & TIMER_ABSTIME) && remaining) *remaining = timespec_left(request, now_s() - start);
    return EINTR;   // clock_nanosleep returns the error, errno stays
}

// -------------------------------------------------------- waiting on fds
//
// poll, ppoll, select and pselect first ask libc with a zero timeout
// (which also gives libc's answer to invalid arguments), and if nothing
// is ready park the greenlet until something may have changed, ask again,
// and so on until an answer or the deadline. To park, the fds go into a
// private epoll instance with exactly the events asked for (so exceptional
// conditions, POLLPRI and POLLRDHUP, are waited for too), edge-triggered
// so that it wakes on changes only (a condition that select does not
// report, such as a hang-up on an fd asked only for exceptions, does not
// wake it again and again); the hub parks the greenlet until that
// instance is readable. Without one (no fd left for it, or an fd epoll
// refuses for want of memory or because of nesting), the wait checks
// every 10 ms.

struct watch { int epfd; };

static void watch_open(struct watch *w) { w->epfd = epoll_create1(EPOLL_CLOEXEC); }

static void watch_close(struct watch *w) {
    if (w->epfd >= 0) close(w->epfd);
}

static void watch_add(struct watch *w, int fd, uint32_t events) {
    if (w->epfd < 0) return;
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = events | EPOLLET;
    e.data.fd = fd;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e) == 0) return;
    if (errno == EEXIST) {
        // Listed twice (poll allows it): wake on anything.
        e.events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND |
                   EPOLLRDHUP | EPOLLET;
        if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &e) == 0) return;
    }
    // A regular file or directory (EPERM) is always readable and writable,
    // which the check before the wait reported, and never has exceptional
    // conditions; an fd closed meanwhile (EBADF) can no longer change.
    if (errno == EPERM || errno == EBADF) return;
    close(w->epfd);
    w->epfd = -1;
}

// Parks until the watched fds may have changed or `deadline` passed:
// 0, or -1 when interrupted (killed, or a timeout expired).
static int watch_wait(const green_patch_hooks *h, struct watch *w, double deadline) {
    double left = left_until(deadline);
    if (w->epfd < 0) return h->sleep_for(left < 0 || left > 0.01 ? 0.01 : left);
    int fd = w->epfd, events = 1;
    if (h->wait_any(&fd, &events, 1, left) != 0) return -1;
    // Take the edges reported, so that the instance is quiet until the next.
    REAL(epoll_wait);
    struct epoll_event taken[32];
    while (epoll_wait_real(w->epfd, taken, 32, 0) == 32) {}
    return 0;
}

// The events of a pollfd, as epoll spells them (the same bits).
#define POLL_EVENTS \
    (POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND | POLLWRNORM | POLLWRBAND | POLLMSG | POLLRDHUP)

// poll(fds, count, 0) until it reports something or `deadline` passes.
static int poll_until(const green_patch_hooks *h, struct pollfd *fds, nfds_t count, double deadline) {
    REAL(poll);
    int caller_errno = errno;
    int n = poll_real(fds, count, 0);
    if (n != 0 || passed(deadline)) return n;
    struct watch w;
    watch_open(&w);
    for (nfds_t i = 0; i < count; i++) {
        if (fds[i].fd >= 0) watch_add(&w, fds[i].fd, (uint32_t)(unsigned short)fds[i].events & POLL_EVENTS);
    }
    int error = 0;
    for (;;) {
        if (watch_wait(h, &w, deadline) != 0) {
            // As when a signal cuts poll short: -1, EINTR, revents as the
            // last check left them (all 0).
            n = -1;
            error = EINTR;
            break;
        }
        n = poll_real(fds, count, 0);
        if (n < 0) error = errno;
        if (n != 0 || passed(deadline)) break;
    }
    watch_close(&w);
    errno = n < 0 ? error : caller_errno;
    return n;
}

int poll(struct pollfd *fds, nfds_t count, int timeout_ms) {
    REAL(poll);
    if (timeout_ms == 0) return poll_real(fds, count, 0);
    const green_patch_hooks *h = cooperating();
    if (!h) return poll_real(fds, count, timeout_ms);
    return poll_until(h, fds, count, timeout_ms < 0 ? -1.0 : deadline_in(timeout_ms / 1000.0));
}

// With a signal mask, ppoll (like pselect and epoll_pwait) is libc's call:
// the mask must be in force exactly while the call waits, which a
// cooperative wait cannot do (other greenlets of the thread would run
// under it), so the greenlet blocks its thread.
int ppoll(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask) {
    REAL(ppoll);
    if (mask || (timeout && (!timespec_valid(timeout) || timespec_zero(timeout)))) {
        return ppoll_real(fds, count, timeout, mask);
    }
    const green_patch_hooks *h = cooperating();
    if (!h) return ppoll_real(fds, count, timeout, mask);
    return poll_until(h, fds, count, timeout ? deadline_in(timespec_s(timeout)) : -1.0);
}

// What select asks of an fd in each set, as epoll events (the kernel's
// POLLIN_SET, POLLOUT_SET and POLLEX_SET).
#define SELECT_READ (EPOLLIN | EPOLLRDNORM | EPOLLRDBAND | EPOLLHUP | EPOLLERR)
#define SELECT_WRITE (EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND | EPOLLERR)
#define SELECT_EXCEPT EPOLLPRI

static int fd_bit(const fd_mask *set, int fd) {
    return (int)(((unsigned long)set[fd / NFDBITS] >> (fd % NFDBITS)) & 1ul);
}

// select(nfds, sets, 0) until it reports something or `deadline` passes.
// The sets hold `nfds` bits, as the kernel reads them (a caller may pass
// more than FD_SETSIZE with larger sets).
static int select_until(const green_patch_hooks *h, int nfds, fd_set *r, fd_set *w, fd_set *e, double deadline) {
    REAL(select);
    int caller_errno = errno;
    size_t words = ((size_t)nfds + NFDBITS - 1) / NFDBITS, bytes = words * sizeof(fd_mask);
    fd_mask small[3 * (FD_SETSIZE / NFDBITS)];
    fd_mask *saved = nfds <= FD_SETSIZE ? small : malloc(3 * bytes);
    if (!saved) {
        errno = ENOMEM;
        return -1;
    }
    fd_set *sets[3] = { r, w, e };
    for (int k = 0; k < 3; k++) {
        if (sets[k]) memcpy(saved + (size_t)k * words, sets[k], bytes);
    }
    struct timeval zero = { 0, 0 };
    int n = select_real(nfds, r, w, e, &zero), error = n < 0 ? errno : 0;
    if (n == 0 && !passed(deadline)) {
        struct watch watch;
        watch_open(&watch);
        for (int fd = 0; fd < nfds; fd++) {
            uint32_t events = (r && fd_bit(saved, fd) ? SELECT_READ : 0) |
                              (w && fd_bit(saved + words, fd) ? SELECT_WRITE : 0) |
                              (e && fd_bit(saved + 2 * words, fd) ? SELECT_EXCEPT : 0);
            if (events) watch_add(&watch, fd, events);
        }
        for (;;) {
            int interrupted = watch_wait(h, &watch, deadline) != 0;
            // The last check cleared the sets; they hold the question again
            // for the next, and stay so if interrupted (as the kernel
            // leaves them when a signal cuts select short).
            for (int k = 0; k < 3; k++) {
                if (sets[k]) memcpy(sets[k], saved + (size_t)k * words, bytes);
            }
            if (interrupted) {
                n = -1;
                error = EINTR;
                break;
            }
            n = select_real(nfds, r, w, e, &zero);
            if (n < 0) error = errno;
            if (n != 0 || passed(deadline)) break;
        }
        watch_close(&watch);
    }
    if (saved != small) free(saved);
    errno = n < 0 ? error : caller_errno;
    return n;
}

int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *timeout) {
    REAL(select);
    // Invalid arguments (glibc refuses negative times), and a zero timeout,
    // get libc's call.
    if (nfds < 0 || (timeout && (timeout->tv_sec < 0 || timeout->tv_usec < 0 ||
                                 (timeout->tv_sec == 0 && timeout->tv_usec == 0)))) {
        return select_real(nfds, r, w, e, timeout);
    }
    const green_patch_hooks *h = cooperating();
    if (!h) return select_real(nfds, r, w, e, timeout);
    // Linux writes the time left back into the timeval (microseconds
    // normalized, as glibc does).
    long long seconds = 0, micros = 0;
    if (timeout) {
        seconds = timeout->tv_sec;
        micros = timeout->tv_usec;
        if (micros / 1000000 > INT64_MAX - seconds) {
            seconds = INT64_MAX;
            micros = 999999;
        } else {
            seconds += micros / 1000000;
            micros %= 1000000;
        }
    }
    double start = now_s();
    int n = select_until(h, nfds, r, w, e, timeout ? deadline_in((double)seconds + (double)micros / 1e6) : -1.0);
    if (timeout) {
        long long elapsed = (long long)((now_s() - start) * 1e6);
        seconds -= elapsed / 1000000;
        micros -= elapsed % 1000000;
        if (micros < 0) {
            micros += 1000000;
            seconds -= 1;
        }
        if (seconds < 0) seconds = micros = 0;
        timeout->tv_sec = (time_t)seconds;
        timeout->tv_usec = (suseconds_t)micros;
    }
    return n;
}

int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout, const sigset_t *mask) {
    REAL(pselect);
    if (mask || nfds < 0 || (timeout && (!timespec_valid(timeout) || timespec_zero(timeout)))) {
        return pselect_real(nfds, r, w, e, timeout, mask);
    }
    const green_patch_hooks *h = cooperating();
    if (!h) return pselect_real(nfds, r, w, e, timeout, mask);
    return select_until(h, nfds, r, w, e, timeout ? deadline_in(timespec_s(timeout)) : -1.0);
}

// epoll_wait(epfd, ..., 0) until it returns events or `deadline` passes;
// in between the greenlet parks until the epoll instance itself is
// readable (which it is while it has events to report).
static int epoll_until(const green_patch_hooks *h, int epfd, struct epoll_event *events, int max, double deadline) {
    REAL(epoll_wait);
    int caller_errno = errno;
    int n = epoll_wait_real(epfd, events, max, 0);
    while (n == 0 && !passed(deadline)) {
        int fd = epfd, readable = 1;
        if (h->wait_any(&fd, &readable, 1, left_until(deadline)) != 0) {
            errno = EINTR;
            return -1;
        }
        n = epoll_wait_real(epfd, events, max, 0);
    }
    if (n >= 0) errno = caller_errno;
    return n;
}

int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout_ms) {
    REAL(epoll_wait);
    if (timeout_ms == 0) return epoll_wait_real(epfd, events, max, 0);
    const green_patch_hooks *h = cooperating();
    if (!h) return epoll_wait_real(epfd, events, max, timeout_ms);
    return epoll_until(h, epfd, events, max, timeout_ms < 0 ? -1.0 : deadline_in(timeout_ms / 1000.0));
}

int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout_ms, const sigset_t *mask) {
    REAL(epoll_pwait);
    if (mask || timeout_ms == 0) return epoll_pwait_real(epfd, events, max, timeout_ms, mask);
    const green_patch_hooks *h = cooperating();
    if (!h) return epoll_pwait_real(epfd, events, max, timeout_ms, mask);
    return epoll_until(h, epfd, events, max, timeout_ms < 0 ? -1.0 : deadline_in(timeout_ms / 1000.0));
}

int epoll_pwait2(int epfd, struct epoll_event *events, int max, const struct timespec *timeout, const sigset_t *mask) {
    REAL(epoll_pwait2);
    if (!epoll_pwait2_real) {   // a libc older than 2.35
        errno = ENOSYS;
        return -1;
    }
    if (mask || (timeout && (!timespec_valid(timeout) || timespec_zero(timeout)))) {
        return epoll_pwait2_real(epfd, events, max, timeout, mask);
    }
    const green_patch_hooks *h = cooperating();
    if (!h) return epoll_pwait2_real(epfd, events, max, timeout, mask);
    return epoll_until(h, epfd, events, max, timeout ? deadline_in(timespec_s(timeout)) : -1.0);
}

// ---------------------------------------------------------------- sockets
//
// On a socket in blocking mode, inside a greenlet: the call is made
// without blocking (MSG_DONTWAIT, or O_NONBLOCK for the call's duration),
// and when it would block the greenlet parks until the socket is ready,
// then tries again. What a blocking call does beyond waiting is kept: a
// send on a stream socket goes on until everything is sent, a receive
// with MSG_WAITALL until everything asked for came (each cut short, as by
// a signal, by a kill or a timeout: the bytes so far, or EINTR), and the
// socket's SO_RCVTIMEO / SO_SNDTIMEO end the wait as they would (EAGAIN).
// A socket the program made non-blocking itself, and every other kind of
// fd (files, pipes, terminals), get libc's call.

// Whether `fd` is a socket in blocking mode (two cheap system calls,
// only in a greenlet with patch mode on).
static int blocking_socket(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && !(flags & O_NONBLOCK);
}

static int would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK; }

// Receive flags whose call never waits (MSG_DONTWAIT; the error queue;
// out-of-band data, which is there or not), or which a cooperative call
// cannot reproduce (MSG_PEEK with MSG_WAITALL: waiting until enough is
// queued, without taking it): libc's call.
static int receive_as_is(int flags) {
    return (flags & (MSG_DONTWAIT | MSG_ERRQUEUE | MSG_OOB)) ||
           ((flags & MSG_PEEK) && (flags & MSG_WAITALL));
}

// The socket's receive or send timeout, as a deadline taken when the call
// first has to wait.
struct socket_deadline {
    int known;
    double at;
};

static void socket_deadline_load(int fd, int sending, struct socket_deadline *d) {
    if (d->known) return;
    d->known = 1;
    d->at = -1.0;
    struct timeval t = { 0, 0 };
    socklen_t size = sizeof t;
    if (getsockopt(fd, SOL_SOCKET, sending ? SO_SNDTIMEO : SO_RCVTIMEO, &t, &size) == 0 &&
        (t.tv_sec > 0 || t.tv_usec > 0)) {
        d->at = deadline_in((double)t.tv_sec + (double)t.tv_usec / 1e6);
    }
}

// Parks until the socket is ready for receiving (`sending` 0) or sending:
// 0, EINTR when interrupted, EAGAIN once the socket's timeout passed.
static int park_socket(const green_patch_hooks *h, int fd, int sending, struct socket_deadline *d) {
    socket_deadline_load(fd, sending, d);
    if (d->at < 0) return h->wait_fd(fd, sending) == 0 ? 0 : EINTR;
    if (passed(d->at)) return EAGAIN;
    int events = sending ? 2 : 1;
    return h->wait_any(&fd, &events, 1, left_until(d->at)) == 0 ? 0 : EINTR;
}

// One blocking socket call. `attempt` makes one non-blocking try at the
// part not transferred yet (`done` bytes are).
struct socket_call {
    int fd, sending, flags;
    size_t total;
    ssize_t (*attempt)(struct socket_call *, size_t done);
    // The call's arguments.
    void *buffer;
    struct sockaddr *from;
    socklen_t *from_size;
    const struct sockaddr *to;
    socklen_t to_size;
    struct msghdr *message;
    socklen_t name_size;
    size_t control_size;
    struct iovec *rest;   // room for the iovecs still to fill
    // What the call found out.
    int stream;           // -1 not known yet
    int got_control;
};

// Whether a receive that got fewer bytes than asked goes on.
static int keep_receiving(struct socket_call *c) {
    if (!(c->flags & MSG_WAITALL) || c->got_control) return 0;
    if (c->stream < 0) {
        int type = 0;
        socklen_t size = sizeof type;
        c->stream = getsockopt(c->fd, SOL_SOCKET, SO_TYPE, &type, &size) == 0 && type == SOCK_STREAM;
    }
    return c->stream;
}

// After part of a transfer: 1 when more can be tried now, 0 when the
// socket is not ready, -1 when the call should end with what it has
// (the stream ended, or has an error that its next call should report:
// trying would take the error and lose it).
static int more_may_follow(const struct socket_call *c) {
    REAL(poll);
    struct pollfd p = { c->fd, (short)(c->sending ? POLLOUT : POLLIN), 0 };
    if (poll_real(&p, 1, 0) < 0) return 1;
    if (c->sending) {
        if (p.revents & (POLLERR | POLLHUP)) return -1;
        return (p.revents & POLLOUT) ? 1 : 0;
    }
    if (!(p.revents & (POLLIN | POLLERR | POLLHUP))) return 0;
    int queued = 0;
    if (ioctl(c->fd, FIONREAD, &queued) != 0) return 1;
    return queued > 0 ? 1 : -1;
}

static ssize_t transfer(const green_patch_hooks *h, struct socket_call *c) {
    int caller_errno = errno;
    size_t done = 0;
    struct socket_deadline deadline = { 0, -1.0 };
    for (;;) {
        int go = done == 0 ? 1 : more_may_follow(c);
        if (go < 0) break;
        if (go > 0) {
            ssize_t n = c->attempt(c, done);
            if (n > 0) {
                done += (size_t)n;
                // Only a stream socket transfers part of what was asked.
                if (done >= c->total || (!c->sending && !keep_receiving(c))) break;
                continue;
            }
            if (n == 0) break;   // end of stream, or nothing asked
            if (!would_block()) {
                if (done == 0) return -1;
                break;
            }
        }
        int stop = park_socket(h, c->fd, c->sending, &deadline);
        if (stop) {
            if (done > 0) break;
            errno = stop;
            return -1;
        }
    }
    errno = caller_errno;
    return (ssize_t)done;
}

// The iovecs `iov` (`count` of them) less their first `skip` bytes, into
// `out`; returns how many.
static size_t iov_after(const struct iovec *iov, size_t count, size_t skip, struct iovec *out) {
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        out[k].iov_base = (char *)iov[i].iov_base + skip;
        out[k].iov_len = iov[i].iov_len - skip;
        skip = 0;
        k++;
    }
    return k;
}

static size_t iov_total(const struct iovec *iov, size_t count) {
    size_t total = 0;
    for (size_t i = 0; i < count; i++) total += iov[i].iov_len;
    return total;
}

static ssize_t attempt_recv(struct socket_call *c, size_t done) {
    REAL(recv);
    return recv_real(c->fd, (char *)c->buffer + done, c->total - done, c->flags | MSG_DONTWAIT);
}

static ssize_t attempt_send(struct socket_call *c, size_t done) {
    REAL(send);
    return send_real(c->fd, (const char *)c->buffer + done, c->total - done, c->flags | MSG_DONTWAIT);
}

static ssize_t attempt_recvfrom(struct socket_call *c, size_t done) {
    REAL(recvfrom);
    return recvfrom_real(c->fd, (char *)c->buffer + done, c->total - done, c->flags | MSG_DONTWAIT, c->from,
                         c->from_size);
}

static ssize_t attempt_sendto(struct socket_call *c, size_t done) {
    REAL(sendto);
    return sendto_real(c->fd, (const char *)c->buffer + done, c->total - done, c->flags | MSG_DONTWAIT, c->to,
                       c->to_size);
}

static ssize_t attempt_recvmsg(struct socket_call *c, size_t done) {
    REAL(recvmsg);
    struct msghdr m = *c->message;
    m.msg_namelen = c->name_size;
    m.msg_controllen = c->control_size;
    if (done > 0) {
        m.msg_iovlen = iov_after(c->message->msg_iov, c->message->msg_iovlen, done, c->rest);
        m.msg_iov = c->rest;
    }
    ssize_t n = recvmsg_real(c->fd, &m, c->flags | MSG_DONTWAIT);
    if (n >= 0) {
        c->message->msg_namelen = m.msg_namelen;
        c->message->msg_controllen = m.msg_controllen;
        c->message->msg_flags = m.msg_flags;
        // The kernel ends a MSG_WAITALL receive at passed descriptors.
        if (m.msg_controllen > 0) c->got_control = 1;
    }
    return n;
}

static ssize_t attempt_sendmsg(struct socket_call *c, size_t done) {
    REAL(sendmsg);
    struct msghdr m = *c->message;
    if (done > 0) {
        m.msg_iovlen = iov_after(c->message->msg_iov, c->message->msg_iovlen, done, c->rest);
        m.msg_iov = c->rest;
        // Control data (passed fds, credentials) went with the first part.
        m.msg_control = NULL;
        m.msg_controllen = 0;
    }
    return sendmsg_real(c->fd, &m, c->flags | MSG_DONTWAIT);
}

// A call on a msghdr (recvmsg, sendmsg, readv, writev): the iovecs still
// to fill need room; beyond 8 of them, on the heap (a greenlet's stack is
// small).
static ssize_t transfer_message(const green_patch_hooks *h, struct socket_call *c) {
    struct iovec small[8];
    size_t count = c->message->msg_iovlen;
    c->rest = count <= 8 ? small : malloc(count * sizeof(struct iovec));
    if (!c->rest) {
        errno = ENOMEM;
        return -1;
    }
    c->total = iov_total(c->message->msg_iov, count);
    ssize_t n = transfer(h, c);
    if (c->rest != small) {
        int saved = errno;
        free(c->rest);
        errno = saved;
    }
    return n;
}

ssize_t recv(int fd, void *buffer, size_t length, int flags) {
    const green_patch_hooks *h = cooperating();
    REAL(recv);
    if (!h || receive_as_is(flags) || !blocking_socket(fd)) return recv_real(fd, buffer, length, flags);
    struct socket_call c = { .fd = fd, .flags = flags, .total = length, .attempt = attempt_recv,
                             .buffer = buffer, .stream = -1 };
    return transfer(h, &c);
}

ssize_t send(int fd, const void *buffer, size_t length, int flags) {
    const green_patch_hooks *h = cooperating();
    REAL(send);
    if (!h || (flags & MSG_DONTWAIT) || !blocking_socket(fd)) return send_real(fd, buffer, length, flags);
    struct socket_call c = { .fd = fd, .sending = 1, .flags = flags, .total = length, .attempt = attempt_send,
                             .buffer = (void *)buffer, .stream = -1 };
    return transfer(h, &c);
}

ssize_t recvfrom(int fd, void *buffer, size_t length, int flags, struct sockaddr *from, socklen_t *from_size) {
    const green_patch_hooks *h = cooperating();
    REAL(recvfrom);
    if (!h || receive_as_is(flags) || !blocking_socket(fd)) {
        return recvfrom_real(fd, buffer, length, flags, from, from_size);
    }
    struct socket_call c = { .fd = fd, .flags = flags, .total = length, .attempt = attempt_recvfrom,
                             .buffer = buffer, .from = from, .from_size = from_size, .stream = -1 };
    return transfer(h, &c);
}

ssize_t sendto(int fd, const void *buffer, size_t length, int flags, const struct sockaddr *to, socklen_t to_size) {
    const green_patch_hooks *h = cooperating();
    REAL(sendto);
    if (!h || (flags & MSG_DONTWAIT) || !blocking_socket(fd)) {
        return sendto_real(fd, buffer, length, flags, to, to_size);
    }
    struct socket_call c = { .fd = fd, .sending = 1, .flags = flags, .total = length, .attempt = attempt_sendto,
                             .buffer = (void *)buffer, .to = to, .to_size = to_size, .stream = -1 };
    return transfer(h, &c);
}

ssize_t recvmsg(int fd, struct msghdr *message, int flags) {
    const green_patch_hooks *h = cooperating();
    REAL(recvmsg);
    // Beyond IOV_MAX iovecs libc refuses at once (EMSGSIZE).
    if (!h || receive_as_is(flags) || !message || message->msg_iovlen > IOV_MAX || !blocking_socket(fd)) {
        return recvmsg_real(fd, message, flags);
    }
    struct socket_call c = { .fd = fd, .flags = flags, .attempt = attempt_recvmsg, .message = message,
                             .name_size = message->msg_namelen, .control_size = message->msg_controllen,
                             .stream = -1 };
    return transfer_message(h, &c);
}

ssize_t sendmsg(int fd, const struct msghdr *message, int flags) {
    const green_patch_hooks *h = cooperating();
    REAL(sendmsg);
    if (!h || (flags & MSG_DONTWAIT) || !message || message->msg_iovlen > IOV_MAX || !blocking_socket(fd)) {
        return sendmsg_real(fd, message, flags);
    }
    struct socket_call c = { .fd = fd, .sending = 1, .flags = flags, .attempt = attempt_sendmsg,
                             .message = (struct msghdr *)message, .stream = -1 };
    return transfer_message(h, &c);
}

// read and write on a socket are recv and send with no flags (SIGPIPE
// included); readv and writev are recvmsg and sendmsg.
ssize_t read(int fd, void *buffer, size_t length) {
    const green_patch_hooks *h = cooperating();
    REAL(read);
    if (!h || !blocking_socket(fd)) return read_real(fd, buffer, length);
    struct socket_call c = { .fd = fd, .total = length, .attempt = attempt_recv, .buffer = buffer, .stream = -1 };
    return transfer(h, &c);
}

ssize_t write(int fd, const void *buffer, size_t length) {
    const green_patch_hooks *h = cooperating();
    REAL(write);
    if (!h || !blocking_socket(fd)) return write_real(fd, buffer, length);
    struct socket_call c = { .fd = fd, .sending = 1, .total = length, .attempt = attempt_send,
                             .buffer = (void *)buffer, .stream = -1 };
    return transfer(h, &c);
}

ssize_t readv(int fd, const struct iovec *iov, int count) {
    const green_patch_hooks *h = cooperating();
    REAL(readv);
    if (!h || count < 0 || count > IOV_MAX || !blocking_socket(fd)) return readv_real(fd, iov, count);
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = (struct iovec *)iov;
    m.msg_iovlen = (size_t)count;
    struct socket_call c = { .fd = fd, .attempt = attempt_recvmsg, .message = &m, .stream = -1 };
    return transfer_message(h, &c);
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    const green_patch_hooks *h = cooperating();
    REAL(writev);
    if (!h || count < 0 || count > IOV_MAX || !blocking_socket(fd)) return writev_real(fd, iov, count);
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = (struct iovec *)iov;
    m.msg_iovlen = (size_t)count;
    struct socket_call c = { .fd = fd, .sending = 1, .attempt = attempt_sendmsg, .message = &m, .stream = -1 };
    return transfer_message(h, &c);
}

int connect(int fd, const struct sockaddr *address, socklen_t length) {
    const green_patch_hooks *h = cooperating();
    REAL(connect);
    REAL(poll);
    if (!h || !blocking_socket(fd)) return connect_real(fd, address, length);
    int caller_errno = errno;
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    struct socket_deadline deadline = { 0, -1.0 };
    int rc = connect_real(fd, address, length), error = rc == 0 ? 0 : errno;
    // A Unix socket whose listener's backlog is full: EAGAIN, where a
    // blocking connect waits for room (nothing to poll for: try again
    // every 10 ms). After SO_SNDTIMEO, EAGAIN, as libc's.
    while (rc != 0 && error == EAGAIN && address && address->sa_family == AF_UNIX) {
        socket_deadline_load(fd, 1, &deadline);
        double left = left_until(deadline.at);
        if (left == 0) break;
        if (h->sleep_for(left < 0 || left > 0.01 ? 0.01 : left) != 0) {
            error = EINTR;
            break;
        }
        rc = connect_real(fd, address, length);
        error = rc == 0 ? 0 : errno;
    }
    while (rc != 0 && error == EINPROGRESS) {
        int stop = park_socket(h, fd, 1, &deadline);
        if (stop) {
            // After SO_SNDTIMEO, as libc: EINPROGRESS (the connection goes on).
            error = stop == EAGAIN ? EINPROGRESS : EINTR;
            break;
        }
        struct pollfd p = { fd, POLLOUT, 0 };
        if (poll_real(&p, 1, 0) == 1) {
            int result = 0;
            socklen_t size = sizeof result;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &result, &size);
            rc = result == 0 ? 0 : -1;
            error = result;
        }
    }
    fcntl(fd, F_SETFL, flags);
    errno = rc == 0 ? caller_errno : error;
    return rc;
}

static int accept_common(int fd, struct sockaddr *address, socklen_t *length, int flags, int with_flags) {
    const green_patch_hooks *h = cooperating();
    REAL(accept4);
    REAL(accept);
    if (!h || !blocking_socket(fd)) {
        return with_flags ? accept4_real(fd, address, length, flags) : accept_real(fd, address, length);
    }
    int caller_errno = errno;
    int listener = fcntl(fd, F_GETFL);
    struct socket_deadline deadline = { 0, -1.0 };
    for (;;) {
        fcntl(fd, F_SETFL, listener | O_NONBLOCK);
        int c = accept4_real(fd, address, length, flags);
        int error = errno;
        fcntl(fd, F_SETFL, listener);
        if (c >= 0) {
            errno = caller_errno;
            return c;
        }
        if (!(error == EAGAIN || error == EWOULDBLOCK)) {
            errno = error;
            return -1;
        }
        int stop = park_socket(h, fd, 0, &deadline);   // EAGAIN after SO_RCVTIMEO, as libc's
        if (stop) {
            errno = stop;
            return -1;
        }
    }
}

int accept(int fd, struct sockaddr *address, socklen_t *length) { return accept_common(fd, address, length, 0, 0); }
int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept_common(fd, address, length, flags, 1);
}

// ------------------------------------------------------- fortified calls
//
// Code built with _FORTIFY_SOURCE (as distributions build their
// libraries) calls these where the buffer's size is known; glibc's check
// the size and call its own read, poll, ..., which are not the ones here.

extern void __chk_fail(void) __attribute__((noreturn));

ssize_t __read_chk(int fd, void *buffer, size_t length, size_t buffer_size);
ssize_t __read_chk(int fd, void *buffer, size_t length, size_t buffer_size) {
    if (length > buffer_size) __chk_fail();
    return read(fd, buffer, length);
}

ssize_t __recv_chk(int fd, void *buffer, size_t length, size_t buffer_size, int flags);
ssize_t __recv_chk(int fd, void *buffer, size_t length, size_t buffer_size, int flags) {
    if (length > buffer_size) __chk_fail();
    return recv(fd, buffer, length, flags);
}

ssize_t __recvfrom_chk(int fd, void *buffer, size_t length, size_t buffer_size, int flags, struct sockaddr *from,
                       socklen_t *from_size);
ssize_t __recvfrom_chk(int fd, void *buffer, size_t length, size_t buffer_size, int flags, struct sockaddr *from,
                       socklen_t *from_size) {
    if (length > buffer_size) __chk_fail();
    return recvfrom(fd, buffer, length, flags, from, from_size);
}

int __poll_chk(struct pollfd *fds, nfds_t count, int timeout_ms, size_t fds_size);
int __poll_chk(struct pollfd *fds, nfds_t count, int timeout_ms, size_t fds_size) {
    if (fds_size / sizeof *fds < count) __chk_fail();
    return poll(fds, count, timeout_ms);
}

int __ppoll_chk(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask,
                size_t fds_size);
int __ppoll_chk(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask,
                size_t fds_size) {
    if (fds_size / sizeof *fds < count) __chk_fail();
    return ppoll(fds, count, timeout, mask);
}

// ---------------------------------------------------------- getaddrinfo

// The job a pool thread runs is on the heap, arguments copied: the caller's
// memory may be its greenlet's stack, which is not there while a compact
// greenlet is parked (see compact.c), so the pool thread touches only the
// job, and the caller reads the result once it runs again.
struct resolve_job {
    char *node, *service;
    struct addrinfo hints;
    int has_hints;
    struct addrinfo *result;
    int rc;
};

static void resolve_work(void *arg) {
    struct resolve_job *j = arg;
    REAL(getaddrinfo);
    j->rc = getaddrinfo_real(j->node, j->service, j->has_hints ? &j->hints : NULL, &j->result);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **result) {
    const green_patch_hooks *h = cooperating();
    if (h) {
        // The lookup blocks its thread: a pool thread, not the hub's.
        struct resolve_job *j = calloc(1, sizeof *j);
        if (!j || (node && !(j->node = strdup(node))) || (service && !(j->service = strdup(service)))) {
            if (j) {
                free(j->node);
                free(j);
            }
            return EAI_MEMORY;
        }
        if (hints) {
            // Only the fields getaddrinfo reads from hints; the rest zero.
            j->hints.ai_flags = hints->ai_flags;
            j->hints.ai_family = hints->ai_family;
            j->hints.ai_socktype = hints->ai_socktype;
            j->hints.ai_protocol = hints->ai_protocol;
            j->has_hints = 1;
        }
        j->rc = EAI_SYSTEM;
        h->run_elsewhere(resolve_work, j);
        int rc = j->rc;
        if (rc == 0) *result = j->result;
        free(j->node);
        free(j->service);
        free(j);
        return rc;
    }
    REAL(getaddrinfo);
    return getaddrinfo_real(node, service, hints, result);
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
