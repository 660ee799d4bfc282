"""gevent pywsgi hello server for the peers' HTTP workload: "Hello, World!"
on GET /. Prints "listening on ADDRESS" and serves until killed.

    python http_server.py --port 0
"""
import argparse

from gevent.pywsgi import WSGIServer

HELLO = b"Hello, World!"


def app(environ, start_response):
    if environ.get("PATH_INFO", "/") != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = WSGIServer(("127.0.0.1", args.port), app, log=None, backlog=1024)
    server.start()
    host, port = server.address[:2]
    print(f"listening on {host}:{port} (gevent pywsgi)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
