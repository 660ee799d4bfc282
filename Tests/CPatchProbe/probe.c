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
