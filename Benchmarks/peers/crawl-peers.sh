#!/usr/bin/env bash
# crawl-peers.sh: our crawler against a gevent crawler and Scrapy, in one
# run, on a real documentation site (Debian's python3-doc: 530 HTML pages,
# about 96 KB each) served by nginx on loopback, gzipped, keep-alive.
#
#   Benchmarks/peers/crawl-peers.sh
#
# Environment (defaults in brackets):
#   CRAWL        our crawl binary [.build/release/crawl; a relative path is
#                taken from the current folder, else from the repository]
#   SITE_ROOT    the site's folder [/usr/share/doc/python3.11/html]
#   START_PATH   where the crawls start [/index.html]
#   CONCURRENCY  requests in flight, the same for all three [50]
#   ROUNDS       timed rounds, each crawler once per round [3]
#   TIMEOUT      seconds a crawler may run before it is killed [300]
#   VENV         the Python virtual environment [.build-peers/venv]
#   NGINX_WORKERS  nginx worker processes [1]
#   QUIET_WAIT   seconds to wait, before each timed run, for other processes
#                to leave the cores alone (0: no wait) [30]
#   KEEP_WORK=1  keep the work folder (URL lists, logs) and print its path
#
# What runs:
#   * nginx (/usr/sbin/nginx, Debian's nginx-light) as a child of this
#     script, not a daemon, with its own configuration and prefix in a
#     temporary folder, on a free port of 127.0.0.1; root = SITE_ROOT; gzip
#     on for HTML, CSS, JavaScript and text; keep-alive; no access log.
#     No robots.txt unless the site has one (404).
#   * a virtual environment with gevent, Scrapy, requests and html5lib from
#     PyPI (made once, reused; the versions are printed).
#   * the reference crawler (crawlers/reference_crawl.py): sequential, one
#     request at a time, html5lib. Not wget: wget also follows <link>,
#     <img> and <script> (stylesheets, icons, opensearch.xml, scripts),
#     which none of the crawlers compared here fetch, so its set would
#     differ by design. html5lib implements the HTML5 parsing algorithm and
#     is used by none of the timed crawlers (gevent's: html.parser;
#     Scrapy's: lxml; ours: libxml2, earlier gumbo), so no parser quirk is
#     shared with the reference. It takes about a minute (pure Python).
#     It gives two sets: the <a href> rule the peers follow, and our
#     crawler's rule (<a href>, <area href>, <iframe src>, <frame src>,
#     minus rel=nofollow links and pages whose robots meta says nofollow):
#     the intended difference, printed (none on the python docs: their
#     nofollow links all lead off the host, and they have no area, iframe
#     or frame).
#   * ROUNDS rounds, the order of the three rotating each round:
#       ours:   $CRAWL START --concurrency N --max-pages 100000 --output F
#       gevent: crawlers/gevent_crawl.py (monkey-patched requests, N greenlets)
#       scrapy: crawlers/scrapy_crawl.py (CrawlSpider, CrawlerProcess)
#     Each is timed from its start to its exit (wall), with its user and
#     sys CPU (children included) and nginx's CPU meanwhile. All three
#     obey robots.txt (one request each).
#
# Output: each crawler's page set against the reference's (counts, the
# symmetric differences, examples), the medians, and the ratios ours /
# gevent and ours / scrapy (the target: at most 1/10 and 1/20 of wall
# time). Exit status 1 when our crawler's page set differs from the
# reference's in any round, 3 when only a peer's does; other failures
# (a crawler failing or timing out) stop the script with status 1.
set -euo pipefail
export LC_NUMERIC=C

repo=$(cd "$(dirname "$0")/../.." && pwd)
crawlers="$repo/Benchmarks/peers/crawlers"

die() { echo "crawl-peers: $*" >&2; exit 1; }
case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "no arguments; settings come from the environment (see --help)" ;;
esac

CRAWL=${CRAWL:-.build/release/crawl}
SITE_ROOT=${SITE_ROOT:-/usr/share/doc/python3.11/html}
START_PATH=${START_PATH:-/index.html}
CONCURRENCY=${CONCURRENCY:-50}
ROUNDS=${ROUNDS:-3}
TIMEOUT=${TIMEOUT:-300}
VENV=${VENV:-$repo/.build-peers/venv}
NGINX_WORKERS=${NGINX_WORKERS:-1}
KEEP_WORK=${KEEP_WORK:-0}
QUIET_WAIT=${QUIET_WAIT:-30}
NGINX=/usr/sbin/nginx

for v in CONCURRENCY ROUNDS TIMEOUT; do
  case "${!v}" in ''|*[!0-9]*|0) die "$v must be a positive integer" ;; esac
done
case "$QUIET_WAIT" in ''|*[!0-9]*) die "QUIET_WAIT must be a number of seconds" ;; esac
if [ "${CRAWL#/}" = "$CRAWL" ] && [ ! -e "$CRAWL" ] && [ -e "$repo/$CRAWL" ]; then CRAWL="$repo/$CRAWL"; fi
[ -x "$CRAWL" ] || die "no crawl binary at $CRAWL; build one: swift build -c release --product crawl (or set CRAWL)"
CRAWL=$(cd "$(dirname "$CRAWL")" && pwd)/$(basename "$CRAWL")
[ -f "$SITE_ROOT${START_PATH}" ] || die "no $SITE_ROOT$START_PATH; install the site: apt-get install -y python3-doc (or set SITE_ROOT)"

# --- what the script needs --------------------------------------------------

if [ ! -x "$NGINX" ]; then
  [ "$(id -u)" = 0 ] || die "nginx missing; run: sudo apt-get update && sudo apt-get install -y nginx-light"
  echo "crawl-peers: apt-get install -y nginx-light" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; } >&2 \
    || die "apt-get install nginx-light failed"
fi
command -v python3 >/dev/null || die "python3 missing; run: apt-get install -y python3 python3-venv"
command -v timeout >/dev/null || die "timeout (coreutils) missing"
py="$VENV/bin/python"
if [ ! -x "$py" ] || ! "$py" -c 'import gevent, scrapy, requests, html5lib' 2>/dev/null; then
  echo "crawl-peers: python3 -m venv $VENV && $VENV/bin/pip install gevent scrapy requests html5lib" >&2
  mkdir -p "$(dirname "$VENV")"
  { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q gevent scrapy requests html5lib; } >&2 \
    || die "making the virtual environment failed (apt-get install -y python3-venv?)"
fi

# --- cleanup: every process this script starts -------------------------------

work=$(mktemp -d /tmp/crawl-peers.XXXXXX)
chmod 755 "$work"   # nginx's workers run as nobody
nginx_pid=""
child_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$child_pid" ]; then
    # timeout(1) leads a process group of its own: it and the crawler.
    kill -TERM -- "-$child_pid" 2>/dev/null || kill -TERM "$child_pid" 2>/dev/null || true
    wait "$child_pid" 2>/dev/null || true
  fi
  if [ -n "$nginx_pid" ]; then
    kill -TERM "$nginx_pid" 2>/dev/null || true   # the master stops its workers
    wait "$nginx_pid" 2>/dev/null || true
  fi
  if [ "$KEEP_WORK" = 1 ]; then echo "crawl-peers: work folder kept: $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- nginx --------------------------------------------------------------------

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
start_nginx() {
  local port=$1 n=$work/nginx
  mkdir -p "$n/logs" "$n/tmp"
  cat >"$n/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
pid $n/nginx.pid;
error_log $n/logs/error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  charset utf-8;
  access_log off;
  log_not_found off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  keepalive_requests 100000;
  # text/html is always compressed when gzip is on (listing it again warns).
  gzip on;
  gzip_types text/css application/javascript text/plain;
  client_body_temp_path $n/tmp/body;
  proxy_temp_path $n/tmp/proxy;
  fastcgi_temp_path $n/tmp/fastcgi;
  uwsgi_temp_path $n/tmp/uwsgi;
  scgi_temp_path $n/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    server_name localhost;
    root $SITE_ROOT;
    index index.html;
  }
}
CONF
  "$NGINX" -p "$n/" -c "$n/nginx.conf" -e "$n/logs/error.log" &
  nginx_pid=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$nginx_pid" 2>/dev/null; then
      wait "$nginx_pid" 2>/dev/null || true
      nginx_pid=""
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}
port=""
for _ in 1 2 3 4 5; do
  p=$(free_port)
  if start_nginx "$p"; then port=$p; break; fi
done
[ -n "$port" ] || die "nginx did not start: $(tail -n 5 "$work/nginx/logs/error.log" 2>/dev/null)"
start="http://127.0.0.1:$port$START_PATH"

# nginx's CPU so far (master and workers), in seconds.
clk_tck=$(getconf CLK_TCK)
server_cpu() {
  local pids=$nginx_pid p stat total=0 f
  pids="$pids $(cat "/proc/$nginx_pid/task/$nginx_pid/children" 2>/dev/null || true)"
  for p in $pids; do
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    # shellcheck disable=SC2206
    f=(${stat##*) })   # the fields after "(comm) ": [11] utime, [12] stime
    total=$((total + f[11] + f[12]))
  done
  echo "$total $clk_tck" | awk '{ printf "%.3f", $1 / $2 }'
}

# The machine's busy CPU so far (user, nice, system, irq, softirq of all
# cores), in seconds: what neither the crawler nor nginx used of it during a
# run was used by other processes, and disturbed the timing.
machine_cpu() {
  awk -v t="$clk_tck" '/^cpu / { printf "%.3f", ($2 + $3 + $4 + $7 + $8) / t }' /proc/stat
}

# --- what runs ------------------------------------------------------------------

versions=$("$py" - <<'PY'
import importlib.metadata as m, platform
print("python " + platform.python_version() + ", " + ", ".join(
    f"{p} {m.version(p)}" for p in ("gevent", "greenlet", "requests", "urllib3", "Scrapy", "Twisted", "lxml", "html5lib")))
PY
)
echo "crawl-peers: site $SITE_ROOT ($(find "$SITE_ROOT" -name '*.html' | wc -l) HTML files," \
     "$(du -sh --apparent-size "$SITE_ROOT" | cut -f1)) on $($NGINX -v 2>&1 | sed 's/.*: //')," \
     "$NGINX_WORKERS worker(s), $start" >&2
echo "crawl-peers: ours $CRAWL ($(date -r "$CRAWL" '+%F %T')); $versions" >&2
echo "crawl-peers: concurrency $CONCURRENCY, $ROUNDS round(s), $(nproc) cores, timeout $TIMEOUT s per crawl" >&2

# bounded OUT ERR CMD...: runs CMD for at most TIMEOUT seconds (then TERM,
# and KILL 5 s later), in the background so that a signal to this script
# runs its cleanup at once; returns CMD's exit status (124: timed out).
bounded() {
  local out=$1 err=$2 rc=0
  shift 2
  timeout -k 5 "$TIMEOUT" "$@" >"$out" 2>"$err" &
  child_pid=$!
  wait "$child_pid" || rc=$?
  child_pid=""
  return "$rc"
}

# The reference (also warms the page cache and nginx before the timed runs).
echo "crawl-peers: reference crawl (sequential, html5lib; about a minute)" >&2
bounded "$work/reference.out" "$work/reference.err" \
  "$py" "$crawlers/reference_crawl.py" "$start" "$work/reference.a.txt" "$work/reference.ours.txt" ||
  die "the reference crawler failed (exit status $?): $(tail -n 5 "$work/reference.err")"
sed 's/^/  /' "$work/reference.err" >&2

# children_cpu FILE: user and sys seconds of this shell's reaped children,
# from the second line of `times` ("0m1.234s 0m0.567s"). `times` runs here,
# not in a $(...) subshell, whose children's times would start at zero.
children_cpu() {
  times >"$1"
  sed -n 2p "$1" | awk '{ for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); printf "%.3f ", t[1] * 60 + t[2] }; printf "\n" }' >"$1.s"
}

# wait_quiet: waits, up to QUIET_WAIT seconds, until the machine's other
# processes use less than a tenth of a core over a second (a build beside
# the benchmark would take a core from the crawlers); then runs anyway.
wait_quiet() {
  local waited=0 a b
  [ "$QUIET_WAIT" -gt 0 ] || return 0
  while :; do
    a=$(machine_cpu); sleep 1; b=$(machine_cpu)
    awk -v a="$a" -v b="$b" 'BEGIN { exit !(b - a < 0.1) }' && break
    waited=$((waited + 1))
    if [ "$waited" -ge "$QUIET_WAIT" ]; then printf '(busy machine) ' >&2; return 0; fi
  done
  [ "$waited" = 0 ] || printf '(waited %d s for a quiet machine) ' "$waited" >&2
}

# run_crawler NAME ROUND: one timed run; appends to timings.tsv.
run_crawler() {
  local name=$1 round=$2 cmd rc=0 t0 t1 u0 u1 y0 y1 s0 s1 m0 m1 ok
  case "$name" in
    ours) cmd=("$CRAWL" "$start" --concurrency "$CONCURRENCY" --max-pages 100000 --output "$work/ours.$round.jsonl") ;;
    gevent) cmd=("$py" "$crawlers/gevent_crawl.py" "$start" "$work/gevent.$round.urls" --concurrency "$CONCURRENCY") ;;
    scrapy) cmd=("$py" "$crawlers/scrapy_crawl.py" "$start" "$work/scrapy.$round.urls" --concurrency "$CONCURRENCY") ;;
  esac
  printf 'round %d/%d: %-7s' "$round" "$ROUNDS" "$name" >&2
  wait_quiet
  s0=$(server_cpu)
  m0=$(machine_cpu)
  children_cpu "$work/times.0"
  t0=$EPOCHREALTIME
  bounded "$work/$name.$round.out" "$work/$name.$round.err" "${cmd[@]}" || rc=$?
  t1=$EPOCHREALTIME
  children_cpu "$work/times.1"
  m1=$(machine_cpu)
  s1=$(server_cpu)
  # crawl exits 2 when some URLs failed (the site's links to missing pages).
  ok=0
  case "$name:$rc" in ours:0|ours:2|gevent:0|scrapy:0) ok=1 ;; esac
  if [ "$ok" = 0 ]; then
    echo " FAILED (exit status $rc$([ "$rc" = 124 ] || [ "$rc" = 137 ] && echo ": timed out after $TIMEOUT s"))" >&2
    tail -n 20 "$work/$name.$round.err" >&2
    die "$name failed in round $round: ${cmd[*]}"
  fi
  read -r u0 y0 <"$work/times.0.s"
  read -r u1 y1 <"$work/times.1.s"
  # name round wall user sys nginx others status; others = the machine's
  # busy CPU less the crawler's and nginx's.
  echo "$name $round $t0 $t1 $u0 $u1 $y0 $y1 $s0 $s1 $m0 $m1 $rc" | awk '{
    u = $6 - $5; y = $8 - $7; s = $10 - $9; o = $12 - $11 - u - y - s
    printf "%s %s %.3f %.3f %.3f %.3f %.3f %s\n", $1, $2, $4 - $3, u, y, s, (o > 0 ? o : 0), $13 }' \
    >>"$work/timings.tsv"
  tail -n 1 "$work/timings.tsv" |
    awk '{ printf " %7.3f s wall, %6.2f s CPU, nginx %5.2f s, others %5.2f s\n", $3, $4 + $5, $6, $7 }' >&2
}

names=(ours gevent scrapy)
for ((r = 1; r <= ROUNDS; r++)); do
  for ((i = 0; i < ${#names[@]}; i++)); do
    run_crawler "${names[$(((i + r - 1) % ${#names[@]}))]}" "$r"
  done
done
for name in ours gevent scrapy; do
  sed "s/^/  $name round 1: /" "$work/$name.1.err" | tail -n 3 >&2
done
sed "s/^/  ours round 1: /" "$work/ours.1.out" | tail -n 1 >&2

echo
echo "Crawl of $SITE_ROOT by nginx on loopback (gzip, keep-alive), concurrency $CONCURRENCY, $(nproc) cores"
echo "ours: $CRAWL; $versions"
rc=0
"$py" "$crawlers/report.py" "$work" "$ROUNDS" || rc=$?
exit "$rc"
