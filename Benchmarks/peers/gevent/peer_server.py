"""How the gevent servers of echo-peers.sh start: --port (0 picks a free
one) on 127.0.0.1, then "listening on HOST:PORT (LABEL)" once bound, then
serving until killed."""
import argparse


def serve(description, label, make_server):
    """make_server(address) builds the gevent server for the address."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = make_server(("127.0.0.1", args.port))
    server.start()
    host, port = server.address[:2]
    print(f"listening on {host}:{port} ({label})", flush=True)
    server.serve_forever()
