#!/usr/bin/env bash
# make bench-distributed: does a crawl shared through Redis scale with its
# processes? The demo site serves pages padded with PAGE_BYTES of markup,
# so that parsing them is the crawl's cost (CPU-bound); one crawl process
# (parse threads 0: one core) and then two take the whole site through
# the same Redis frontier, alternating, ROUNDS times each. Prints the
# median "pages/s combined" of each (from the crawl's own summary line)
# and their ratio, plus a crawl without Redis as a reference.
#
#   ROUNDS=3 PAGES=600 PAGE_BYTES=100000 Benchmarks/distributed-crawl.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CRAWL=${CRAWL:-.build/release/crawl}
ROUNDS=${ROUNDS:-3}
PAGES=${PAGES:-600}
PAGE_BYTES=${PAGE_BYTES:-100000}
. Examples/crawl/shared-crawl.sh

work=$(mktemp -d)
trap 'stop_background; rm -rf "$work"' EXIT
start_redis "$work"
start_demo_site "$CRAWL" --demo-pages "$PAGES" --demo-page-bytes "$PAGE_BYTES" --demo-slow 0.2
frontier="redis://127.0.0.1:$REDIS_PORT/0"
common=(--frontier "$frontier" --timeout 5 --parse-threads 0 --concurrency 20)

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

one=() two=() plain=()
for round in $(seq 1 "$ROUNDS"); do
  "$CRAWL" "$SITE_URL" "${common[@]}" --crawl-id "one-$round" --output /dev/null >"$work/one.txt" 2>&1 || true
  one+=("$(crawl_rate "$work/one.txt")")
  "$CRAWL" "$SITE_URL" "${common[@]}" --crawl-id "two-$round" --await-processes 2 --output /dev/null \
    >"$work/two-a.txt" 2>&1 &
  first=$!
  "$CRAWL" "$SITE_URL" "${common[@]}" --crawl-id "two-$round" --await-processes 2 --output /dev/null \
    >"$work/two-b.txt" 2>&1 || true
  wait "$first" || true
  two+=("$(crawl_rate "$work/two-b.txt")")
  "$CRAWL" "$SITE_URL" --timeout 5 --parse-threads 0 --concurrency 20 --output /dev/null >"$work/plain.txt" 2>&1 || true
  plain+=("$(sed -n 's/.* \([0-9]*\) pages\/s$/\1/p' "$work/plain.txt" | tail -1)")
  echo "round $round: 1 process ${one[-1]} pages/s, 2 processes ${two[-1]} pages/s, without Redis ${plain[-1]} pages/s"
done
m1=$(printf '%s\n' "${one[@]}" | median)
m2=$(printf '%s\n' "${two[@]}" | median)
mp=$(printf '%s\n' "${plain[@]}" | median)
echo "distributed_crawl_1_process_pages_per_s $m1"
echo "distributed_crawl_2_processes_pages_per_s $m2"
echo "crawl_without_redis_pages_per_s $mp"
awk -v a="$m2" -v b="$m1" 'BEGIN { printf "distributed_crawl_speedup_2_over_1 %.2f\n", a / b }'
