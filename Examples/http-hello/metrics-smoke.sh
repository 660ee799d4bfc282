#!/bin/sh
# http-hello --metrics on loopback (two workers): /metrics answers in
# Prometheus' text format with the runtime's figures of every hub (the
# workers' and the main thread's).
#   Examples/http-hello/metrics-smoke.sh ./.build/release/http-hello
set -eu
bin=${1:?usage: metrics-smoke.sh PATH-TO-http-hello}
dir=$(mktemp -d /tmp/http-hello-metrics.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
"$bin" --port 0 --workers 2 --metrics >"$dir/out" 2>&1 &
pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/^listening on .*:\([0-9]*\) .*/\1/p' "$dir/out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "http-hello did not start"; cat "$dir/out"; exit 1; }
fail() { echo "metrics-smoke: $1"; cat "$dir/metrics"; exit 1; }
curl -fsS "http://127.0.0.1:$port/" >/dev/null
curl -fsS -D "$dir/headers" "http://127.0.0.1:$port/metrics" >"$dir/metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$dir/headers" || fail "no Prometheus content type: $(cat "$dir/headers")"
grep -q '^# TYPE green_greenlets_spawned_total counter' "$dir/metrics" || fail "no green_greenlets_spawned_total"
for name in green_greenlets_alive green_greenlets_parked green_stacks_in_use green_stacks_pooled \
            green_compact_image_bytes green_fds_watched green_hub_incidents_total; do
  grep -q "^$name{hub=\"[0-9]*\"} [0-9.e+]*$" "$dir/metrics" || fail "no $name line"
done
# Every hub (two workers at least), each worker watching its listener,
# and the scrape itself a greenlet alive on one of them.
hubs=$(grep -c '^green_greenlets_alive{' "$dir/metrics")
[ "$hubs" -ge 2 ] || fail "fewer than two hubs"
[ "$(grep -c '^green_fds_watched{hub="[0-9]*"} [1-9]' "$dir/metrics")" -ge 2 ] || fail "workers watch no fd"
grep -q '^green_greenlets_alive{hub="[0-9]*"} [1-9]' "$dir/metrics" || fail "no greenlet alive during the scrape"
echo "http-hello --metrics: $(grep -c '^green_' "$dir/metrics") green_ lines from $hubs hubs"
