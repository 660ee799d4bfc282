#define _GNU_SOURCE
#include "green_linux.h"

#include <fcntl.h>
#include <unistd.h>

int green_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

int green_pipe2(int fds[2], int flags) {
    return pipe2(fds, flags);
}
