#!/usr/bin/env bash
# make demo-distributed: one crawl shared by several crawl processes
# through Redis, all on loopback: a redis-server, the demo site served by
# a process of its own, and PROCESSES crawlers (2 by default) that share
# its frontier. Prints each process's summary and the crawl's, and checks
# that every URL was recorded exactly once. The JSON lines stay in
# .build/demo-distributed/.
set -euo pipefail
cd "$(dirname "$0")/../.."
CRAWL=${CRAWL:-.build/release/crawl}
PROCESSES=${PROCESSES:-2}
PAGES=${PAGES:-3000}
. Examples/crawl/shared-crawl.sh

work=.build/demo-distributed
rm -rf "$work"
mkdir -p "$work"
trap stop_background EXIT

start_redis "$work"
# The slow page (2 s) outlives the crawlers' 1 s timeout: a planted error.
start_demo_site "$CRAWL" --demo-pages "$PAGES" --demo-latency 0.005 --demo-slow 2
frontier="redis://127.0.0.1:$REDIS_PORT/0"
echo "redis-server on 127.0.0.1:$REDIS_PORT, demo site at $SITE_URL, $PROCESSES crawl processes"

pids=""
for i in $(seq 1 "$PROCESSES"); do
  "$CRAWL" "$SITE_URL" --frontier "$frontier" --crawl-id demo --await-processes "$PROCESSES" \
    --timeout 1 --parse-threads 0 --output "$work/crawl-$i.jsonl" >"$work/summary-$i.txt" 2>&1 &
  pids="$pids $!"
  BACKGROUND_PIDS="$BACKGROUND_PIDS $!"
done
failed=0
i=0
for pid in $pids; do
  i=$((i + 1))
  # Status 2: the crawl met errors (the site's planted ones).
  rc=0
  wait "$pid" || rc=$?
  echo "process $i: $(tail -1 "$work/summary-$i.txt" | sed 's/; crawl ".*//')"
  if [ "$rc" != 0 ] && [ "$rc" != 2 ]; then cat "$work/summary-$i.txt"; failed=1; fi
done
# Exit status 3: the crawl is unfinished (checked below).
"$CRAWL" --frontier "$frontier" --crawl-id demo --report >"$work/report.txt" || true
cat "$work/report.txt"

records=$(cat "$work"/crawl-*.jsonl 2>/dev/null | wc -l)
twice=$(cat "$work"/crawl-*.jsonl 2>/dev/null | { grep -o '"url":"[^"]*"' || true; } | sort | uniq -d | wc -l)
pages=$(sed -n 's/.*finished: \([0-9]*\) pages.*/\1/p' "$work/report.txt")
errors=$(sed -n 's/.*, \([0-9]*\) errors.*/\1/p' "$work/report.txt")
echo "expected $SITE_URLS URLs with $SITE_ERRORS planted errors; recorded $records lines, $twice URLs twice"
if [ "$failed" != 0 ] || [ "$records" != "$SITE_URLS" ] || [ "$twice" != 0 ] || [ "$pages" != "$SITE_URLS" ] \
   || [ "$errors" != "$SITE_ERRORS" ]; then
  echo "demo-distributed: the shared crawl is not what the site expects" >&2
  exit 1
fi
