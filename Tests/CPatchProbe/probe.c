#define _GNU_SOURCE
#include "patch_probe.h"
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/uio.h>
#include <sys/un.h>

unsigned int patch_probe_sleep(unsigned int seconds) { return sleep(seconds); }
int patch_probe_usleep(unsigned int microseconds) { return usleep(microseconds); }
int patch_probe_nanosleep_ms(long milliseconds) {
    struct timespec t = { milliseconds / 1000, (milliseconds % 1000) * 1000000 };
    return nanosleep(&t, NULL);
}

long patch_probe_roundtrip(int port, const char *message, char *reply, long size, long expect) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { int e = errno; close(fd); return -e; }
    size_t len = strlen(message);
    if (write(fd, message, len) != (ssize_t)len) { int e = errno; close(fd); return -e; }
    long got = 0;
    while (got < size && got < expect) {
        ssize_t n = read(fd, reply + got, (size_t)(size - got));
        if (n < 0) { int e = errno; close(fd); return -e; }
        if (n == 0) break;
        got += n;
    }
    close(fd);
    return got;
}

long patch_probe_serve_one(int listener) {
    int c = accept(listener, NULL, NULL);
    if (c < 0) return -errno;
    char buf[64];
    ssize_t n = recv(c, buf, sizeof buf, 0);
    if (n < 0) { int e = errno; close(c); return -e; }
    for (ssize_t i = 0; i < n; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
    ssize_t w = send(c, buf, (size_t)n, 0);
    close(c);
    return w < 0 ? -errno : (long)w;
}

int patch_probe_poll_readable(int fd, int timeout_ms) {
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, timeout_ms);
}

int patch_probe_resolve(const char *host) {
    struct addrinfo *result = NULL;
    int rc = getaddrinfo(host, "80", NULL, &result);
    if (rc == 0) freeaddrinfo(result);
    return rc;
}

// ------------------------------------------------------------ more sleeps

int patch_probe_clock_nanosleep_ms(int absolute, long milliseconds) {
    struct timespec t = { milliseconds / 1000, (milliseconds % 1000) * 1000000 };
    if (absolute) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        t.tv_sec += now.tv_sec;
        t.tv_nsec += now.tv_nsec;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_nsec -= 1000000000L;
            t.tv_sec += 1;
        }
    }
    return clock_nanosleep(CLOCK_MONOTONIC, absolute ? TIMER_ABSTIME : 0, &t, NULL);
}

// ------------------------------------------------------------- waits

static int to_poll_events(int what) {
    return ((what & 1) ? POLLIN : 0) | ((what & 2) ? POLLOUT : 0) | ((what & 4) ? POLLPRI : 0);
}

static int from_poll_events(int revents) {
    return ((revents & POLLIN) ? 1 : 0) | ((revents & POLLOUT) ? 2 : 0) | ((revents & POLLPRI) ? 4 : 0) |
           ((revents & (POLLERR | POLLHUP | POLLNVAL)) ? 8 : 0);
}

static int wait_in(int kind, int count, const int *fds, const int *what, int *ready, long timeout_ms,
                   long *left_us, const sigset_t *mask) {
    struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000 };
    const struct timespec *tsp = timeout_ms < 0 ? NULL : &ts;
    if (left_us) *left_us = -1;
    int rc = -1, e = 0;
    switch (kind) {
    case PATCH_PROBE_SELECT:
    case PATCH_PROBE_PSELECT: {
        fd_set r, w, x;
        FD_ZERO(&r);
        FD_ZERO(&w);
        FD_ZERO(&x);
        int nfds = 0;
        for (int i = 0; i < count; i++) {
            if (what[i] & 1) FD_SET(fds[i], &r);
            if (what[i] & 2) FD_SET(fds[i], &w);
            if (what[i] & 4) FD_SET(fds[i], &x);
            if (fds[i] + 1 > nfds) nfds = fds[i] + 1;
        }
        if (kind == PATCH_PROBE_SELECT) {
            struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
            rc = select(nfds, &r, &w, &x, timeout_ms < 0 ? NULL : &tv);
            e = errno;
            if (left_us && timeout_ms >= 0) *left_us = (long)tv.tv_sec * 1000000 + (long)tv.tv_usec;
        } else {
            rc = pselect(nfds, &r, &w, &x, tsp, mask);
            e = errno;
        }
        for (int i = 0; i < count; i++) {
            ready[i] = (FD_ISSET(fds[i], &r) ? 1 : 0) | (FD_ISSET(fds[i], &w) ? 2 : 0) | (FD_ISSET(fds[i], &x) ? 4 : 0);
        }
        break;
    }
    case PATCH_PROBE_POLL:
    case PATCH_PROBE_PPOLL: {
        struct pollfd p[16];
        if (count > 16) return -EINVAL;
        for (int i = 0; i < count; i++) {
            p[i].fd = fds[i];
            p[i].events = (short)to_poll_events(what[i]);
            p[i].revents = 0;
        }
        rc = kind == PATCH_PROBE_POLL ? poll(p, (nfds_t)count, (int)timeout_ms) : ppoll(p, (nfds_t)count, tsp, mask);
        e = errno;
        for (int i = 0; i < count; i++) ready[i] = from_poll_events(p[i].revents);
        break;
    }
    default: {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) return -errno;
        for (int i = 0; i < count; i++) {
            struct epoll_event ev;
            memset(&ev, 0, sizeof ev);
            ev.events = (unsigned)to_poll_events(what[i]);
            ev.data.u64 = (unsigned long long)i;
            if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0) {
                e = errno;
                close(ep);
                errno = e;
                return -1;
            }
            ready[i] = 0;
        }
        struct epoll_event got[16];
        int max = count < 16 ? (count > 0 ? count : 1) : 16;
        if (kind == PATCH_PROBE_EPOLL_WAIT) rc = epoll_wait(ep, got, max, (int)timeout_ms);
        else if (kind == PATCH_PROBE_EPOLL_PWAIT) rc = epoll_pwait(ep, got, max, (int)timeout_ms, mask);
        else rc = epoll_pwait2(ep, got, max, tsp, mask);
        e = errno;
        for (int i = 0; i < rc; i++) {
            unsigned long long index = got[i].data.u64;
            if (index < (unsigned long long)count) ready[index] = from_poll_events((int)got[i].events);
        }
        close(ep);
        break;
    }
    }
    errno = e;
    return rc;
}

int patch_probe_wait(int kind, int count, const int *fds, const int *what, int *ready, long timeout_ms,
                     long *left_us, int *error) {
    errno = 0;
    int rc = wait_in(kind, count, fds, what, ready, timeout_ms, left_us, NULL);
    *error = rc < 0 ? errno : 0;
    return rc;
}

static volatile sig_atomic_t unmasked_signals = 0;
static void count_signal(int signal) {
    (void)signal;
    unmasked_signals++;
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PROBE_TSAN 1
#endif
#endif

int patch_probe_wait_unmasking(int kind, int fd, int *error, int *handled) {
    int sig = SIGRTMIN + 7;
    struct sigaction action, old_action;
    memset(&action, 0, sizeof action);
    action.sa_handler = count_signal;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, &old_action);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, sig);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    unmasked_signals = 0;
    raise(sig);   // pending: blocked
    sigset_t during = old_mask;
    sigdelset(&during, sig);
    int what = 1, ready = 0;
    int rc = wait_in(kind, 1, &fd, &what, &ready, 5000, NULL, &during);
    *error = rc < 0 ? errno : 0;
#if PROBE_TSAN
    // ThreadSanitizer runs a signal's handler at its next intercepted call
    // after the signal came, not inside the wait: read the count after
    // one (EINTR at once still shows the mask was in force for the wait).
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    *handled = unmasked_signals;
#else
    *handled = unmasked_signals;
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);   // delivers it now if the wait did not
#endif
    sigaction(sig, &old_action, NULL);
    return rc;
}

// ------------------------------------------------------------- sockets

long patch_probe_recv(int fd, char *buffer, long size, int flags) {
    ssize_t n = recv(fd, buffer, (size_t)size, flags);
    return n < 0 ? -errno : (long)n;
}

long patch_probe_send(int fd, const char *data, long size, int flags) {
    ssize_t n = send(fd, data, (size_t)size, flags);
    return n < 0 ? -errno : (long)n;
}

long patch_probe_write(int fd, const char *data, long size) {
    ssize_t n = write(fd, data, (size_t)size);
    return n < 0 ? -errno : (long)n;
}

long patch_probe_recvfrom(int fd, char *buffer, long size, int *from_port) {
    struct sockaddr_in from;
    socklen_t length = sizeof from;
    memset(&from, 0, sizeof from);
    ssize_t n = recvfrom(fd, buffer, (size_t)size, 0, (struct sockaddr *)&from, &length);
    if (n < 0) return -errno;
    *from_port = length == sizeof from ? ntohs(from.sin_port) : -1;
    return (long)n;
}

long patch_probe_sendto(int fd, const char *data, long size, int port) {
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((unsigned short)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ssize_t n = sendto(fd, data, (size_t)size, 0, (struct sockaddr *)&to, sizeof to);
    return n < 0 ? -errno : (long)n;
}

/* A message in two pieces, with room for one passed descriptor: what
   patch_probe_sendmsg sends and patch_probe_recvmsg receives. */
struct two_piece_message {
    struct iovec iov[2];
    struct msghdr header;
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
};

/* Points m at the pieces a and b, and, with with_control, at its room for
   a descriptor. */
static void two_piece_message_init(struct two_piece_message *m, void *a, long na, void *b, long nb,
                                   int with_control) {
    memset(m, 0, sizeof *m);
    m->iov[0] = (struct iovec){ a, (size_t)na };
    m->iov[1] = (struct iovec){ b, (size_t)nb };
    m->header.msg_iov = m->iov;
    m->header.msg_iovlen = 2;
    if (with_control) {
        m->header.msg_control = m->control.buffer;
        m->header.msg_controllen = sizeof m->control.buffer;
    }
}

long patch_probe_sendmsg(int fd, const char *a, long na, const char *b, long nb, int pass_fd) {
    struct two_piece_message m;
    two_piece_message_init(&m, (void *)a, na, (void *)b, nb, pass_fd >= 0);
    if (pass_fd >= 0) {
        struct cmsghdr *c = CMSG_FIRSTHDR(&m.header);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n = sendmsg(fd, &m.header, 0);
    return n < 0 ? -errno : (long)n;
}

long patch_probe_recvmsg(int fd, char *a, long na, char *b, long nb, int flags, int *passed_fd, int *msg_flags) {
    struct two_piece_message m;
    two_piece_message_init(&m, a, na, b, nb, 1);
    *passed_fd = -1;
    ssize_t n = recvmsg(fd, &m.header, flags);
    if (n < 0) return -errno;
    *msg_flags = m.header.msg_flags;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m.header); c; c = CMSG_NXTHDR(&m.header, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(passed_fd, CMSG_DATA(c), sizeof(int));
    }
    return (long)n;
}

long patch_probe_readv(int fd, char *a, long na, char *b, long nb) {
    struct iovec iov[2] = { { a, (size_t)na }, { b, (size_t)nb } };
    ssize_t n = readv(fd, iov, 2);
    return n < 0 ? -errno : (long)n;
}

long patch_probe_writev(int fd, const char *a, long na, const char *b, long nb) {
    struct iovec iov[2] = { { (void *)a, (size_t)na }, { (void *)b, (size_t)nb } };
    ssize_t n = writev(fd, iov, 2);
    return n < 0 ? -errno : (long)n;
}

long patch_probe_accept(int listener) {
    int c = accept(listener, NULL, NULL);
    return c < 0 ? -errno : c;
}

long patch_probe_connect_unix(int fd, const char *abstract_name) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t n = strlen(abstract_name);
    if (n + 1 > sizeof a.sun_path) return -ENAMETOOLONG;
    memcpy(a.sun_path + 1, abstract_name, n);   // sun_path[0] == 0: the abstract namespace
    socklen_t length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    return connect(fd, (struct sockaddr *)&a, length) == 0 ? 0 : -errno;
}

int patch_probe_tcp_pair(int fds[2]) {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0) return -errno;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof a;
    int e = 0;
    if (bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, (struct sockaddr *)&a, &length) != 0) {
        e = errno;
        close(listener);
        return -e;
    }
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof a) != 0) {
        e = errno;
        if (fds[0] >= 0) close(fds[0]);
        close(listener);
        return -e;
    }
    fds[1] = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    e = fds[1] < 0 ? errno : 0;
    close(listener);
    if (e) close(fds[0]);
    return -e;
}

int patch_probe_unix_listener(const char *abstract_name, int backlog) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t n = strlen(abstract_name);
    if (n + 1 > sizeof a.sun_path) {
        close(fd);
        return -ENAMETOOLONG;
    }
    memcpy(a.sun_path + 1, abstract_name, n);
    socklen_t length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    if (bind(fd, (struct sockaddr *)&a, length) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int patch_probe_limit_fds(long *saved) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -errno;
    *saved = (long)limit.rlim_cur;
    int lowest = dup(0);   // the number the next new fd would get
    if (lowest < 0) return -errno;
    close(lowest);
    limit.rlim_cur = (rlim_t)lowest;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return -errno;
    int probe = epoll_create1(EPOLL_CLOEXEC);
    if (probe >= 0) {
        close(probe);
        return -EEXIST;
    }
    return errno == EMFILE ? 0 : -errno;
}

void patch_probe_restore_fds(long saved) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    limit.rlim_cur = (rlim_t)saved;
    setrlimit(RLIMIT_NOFILE, &limit);
}
