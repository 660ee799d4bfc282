#define _GNU_SOURCE
#include "green_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int green_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

int green_pipe2(int fds[2], int flags) {
    return pipe2(fds, flags);
}

int green_pidfd_open(int pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

#include <sys/prctl.h>

int green_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0);
}

int green_is_main_thread(void) {
    return syscall(SYS_gettid) == getpid();
}
