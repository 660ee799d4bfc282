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

#endif
