#!/usr/bin/env bash
# ws-peers.sh: the WebSocket echo workload on swift-green (ws-echo --port,
# one hub) and on Hummingbird (hummingbird 2.28.1 + hummingbird-websocket
# 2.8.1, Benchmarks/peers/hummingbird-ws, SwiftNIO's default event loop
# group), both loaded by the same client (ws-echo --connect: 100
# connections, 64-byte binary messages, each waiting for its echo), one
# after another, in one run.
#
#   Benchmarks/peers/ws-peers.sh [--messages N] [--rounds R] [--no-build]
#
# Builds both servers in release mode (the peer under .build-hbws, ours
# under .build-release-ws; --no-build uses what is there). Each figure is the median over the rounds;
# the order of the servers alternates each round. On this 2-core machine
# the client shares the cores with the server.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

messages=2000
rounds=5
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) messages=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --no-build) build=0 ;;
    -h|--help) show_help 15 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done

build_swift_pair ws-echo .build-release-ws hummingbird-ws .build-hbws HBWSEcho "the Hummingbird peer"
wsecho=$ours hbws=$peer

work=$(mktemp -d /tmp/ws-peers.XXXXXX)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Starts a server (its command line), waits for "listening on HOST:PORT",
# runs the client against it, prints messages/s.
measure() {
  "$@" > "$work/server.out" 2>&1 &
  server=$!
  for _ in $(seq 1 200); do
    grep -q "listening on" "$work/server.out" 2>/dev/null && break
    sleep 0.05
  done
  port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$work/server.out" | head -1)
  [ -n "$port" ] || die "no port from: $(cat "$work/server.out")"
  out=$("$wsecho" --connect "ws://127.0.0.1:$port/" --connections 100 --size 64 --messages "$messages" --json)
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  echo "$out" | sed -n 's/.*"messages_per_s": \([0-9]*\).*/\1/p'
}

: > "$work/green"; : > "$work/hb"
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then
    measure "$wsecho" --port 0 >> "$work/green"
    measure "$hbws" 0 >> "$work/hb"
  else
    measure "$hbws" 0 >> "$work/hb"
    measure "$wsecho" --port 0 >> "$work/green"
  fi
  echo "ws-peers: round $r: swift-green $(tail -1 "$work/green"), hummingbird $(tail -1 "$work/hb") messages/s" >&2
done
green=$(median < "$work/green")
hb=$(median < "$work/hb")
echo "ws_echo_msgs_per_s (100 connections, 64 B, $messages messages each, median of $rounds rounds)"
printf '  %-34s %10s\n' "swift-green ws-echo (1 hub)" "$green"
printf '  %-34s %10s\n' "hummingbird-websocket 2.8.1" "$hb"
awk -v g="$green" -v h="$hb" 'BEGIN { printf "  swift-green / hummingbird: %.2f\n", g / h }'
