"""Python `websockets` (the reference implementation) as the server our
WebSocket client talks to, for Tests/GreenTests/WebSocketInteropTests.swift.

    python ws_server.py

Prints "listening on PORT", then serves on 127.0.0.1: echoes messages,
except "fragment-me" (answered with a fragmented text message and a
fragmented binary one), "ping-me" (pings, waits for the pong, answers
"pong-ok" or "pong-missing") and "close-me" (closes with 4002 "server
bye"). After each connection, prints one JSON line with the close code and
reason it ended with.
"""
import json

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve


def handler(ws):
    try:
        serve_one(ws)
    except ConnectionClosed:
        pass   # a close code other than 1000/1001 ends the loop this way
    print(json.dumps({"close_code": ws.close_code, "close_reason": ws.close_reason}), flush=True)


def serve_one(ws):
    for message in ws:
        if message == "fragment-me":
            ws.send(["frag", "mented ", "reply ✓"])
            ws.send([b"\x00\x01", b"\x02"])
        elif message == "ping-me":
            ws.send("pong-ok" if ws.ping(b"py-ping").wait(10) else "pong-missing")
        elif message == "close-me":
            ws.close(4002, "server bye")
            break
        else:
            ws.send(message)


with serve(handler, "127.0.0.1", 0, compression=None) as server:
    print("listening on", server.socket.getsockname()[1], flush=True)
    server.serve_forever()
