"""gevent echo server for the peers' echo workload: a greenlet per
connection (gevent.server.StreamServer). Prints "listening on ADDRESS" and
serves until killed.

    python echo_server.py --port 0
"""
from gevent.server import StreamServer

from peer_server import serve


def handle(sock, _address):
    while True:
        data = sock.recv(65536)
        if not data:
            break
        sock.sendall(data)


def main():
    serve(__doc__.splitlines()[0], "gevent", lambda address: StreamServer(address, handle, backlog=1024))


if __name__ == "__main__":
    main()
