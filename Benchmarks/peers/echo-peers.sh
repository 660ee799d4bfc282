#!/usr/bin/env bash
# echo-peers.sh: the TCP echo workload (or, with --http, the HTTP hello
# workload: wrk -t2 -c100 against http-hello, Go net/http and gevent
# pywsgi; with --https, the same over TLS against http-hello and Go
# net/http, a throwaway ECDSA certificate made by openssl) on swift-green
# (1 and 2 hubs), Go
# (goroutine per connection, GOMAXPROCS=1 and 2), gevent (StreamServer) and
# plain threads (a C pthread per connection), all loaded by the same client
# (the package's echo-load: 100 connections, 64-byte messages), one after
# another, in one run.
#
#   Benchmarks/peers/echo-peers.sh [--http | --https] [--seconds S] [--rounds N]
#
# Installs what it needs: golang-go and a C compiler from Debian (as root;
# otherwise it prints the command), gevent into a virtual environment under
# /tmp. Each figure is the median over the rounds; the order of the servers
# rotates each round. On a 2-core machine the load client shares the cores
# with the server, so the 2-hub and GOMAXPROCS=2 figures show contention,
# not scaling; green-bench's cpu_echo_scaling_2hubs shows scaling.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

seconds=5
rounds=3
http=0
https=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --http) http=1 ;;
    --https) http=1; https=1 ;;
    -h|--help) show_help 16 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done

need_deb golang-go gcc python3-venv
[ "$http" = 1 ] && need_deb wrk
[ "$https" = 1 ] && need_deb openssl

work=$(mktemp -d /tmp/echo-peers.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

gevent_venv

echo "building" >&2
(cd "$repo" && for p in echo-server echo-load http-hello; do swift build -c release --product "$p" >&2 || exit 1; done) \
  || die "building the swift-green servers failed"
build_go_peer "$work/go-peer"
cc -O2 -pthread "$here/threads/echo_threads.c" -o "$work/echo-threads" || die "building echo-threads failed"

# start_server NAME CMD...: starts it, waits for "listening on HOST:PORT", sets $port.
start_server() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  server_pid=$!
  for _ in $(seq 1 200); do
    if grep -q "listening on" "$work/$name.out" 2>/dev/null; then
      port=$(sed -n 's/.*listening on [^:]*:\([0-9]*\).*/\1/p' "$work/$name.out" | head -1)
      return 0
    fi
    sleep 0.05
  done
  cat "$work/$name.err" >&2
  die "$name did not start"
}

tls_args="" go_tls_args="" scheme=http
if [ "$https" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/key.pem" \
    -out "$work/cert.pem" -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 \
    || die "openssl could not make a certificate"
  tls_args="--tls-cert $work/cert.pem --tls-key $work/key.pem"
  go_tls_args="-tls-cert $work/cert.pem -tls-key $work/key.pem"
  scheme=https
fi
if [ "$https" = 1 ]; then
  names=(swift-green-1hub swift-green-2hubs go-1 go-2)
elif [ "$http" = 1 ]; then
  names=(swift-green-1hub swift-green-2hubs go-1 go-2 gevent)
else
  names=(swift-green-1hub swift-green-2hubs go-1 go-2 gevent threads)
fi
# The servers of the workload: ours, Go's flag and gevent's script.
if [ "$http" = 1 ]; then
  ours=http-hello go_port=-http-port gevent_server=http_server.py
else
  ours=echo-server go_port=-echo-port gevent_server=echo_server.py
fi
command_for() {
  case "$1" in
    swift-green-1hub) echo "$repo/.build/release/$ours --port 0 --workers 1 $tls_args" ;;
    swift-green-2hubs) echo "$repo/.build/release/$ours --port 0 --workers 2 $tls_args" ;;
    go-1) echo "$work/go-peer $go_port 0 -echo-procs 1 $go_tls_args" ;;
    go-2) echo "$work/go-peer $go_port 0 -echo-procs 2 $go_tls_args" ;;
    gevent) echo "$venv/bin/python $here/gevent/$gevent_server --port 0" ;;
    threads) echo "$work/echo-threads 0" ;;
  esac
}

for ((r = 1; r <= rounds; r++)); do
  for ((i = 0; i < ${#names[@]}; i++)); do
    name=${names[$(((i + r - 1) % ${#names[@]}))]}
    # shellcheck disable=SC2046
    start_server "$name" $(command_for "$name")
    printf 'round %d/%d: %-18s' "$r" "$rounds" "$name" >&2
    if [ "$http" = 1 ]; then
      wrk -t2 -c100 -d"${seconds}s" "$scheme://127.0.0.1:$port/" >"$work/$name.$r.wrk" || die "wrk against $name failed"
      rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$work/$name.$r.wrk")
      echo "{\"roundtrips_per_s\": ${rate%.*}}" >"$work/$name.$r.json"
    else
      "$repo/.build/release/echo-load" --port "$port" --seconds "$seconds" --json >"$work/$name.$r.json" \
        || die "echo-load against $name failed"
    fi
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
    sed -n 's/.*"roundtrips_per_s": \([0-9]*\).*/ \1/p' "$work/$name.$r.json" >&2
  done
done

echo
if [ "$https" = 1 ]; then
  echo "HTTPS hello (TLS, keep-alive), wrk -t2 -c100 -d${seconds}s (requests/s); median of $rounds round(s)"
elif [ "$http" = 1 ]; then
  echo "HTTP hello, wrk -t2 -c100 -d${seconds}s (requests/s); median of $rounds round(s)"
else
  echo "TCP echo, 100 connections, 64-byte messages, echo-load for ${seconds} s; median of $rounds round(s)"
fi
python3 - "$work" "$rounds" "${names[@]}" <<'PY'
import json, statistics, sys
work, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
med = {n: statistics.median(json.load(open(f"{work}/{n}.{r}.json"))["roundtrips_per_s"]
                            for r in range(1, rounds + 1)) for n in names}
base = med["swift-green-1hub"]
print(f"| server | per second | swift-green 1 hub / server |")
print(f"|---|---:|---:|")
for n in names:
    print(f"| {n} | {int(med[n]):,} | {base / med[n]:.2f} |")
PY
