// echo-threads: the echo workload on plain OS threads, one per connection,
// blocking sockets: the model the seeds' notes start from. Prints
// "listening on ADDRESS" and serves until killed.
//
//   cc -O2 -pthread echo_threads.c -o echo-threads && ./echo-threads 0
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void *serve(void *arg) {
    int fd = (int)(long)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w <= 0) goto done;
            off += w;
        }
    }
done:
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int ln = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ln, (struct sockaddr *)&a, sizeof a) != 0 || listen(ln, 1024) != 0) {
        perror("echo-threads: bind/listen");
        return 1;
    }
    socklen_t len = sizeof a;
    getsockname(ln, (struct sockaddr *)&a, &len);
    printf("listening on 127.0.0.1:%d (threads)\n", ntohs(a.sin_port));
    fflush(stdout);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int fd = accept(ln, NULL, NULL);
        if (fd < 0) continue;
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(long)fd) != 0) close(fd);
    }
}
