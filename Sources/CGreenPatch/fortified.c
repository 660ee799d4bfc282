#include "patch_internal.h"

// Patch mode: fortified calls.
//
// Code built with _FORTIFY_SOURCE (as distributions build their
// libraries) calls these where the buffer's size is known; glibc's check
// the size and call its own read, poll, ..., which are not the ones here.

extern void __chk_fail(void) __attribute__((noreturn));

ssize_t __read_chk(int fd, void *buffer, size_t length, size_t buffer_size) {
    if (length > buffer_size) __chk_fail();
    return read(fd, buffer, length);
}

ssize_t __recv_chk(int fd, void *buffer, size_t length, size_t buffer_size, int flags) {
    if (length > buffer_size) __chk_fail();
    return recv(fd, buffer, length, flags);
}

ssize_t __recvfrom_chk(int fd, void *buffer, size_t length, size_t buffer_size, int flags, struct sockaddr *from,
                       socklen_t *from_size) {
    if (length > buffer_size) __chk_fail();
    return recvfrom(fd, buffer, length, flags, from, from_size);
}

int __poll_chk(struct pollfd *fds, nfds_t count, int timeout_ms, size_t fds_size) {
    if (fds_size / sizeof *fds < count) __chk_fail();
    return poll(fds, count, timeout_ms);
}

int __ppoll_chk(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask,
                size_t fds_size) {
    if (fds_size / sizeof *fds < count) __chk_fail();
    return ppoll(fds, count, timeout, mask);
}
