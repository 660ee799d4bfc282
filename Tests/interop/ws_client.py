"""Python `websockets` (the reference implementation) as the client of our
WebSocket server, for Tests/GreenTests/WebSocketInteropTests.swift.

    python ws_client.py ws://127.0.0.1:PORT/

Exchanges text, binary, fragmented messages (both ways), pings (both
ways) and a 70,000-byte message, then closes with 4001 "client bye"; prints
one JSON object with what came back. Exits non-zero on any error.
"""
import json
import sys

from websockets.sync.client import connect

url = sys.argv[1]
out = {}
with connect(url, compression=None, open_timeout=10, close_timeout=10) as ws:
    ws.send("hello ✓")
    out["text"] = ws.recv(10)
    ws.send(b"\x00\xff\x10")
    out["binary"] = list(ws.recv(10))
    ws.send(["frag", "mented ", "text ✓"])          # three frames, one message
    out["fragmented"] = ws.recv(10)
    ws.send([b"ab", b"cd"])
    out["fragmented_binary"] = list(ws.recv(10))
    out["pong"] = ws.ping(b"py-ping").wait(10)
    ws.send("server-fragments")                      # our server answers in 4-byte fragments
    out["server_fragments"] = ws.recv(10)
    ws.send("server-ping")                           # our server pings first, then answers
    out["after_server_ping"] = ws.recv(10)
    ws.send("x" * 70000)                             # a 64-bit length
    out["big_length"] = len(ws.recv(10))
    ws.close(4001, "client bye")
    out["close_code"] = ws.close_code
    out["close_reason"] = ws.close_reason
print(json.dumps(out), flush=True)
