#!/usr/bin/env bash
# http-transfer.sh: a large download and a large upload through http-get,
# beside curl on the same file in the same run.
#
#   Benchmarks/http-transfer.sh [--size-mb N] [--rounds N]
#
# Download: nginx (Debian's nginx-light) on loopback serves an N MiB file
# of random bytes (default 1024); `curl -o` and `http-get -o` fetch it in
# turn, ROUNDS times (default 3), each timed with GNU time (wall seconds
# and peak RSS). Upload: `http-hello --upload-sink` (GreenHTTP's server, a
# streaming handler that hashes the body with SHA-256 as it arrives) takes
# the same file from `curl -T FILE` (a PUT read as it goes) and `http-get -X PUT --data
# @FILE`; the server's own peak RSS (VmHWM) is read at the end. Every
# downloaded file and every upload's answered digest is checked against
# the file's SHA-256. Prints the medians, the ratio http-get / curl, and
# whether each side stayed under 64 MiB of RSS.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
size_mb=1024
rounds=3
die() { echo "http-transfer: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) size_mb=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
for tool in /usr/sbin/nginx curl /usr/bin/time sha256sum python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (make deps installs nginx-light, curl and time)"
done
get=$repo/.build/release/http-get
hello=$repo/.build/release/http-hello
if [ ! -x "$get" ] || [ ! -x "$hello" ]; then
  (cd "$repo" && swift build -c release --product http-get >&2 && swift build -c release --product http-hello >&2)
fi

work=$(mktemp -d /tmp/http-transfer.XXXXXX)
nginx_pid=""
hello_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  [ -n "$hello_pid" ] && kill "$hello_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "http-transfer: making a $size_mb MiB file" >&2
mkdir -p "$work/www" "$work/nginx/logs" "$work/nginx/tmp"
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$work/www/big.bin"
want=$(sha256sum "$work/www/big.bin" | cut -d' ' -f1)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
nginx_port=$(free_port)
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $work/nginx/tmp;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
  }
}
CONF
/usr/sbin/nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!
hello_port=$(free_port)
"$hello" --port "$hello_port" --upload-sink >"$work/hello.out" 2>&1 &
hello_pid=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" 2>/dev/null && grep -q listening "$work/hello.out" && break
  sleep 0.05
done
url="http://127.0.0.1:$nginx_port/big.bin"
upload="http://127.0.0.1:$hello_port/upload"

# timed NAME CMD...: runs CMD under GNU time; appends "seconds rss_kib" to $work/NAME.
timed() {
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >"$work/out.txt" 2>"$work/err.txt" ||
    die "$name failed: $(tail -n 3 "$work/err.txt")"
  cat "$work/time.txt" >>"$work/$name"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }

echo "http-transfer: $rounds round(s); download from nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*: //'), upload to http-hello --upload-sink; $(curl --version | head -1 | cut -d' ' -f1-2)" >&2
for r in $(seq 1 "$rounds"); do
  # The order alternates, so that neither always goes first.
  for who in $( [ $((r % 2)) = 1 ] && echo "curl ours" || echo "ours curl"); do
    rm -f "$work/down.bin"
    if [ "$who" = curl ]; then
      timed down.curl curl -s -S -o "$work/down.bin" "$url"
    else
      timed down.ours "$get" -o "$work/down.bin" "$url"
    fi
    if [ "$r" = 1 ]; then
      got=$(sha256sum "$work/down.bin" | cut -d' ' -f1)
      [ "$got" = "$want" ] || die "$who's download has SHA-256 $got, not $want"
    fi
    rm -f "$work/down.bin"
    if [ "$who" = curl ]; then
      timed up.curl curl -s -S -T "$work/www/big.bin" "$upload"
    else
      timed up.ours "$get" -X PUT --data "@$work/www/big.bin" "$upload"
    fi
    answer=$(cat "$work/out.txt")
    [ "$answer" = "$want $((size_mb * 1024 * 1024))" ] || die "$who's upload was hashed as '$answer', not '$want'"
  done
done
server_rss=$(awk '/VmHWM/ {print $2}' "/proc/$hello_pid/status")

report() {  # WHAT FILE-OURS FILE-CURL
  local ours_s curl_s ours_rss curl_rss
  ours_s=$(cut -d' ' -f1 "$work/$2" | median)
  curl_s=$(cut -d' ' -f1 "$work/$3" | median)
  ours_rss=$(cut -d' ' -f2 "$work/$2" | sort -n | tail -1)
  curl_rss=$(cut -d' ' -f2 "$work/$3" | sort -n | tail -1)
  awk -v what="$1" -v mb="$size_mb" -v os="$ours_s" -v cs="$curl_s" -v orss="$ours_rss" -v crss="$curl_rss" 'BEGIN {
    printf "%-9s http-get %6.2f s (%5.0f MB/s, peak RSS %5.1f MiB)   curl %6.2f s (%5.0f MB/s, peak RSS %5.1f MiB)   time ratio %.2f\n",
      what, os, mb * 1.048576 / os, orss / 1024, cs, mb * 1.048576 / cs, crss / 1024, os / cs }'
  [ "$ours_rss" -lt $((64 * 1024)) ] && echo "  http-get under 64 MiB: yes" || echo "  http-get under 64 MiB: NO ($ours_rss KiB)"
}
echo "http-transfer: $size_mb MiB, medians of $rounds, SHA-256 checked"
report download down.ours down.curl
report upload up.ours up.curl
awk -v rss="$server_rss" 'BEGIN { printf "upload server (http-hello --upload-sink, every upload above): peak RSS %.1f MiB, %s\n",
  rss / 1024, (rss < 64 * 1024 ? "under 64 MiB" : "OVER 64 MiB") }'
