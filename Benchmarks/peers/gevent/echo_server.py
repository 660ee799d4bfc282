"""gevent echo server for the peers' echo workload: a greenlet per
connection (gevent.server.StreamServer). Prints "listening on ADDRESS" and
serves until killed.

    python echo_server.py --port 0
"""
import argparse

from gevent.server import StreamServer


def handle(sock, _address):
    while True:
        data = sock.recv(65536)
        if not data:
            break
        sock.sendall(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = StreamServer(("127.0.0.1", args.port), handle, backlog=1024)
    server.start()
    host, port = server.address[:2]
    print(f"listening on {host}:{port} (gevent)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
