// C code that blocks, for the patch-mode tests: plain calls to libc's
// sleep family, compiled into the test program.
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
#endif
