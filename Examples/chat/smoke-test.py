"""Smoke test of the chat example: two clients join a room started on a
free port; a line from one reaches the other, /who lists both, /quit ends.
Exits non-zero with the reason on any failure.

    python3 Examples/chat/smoke-test.py .build/release/chat
"""
import re
import socket
import subprocess
import sys
import time


def read_until(sock, needle, limit=5.0):
    sock.settimeout(limit)
    data = b""
    deadline = time.monotonic() + limit
    while needle not in data:
        if time.monotonic() > deadline:
            raise SystemExit(f"chat smoke: never saw {needle!r}; got {data!r}")
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit(f"chat smoke: connection closed before {needle!r}; got {data!r}")
        data += chunk
    return data


def main():
    server = subprocess.Popen([sys.argv[1], "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        match = re.search(r":(\d+)\s*$", line.strip())
        if not match:
            raise SystemExit(f"chat smoke: no port in {line!r}")
        port = int(match.group(1))
        a = socket.create_connection(("127.0.0.1", port), timeout=5)
        read_until(a, b"welcome, guest")
        b = socket.create_connection(("127.0.0.1", port), timeout=5)
        read_until(b, b"welcome, guest")
        read_until(a, b"joined")
        a.sendall(b"/nick alice\n")
        read_until(b, b"is now alice")
        a.sendall(b"hello room\n")
        read_until(b, b"alice: hello room")
        b.sendall(b"/who\n")
        read_until(b, b"* here:")
        a.sendall(b"/quit\n")
        read_until(b, b"alice left")
        a.close()
        b.close()
        print("chat smoke: ok")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
