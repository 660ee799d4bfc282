# Helpers for the shared-crawl scripts (sourced, not run): a redis-server
# and the demo site, each in the background on loopback, stopped by
# stop_background on exit.
#
#   start_redis DIR         sets REDIS_PORT (the first free port from 16379)
#   start_demo_site ARGS... sets SITE_URL, SITE_URLS, SITE_ERRORS
#   crawl_rate FILE         the "pages/s combined" figure of a summary line

BACKGROUND_PIDS=""

stop_background() {
  for pid in $BACKGROUND_PIDS; do kill "$pid" 2>/dev/null || true; done
  for pid in $BACKGROUND_PIDS; do wait "$pid" 2>/dev/null || true; done
  BACKGROUND_PIDS=""
}

start_redis() {
  local dir=$1 port pid i
  command -v redis-server >/dev/null || { echo "redis-server not found: run make deps" >&2; return 1; }
  for port in $(seq 16379 16479); do
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
      --daemonize no --protected-mode no >"$dir/redis.log" 2>&1 &
    pid=$!
    for i in $(seq 1 100); do
      # Ours answers with its own pid; one that failed to bind (the port
      # taken by another server, which may answer) exits.
      kill -0 "$pid" 2>/dev/null || break
      if redis-cli -p "$port" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$pid"; then
        BACKGROUND_PIDS="$BACKGROUND_PIDS $pid"
        REDIS_PORT=$port
        return 0
      fi
      sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo "no free port for redis-server in 16379-16479" >&2
  return 1
}

# start_demo_site CRAWL ARGS...: `CRAWL --serve-demo ARGS` in the
# background, waiting for its banner.
start_demo_site() {
  local crawl=$1 banner i
  shift
  local out
  out=$(mktemp)
  "$crawl" --serve-demo "$@" >"$out" 2>&1 &
  BACKGROUND_PIDS="$BACKGROUND_PIDS $!"
  for i in $(seq 1 200); do
    banner=$(head -1 "$out")
    [ -n "$banner" ] && break
    sleep 0.05
  done
  rm -f "$out"
  SITE_URL=$(echo "$banner" | grep -o 'http://[^ ]*') || { echo "the demo site did not start: $banner" >&2; return 1; }
  SITE_URLS=$(echo "$banner" | sed -n 's/.*records \([0-9]*\) URLs.*/\1/p')
  SITE_ERRORS=$(echo "$banner" | sed -n 's/.* with \([0-9]*\) planted errors.*/\1/p')
}

crawl_rate() {
  sed -n 's/.* \([0-9]*\) pages\/s combined.*/\1/p' "$1" | tail -1
}
