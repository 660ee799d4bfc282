// C code that blocks, for the patch-mode tests: plain calls to libc,
// compiled into the test program.
#ifndef PATCH_PROBE_H
#define PATCH_PROBE_H
unsigned int patch_probe_sleep(unsigned int seconds);
int patch_probe_usleep(unsigned int microseconds);
int patch_probe_nanosleep_ms(long milliseconds);
/// A blocking TCP client in plain C: connects to 127.0.0.1:port, writes
/// `message`, reads the reply into `reply` (up to `size` bytes, until the
/// peer closes or `expect` bytes came). Returns the bytes read, or -errno.
long patch_probe_roundtrip(int port, const char *message, char *reply, long size, long expect);
/// A blocking C server step: accepts one connection on `listener` (a
/// blocking listening socket), reads up to 64 bytes and writes them back
/// uppercased, closes. Returns the bytes echoed, or -errno.
long patch_probe_serve_one(int listener);
/// poll(2) for readability of `fd` with a timeout: its result.
int patch_probe_poll_readable(int fd, int timeout_ms);
/// getaddrinfo(3) of `host` (numeric or "localhost"): 0, or its error.
int patch_probe_resolve(const char *host);

/// clock_nanosleep(2) on CLOCK_MONOTONIC for `milliseconds`, relative or
/// (`absolute` 1) until that long from now: its result.
int patch_probe_clock_nanosleep_ms(int absolute, long milliseconds);

/// The calls patch_probe_wait can wait in.
enum {
    PATCH_PROBE_SELECT = 0,
    PATCH_PROBE_PSELECT = 1,
    PATCH_PROBE_POLL = 2,
    PATCH_PROBE_PPOLL = 3,
    PATCH_PROBE_EPOLL_WAIT = 4,
    PATCH_PROBE_EPOLL_PWAIT = 5,
    PATCH_PROBE_EPOLL_PWAIT2 = 6,
};
/// Waits in the call `kind` (no signal mask) for the `count` (at most 16)
/// fds: `what[i]` asks fds[i] to be readable (1), writable (2) or to have
/// an exceptional condition (4), at most `timeout_ms` (< 0: no limit; the
/// epoll kinds put the fds into an instance of their own). Returns the
/// call's result, `*error` its errno (0 unless it failed). `ready[i]`: the
/// same bits as reported, plus 8 for an error or hang-up (poll, epoll); for
/// select and pselect, the bits its sets hold on return (when it fails,
/// the question it left in them). `*left_us`: the time select wrote back
/// into its timeval (-1 for the other kinds or no timeout).
int patch_probe_wait(int kind, int count, const int *fds, const int *what, int *ready, long timeout_ms,
                     long *left_us, int *error);
/// Blocks a real-time signal, raises it (pending), then waits in `kind`
/// (pselect, ppoll, epoll_pwait or epoll_pwait2) for `fd` to be readable,
/// at most 5 s, with a signal mask that unblocks it: libc's call runs the
/// handler and fails with EINTR at once. Returns the call's result,
/// `*error` its errno, `*handled` how many times the handler ran before
/// the call returned; then restores the mask and the handler.
int patch_probe_wait_unmasking(int kind, int fd, int *error, int *handled);

/// Lowers this process's soft limit on open fds to the number the next fd
/// would get, so that no new fd can be made (EMFILE): 0 once checked,
/// else -errno; `*saved` the limit to restore with patch_probe_restore_fds.
int patch_probe_limit_fds(long *saved);
void patch_probe_restore_fds(long saved);

/// Socket calls as C code makes them: the result, or -errno.
long patch_probe_recv(int fd, char *buffer, long size, int flags);
long patch_probe_send(int fd, const char *data, long size, int flags);
long patch_probe_write(int fd, const char *data, long size);
/// recvfrom(2); `*from_port` the sender's port (an AF_INET sender).
long patch_probe_recvfrom(int fd, char *buffer, long size, int *from_port);
/// sendto(2) to 127.0.0.1:`port`.
long patch_probe_sendto(int fd, const char *data, long size, int port);
/// sendmsg(2) of two iovecs, `a` then `b`, passing `pass_fd` (SCM_RIGHTS)
/// unless it is -1.
long patch_probe_sendmsg(int fd, const char *a, long na, const char *b, long nb, int pass_fd);
/// recvmsg(2) into two iovecs with room for one passed fd: `*passed_fd`
/// the fd received (-1 if none), `*msg_flags` the message's flags.
long patch_probe_recvmsg(int fd, char *a, long na, char *b, long nb, int flags, int *passed_fd, int *msg_flags);
long patch_probe_readv(int fd, char *a, long na, char *b, long nb);
long patch_probe_writev(int fd, const char *a, long na, const char *b, long nb);
/// accept(2): the new fd, or -errno.
long patch_probe_accept(int listener);
/// connect(2) of `fd` to the Unix socket `abstract_name` (in the abstract
/// namespace): 0 or -errno.
long patch_probe_connect_unix(int fd, const char *abstract_name);
/// A listening Unix stream socket bound to `abstract_name` (in the
/// abstract namespace) with `backlog`: the fd, or -errno.
int patch_probe_unix_listener(const char *abstract_name, int backlog);
/// A TCP connection over loopback made with libc's blocking calls:
/// fds[0] the client's end, fds[1] the server's. 0 or -errno.
int patch_probe_tcp_pair(int fds[2]);
#endif
