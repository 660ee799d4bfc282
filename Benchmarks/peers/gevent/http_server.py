"""gevent pywsgi hello server for the peers' HTTP workload: "Hello, World!"
on GET /. Prints "listening on ADDRESS" and serves until killed.

    python http_server.py --port 0
"""
from gevent.pywsgi import WSGIServer

from peer_server import serve

HELLO = b"Hello, World!"


def app(environ, start_response):
    if environ.get("PATH_INFO", "/") != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def main():
    serve(__doc__.splitlines()[0], "gevent pywsgi", lambda address: WSGIServer(address, app, log=None, backlog=1024))


if __name__ == "__main__":
    main()
