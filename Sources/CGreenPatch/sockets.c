#include "patch_internal.h"

// Patch mode: sockets.
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
    const green_patch_hooks *h = gp_cooperating();
    REAL(recv);
    if (!h || receive_as_is(flags) || !blocking_socket(fd)) return recv_real(fd, buffer, length, flags);
    struct socket_call c = { .fd = fd, .flags = flags, .total = length, .attempt = attempt_recv,
                             .buffer = buffer, .stream = -1 };
    return transfer(h, &c);
}

ssize_t send(int fd, const void *buffer, size_t length, int flags) {
    const green_patch_hooks *h = gp_cooperating();
    REAL(send);
    if (!h || (flags & MSG_DONTWAIT) || !blocking_socket(fd)) return send_real(fd, buffer, length, flags);
    struct socket_call c = { .fd = fd, .sending = 1, .flags = flags, .total = length, .attempt = attempt_send,
                             .buffer = (void *)buffer, .stream = -1 };
    return transfer(h, &c);
}

ssize_t recvfrom(int fd, void *buffer, size_t length, int flags, struct sockaddr *from, socklen_t *from_size) {
    const green_patch_hooks *h = gp_cooperating();
    REAL(recvfrom);
    if (!h || receive_as_is(flags) || !blocking_socket(fd)) {
        return recvfrom_real(fd, buffer, length, flags, from, from_size);
    }
    struct socket_call c = { .fd = fd, .flags = flags, .total = length, .attempt = attempt_recvfrom,
                             .buffer = buffer, .from = from, .from_size = from_size, .stream = -1 };
    return transfer(h, &c);
}

ssize_t sendto(int fd, const void *buffer, size_t length, int flags, const struct sockaddr *to, socklen_t to_size) {
    const green_patch_hooks *h = gp_cooperating();
    REAL(sendto);
    if (!h || (flags & MSG_DONTWAIT) || !blocking_socket(fd)) {
        return sendto_real(fd, buffer, length, flags, to, to_size);
    }
    struct socket_call c = { .fd = fd, .sending = 1, .flags = flags, .total = length, .attempt = attempt_sendto,
                             .buffer = (void *)buffer, .to = to, .to_size = to_size, .stream = -1 };
    return transfer(h, &c);
}

ssize_t recvmsg(int fd, struct msghdr *message, int flags) {
    const green_patch_hooks *h = gp_cooperating();
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
    const green_patch_hooks *h = gp_cooperating();
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
    const green_patch_hooks *h = gp_cooperating();
    REAL(read);
    if (!h || !blocking_socket(fd)) return read_real(fd, buffer, length);
    struct socket_call c = { .fd = fd, .total = length, .attempt = attempt_recv, .buffer = buffer, .stream = -1 };
    return transfer(h, &c);
}

ssize_t write(int fd, const void *buffer, size_t length) {
    const green_patch_hooks *h = gp_cooperating();
    REAL(write);
    if (!h || !blocking_socket(fd)) return write_real(fd, buffer, length);
    struct socket_call c = { .fd = fd, .sending = 1, .total = length, .attempt = attempt_send,
                             .buffer = (void *)buffer, .stream = -1 };
    return transfer(h, &c);
}

// readv and writev: their iovecs as a message with no name, no control
// data and no flags, received or sent as recvmsg and sendmsg do.
static ssize_t transfer_iovecs(const green_patch_hooks *h, int fd, const struct iovec *iov, int count, int sending) {
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = (struct iovec *)iov;
    m.msg_iovlen = (size_t)count;
    struct socket_call c = { .fd = fd, .sending = sending, .attempt = sending ? attempt_sendmsg : attempt_recvmsg,
                             .message = &m, .stream = -1 };
    return transfer_message(h, &c);
}

ssize_t readv(int fd, const struct iovec *iov, int count) {
    const green_patch_hooks *h = gp_cooperating();
    REAL(readv);
    if (!h || count < 0 || count > IOV_MAX || !blocking_socket(fd)) return readv_real(fd, iov, count);
    return transfer_iovecs(h, fd, iov, count, 0);
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    const green_patch_hooks *h = gp_cooperating();
    REAL(writev);
    if (!h || count < 0 || count > IOV_MAX || !blocking_socket(fd)) return writev_real(fd, iov, count);
    return transfer_iovecs(h, fd, iov, count, 1);
}

int connect(int fd, const struct sockaddr *address, socklen_t length) {
    const green_patch_hooks *h = gp_cooperating();
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
    const green_patch_hooks *h = gp_cooperating();
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
