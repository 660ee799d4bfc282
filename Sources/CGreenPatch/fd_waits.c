#include "patch_internal.h"

// Patch mode: waiting on fds.
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
    const green_patch_hooks *h = gp_cooperating();
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
    const green_patch_hooks *h = gp_cooperating();
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
    const green_patch_hooks *h = gp_cooperating();
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
    const green_patch_hooks *h = gp_cooperating();
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
    const green_patch_hooks *h = gp_cooperating();
    if (!h) return epoll_wait_real(epfd, events, max, timeout_ms);
    return epoll_until(h, epfd, events, max, timeout_ms < 0 ? -1.0 : deadline_in(timeout_ms / 1000.0));
}

int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout_ms, const sigset_t *mask) {
    REAL(epoll_pwait);
    if (mask || timeout_ms == 0) return epoll_pwait_real(epfd, events, max, timeout_ms, mask);
    const green_patch_hooks *h = gp_cooperating();
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
    const green_patch_hooks *h = gp_cooperating();
    if (!h) return epoll_pwait2_real(epfd, events, max, timeout, mask);
    return epoll_until(h, epfd, events, max, timeout ? deadline_in(timespec_s(timeout)) : -1.0);
}
