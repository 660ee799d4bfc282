#!/usr/bin/env bash
# crawl-peers.sh: the crawler against a real web server. Generates a static
# site (Benchmarks/peers/crawl/make_site.py, 600 pages by default), serves
# it with nginx on loopback, and crawls it three ways:
#   * the reference crawler (Python's html.parser and urllib, one page at a
#     time: slow and careful),
#   * the same crawler on gevent with 100 greenlets,
#   * swift-green's crawl with concurrency 100, parsing on the hub
#     (--parse-threads 0, the default) and on one more thread
#     (--parse-threads 1: Swift has no GIL, so a second core parses).
# Checks that crawl fetched exactly the reference's URL set, and prints the
# times and the gevent / swift-green ratios (medians of --rounds runs, the
# runs interleaved, each crawl timed by itself from its first request).
#
#   Benchmarks/peers/crawl-peers.sh [--pages N] [--rounds N]
#
# Installs nginx (Debian), and gevent in a virtual environment, if missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/Benchmarks/peers"
pages=600
rounds=3
die() { echo "crawl-peers: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --pages) pages=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done

if ! command -v nginx >/dev/null; then
  [ "$(id -u)" = 0 ] || die "nginx missing; run: sudo apt-get update && sudo apt-get install -y nginx-light"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
venv=/tmp/swift-green-peers-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import gevent' 2>/dev/null; then
  echo "installing gevent into $venv" >&2
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q gevent; } >&2 || die "installing gevent failed"
fi
(cd "$repo" && swift build -c release --product crawl >&2) || die "building crawl failed"

work=$(mktemp -d /tmp/crawl-peers.XXXXXX)
nginx_pid=""
cleanup() { [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
chmod 755 "$work"
python3 "$here/crawl/make_site.py" "$work/site" "$pages"
chmod -R a+rX "$work/site"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/html;
  server {
    listen 127.0.0.1:$port;
    root $work/site;
    index index.html;
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && break
  sleep 0.05
done
start="http://127.0.0.1:$port/"

python3 "$here/crawl/reference_crawl.py" "$start" >"$work/reference.txt" 2>"$work/reference.err"
sort -u "$work/reference.txt" >"$work/reference.sorted"
echo "reference crawler: $(wc -l <"$work/reference.sorted") URLs, $(sed 's/seconds //' "$work/reference.err") s" >&2

for ((r = 1; r <= rounds; r++)); do
  "$venv/bin/python" "$here/crawl/reference_crawl.py" "$start" --gevent >"$work/gevent.$r.txt" 2>"$work/gevent.$r.err"
  sed 's/seconds //' "$work/gevent.$r.err" >"$work/gevent.$r.seconds"
  # Exit status 2 means some URLs failed (the site's planted 404s).
  for threads in 0 1; do
    run="crawl.$r.t$threads"
    # Exit status 2 means some URLs failed (the site's planted 404s).
    "$repo/.build/release/crawl" "$start" --concurrency 100 --parse-threads $threads --output "$work/$run.jsonl" \
      >"$work/$run.out" 2>"$work/$run.err" || [ $? = 2 ] || die "crawl failed: $(cat "$work/$run.err")"
    sed -n 's/.*errors, \([0-9.]*\) s,.*/\1/p' "$work/$run.out" >"$work/$run.seconds"
  done
  echo "round $r: gevent $(cat "$work/gevent.$r.seconds") s, swift-green $(cat "$work/crawl.$r.t0.seconds") s," \
       "with a parse thread $(cat "$work/crawl.$r.t1.seconds") s" >&2
done
sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$work/crawl.1.t0.jsonl" | sort -u >"$work/crawl.sorted"
sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$work/crawl.1.t1.jsonl" | sort -u >"$work/crawl.t1.sorted"
sort -u "$work/gevent.1.txt" >"$work/gevent.sorted"

python3 - "$work" "$rounds" <<'PY'
import statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
ref = open(f"{work}/reference.sorted").read().split()
ours = open(f"{work}/crawl.sorted").read().split()
ours1 = open(f"{work}/crawl.t1.sorted").read().split()
gev = open(f"{work}/gevent.sorted").read().split()
def secs(name):
    path = (lambda r: f"{work}/gevent.{r}.seconds") if name == "gevent" else (lambda r: f"{work}/crawl.{r}.{name}.seconds")
    return [float(open(path(r)).read()) for r in range(1, rounds + 1)]
gs, s0, s1 = secs("gevent"), secs("t0"), secs("t1")
g, s, t = statistics.median(gs), statistics.median(s0), statistics.median(s1)
print(f"reference URLs {len(ref)}; swift-green found {len(ours)} (with a parse thread {len(ours1)}); gevent found {len(gev)}")
ok = set(ours) == set(ref) and set(ours1) == set(ref)
missing, extra = sorted(set(ref) - set(ours)), sorted(set(ours) - set(ref))
print("swift-green's URL set equals the reference's" if ok
      else f"DIFFERENT: missing {missing[:5]} extra {extra[:5]}")
ratios = lambda xs: ", ".join(f"{a / b:.1f}" for a, b in zip(gs, xs))
print(f"gevent crawler {g:.3f} s; swift-green {s:.3f} s on the hub, {t:.3f} s with a parse thread (medians of {rounds})")
print(f"swift-green {g / s:.1f}x faster on the hub (rounds: {ratios(s0)}), "
      f"{g / t:.1f}x with a parse thread (rounds: {ratios(s1)})")
sys.exit(0 if ok else 1)
PY
