#!/usr/bin/env bash
# compare-peers.sh: green-bench beside the same figures measured for Go
# goroutines (Benchmarks/peers/go) and gevent greenlets
# (Benchmarks/peers/gevent), in one run.
#
#   Benchmarks/peers/compare-peers.sh [--quick] [--rounds N] [--runs N] [--rebuild]
#                            [--swift-bench PATH]
#
# The three programs run one after another, N rounds (default 3), and the
# order rotates each round so that none always runs first on a cold machine
# or last on a warm one. Each program already reports a median of several
# runs per figure; the table shows the median of those over the rounds.
#
# Ratios are swift-green / peer: below 1 means swift-green takes less time
# or memory. max_parked_rss_bytes is the whole process's RSS, so it carries
# each runtime's baseline (a Python interpreter, the Go runtime) as well.
#
# green-bench is taken from .build/release if built there (others build in
# .build; this script never does). --rebuild, or no binary there, builds it
# into .build-peers instead. The Go peer is built into a temporary folder
# with its caches under /tmp, so nothing lands in the repository.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

args="$*"
rounds=3
quick=0
runs=""
rebuild=0
swift_bench=""

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) [ $# -ge 2 ] || die "--rounds needs a number"; rounds=$2; shift ;;
    --runs) [ $# -ge 2 ] || die "--runs needs a number"; runs=$2; shift ;;
    --rebuild) rebuild=1 ;;
    --swift-bench) [ $# -ge 2 ] || die "--swift-bench needs a path"; swift_bench=$2; shift ;;
    -h|--help) show_help 20 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
case "$rounds" in ''|*[!0-9]*|0) die "--rounds must be a positive integer" ;; esac
if [ -n "$runs" ]; then
  case "$runs" in *[!0-9]*|0) die "--runs must be a positive integer" ;; esac
fi

# --- what the peers need ---------------------------------------------------

if ! command -v go >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing golang-go" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null; } \
      || die "apt-get install golang-go failed"
  else
    die "go not found; run: sudo apt-get update && sudo apt-get install -y golang-go"
  fi
fi
command -v python3 >/dev/null || die "python3 not found; run: sudo apt-get install -y python3 python3-venv"
# gevent from PyPI, in a virtual environment of its own (shared with echo-peers.sh).
gevent_venv

work=$(mktemp -d /tmp/compare-peers.XXXXXX)
trap 'rm -rf "$work"' EXIT

# --- build -----------------------------------------------------------------

if [ -z "$swift_bench" ]; then
  if [ "$rebuild" = 0 ] && [ -x "$repo/.build/release/green-bench" ]; then
    swift_bench="$repo/.build/release/green-bench"
  else
    command -v swift >/dev/null || die "swift not found: put the toolchain on PATH (e.g. /opt/swift/usr/bin)"
    echo "building green-bench into .build-peers" >&2
    (cd "$repo" && swift build -c release --product green-bench --scratch-path "$repo/.build-peers" >&2) \
      || die "building green-bench failed"
    swift_bench="$repo/.build-peers/release/green-bench"
  fi
fi
[ -x "$swift_bench" ] || die "green-bench not found or not executable: $swift_bench"

build_go_peer "$work/go-peer"

# --- run -------------------------------------------------------------------

common=(--json)
[ "$quick" = 1 ] && common+=(--quick)
[ -n "$runs" ] && common+=(--runs "$runs")

# run_peer NAME ROUND: runs one program, keeps its JSON line, and stops the
# whole comparison if it fails, since a table with a hole would mislead.
run_peer() {
  local name=$1 round=$2 cmd out err start
  case "$name" in
    swift-green) cmd=("$swift_bench" "${common[@]}") ;;
    go) cmd=("$work/go-peer" "${common[@]}") ;;
    gevent) cmd=("$venv/bin/python" "$here/gevent/bench.py" "${common[@]}") ;;
  esac
  out="$work/$name.$round.json"
  err="$work/$name.$round.err"
  start=$SECONDS
  printf 'round %d/%d: %-12s' "$round" "$rounds" "$name" >&2
  if ! "${cmd[@]}" >"$out.raw" 2>"$err"; then
    echo " FAILED" >&2
    tail -n 20 "$err" >&2
    die "$name failed in round $round: ${cmd[*]}"
  fi
  # Keep only the last line that is a JSON object, in case a runtime warns on stdout.
  python3 - "$out.raw" "$out" <<'EOF' || { echo " FAILED" >&2; cat "$out.raw" >&2; die "$name printed no JSON object in round $round"; }
import json, sys
for line in reversed(open(sys.argv[1]).read().splitlines()):
    line = line.strip()
    if line.startswith("{"):
        obj = json.loads(line)
        json.dump(obj, open(sys.argv[2], "w"))
        sys.exit(0)
sys.exit(1)
EOF
  echo " $((SECONDS - start))s" >&2
}

names=(swift-green go gevent)
for ((r = 1; r <= rounds; r++)); do
  for ((i = 0; i < 3; i++)); do
    run_peer "${names[$(((i + r - 1) % 3))]}" "$r"
  done
done

# --- table -----------------------------------------------------------------

echo
echo "swift-green vs Go vs gevent: median over $rounds round(s)$([ "$quick" = 1 ] && echo ", quick")"
echo "command: Benchmarks/peers/compare-peers.sh${args:+ $args}"
python3 - "$work" "$rounds" <<'EOF'
import json, os, statistics, sys

work, rounds = sys.argv[1], int(sys.argv[2])
names = ["swift-green", "go", "gevent"]
keys = ["c_switch_ns", "switch_ns", "ucontext_switch_ns", "yield_ns", "spawn_join_ns",
        "event_wakeup_ns", "queue_pingpong_ns", "channel_pingpong_ns", "lock_uncontended_ns",
        "semaphore_handoff_ns", "pool_map_ns_per_item", "pool_map_blocking_ns_per_item",
        "parked_bytes_per_greenlet", "compact_parked_bytes_per_greenlet",
        "max_parked_greenlets", "max_parked_rss_bytes"]

results = {n: [json.load(open(os.path.join(work, f"{n}.{r}.json"))) for r in range(1, rounds + 1)]
           for n in names}

def med(name, key):
    xs = [r[key] for r in results[name] if isinstance(r.get(key), (int, float))]
    return statistics.median(xs) if xs else None

def fmt(v):
    # green-bench's format: whole numbers when large or integral, else two decimals.
    if v is None:
        return "-"
    if v >= 1000 or v == int(v):
        return str(int(round(v)))
    return f"{v:.2f}"

def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"

header = ["key", "swift-green", "Go", "gevent", "swift/Go", "swift/gevent"]
rows = []
for k in keys:
    s, g, p = med("swift-green", k), med("go", k), med("gevent", k)
    rows.append([k, fmt(s), fmt(g), fmt(p), ratio(s, g), ratio(s, p)])
widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]

def line(cells):
    return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))) + " |"

print(line(header))
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for row in rows:
    print(line(row))
print()
print("ratio = swift-green / peer; below 1 means swift-green takes less time or memory.")
print("c_switch_ns, ucontext_switch_ns and pool_map_blocking_ns_per_item have no peer equivalent;")
print("Go has no Event or counting semaphore in its standard library (no figure).")
print("The issue's bar for queue_pingpong_ns and channel_pingpong_ns is Go's unbuffered channel:")
for k in ("queue_pingpong_ns", "channel_pingpong_ns"):
    print(f"  {k} / Go channel_pingpong_ns = {ratio(med('swift-green', k), med('go', 'channel_pingpong_ns'))}")
for n in ("go", "gevent"):
    note = results[n][-1].get("note")
    if note:
        print(f"{n}: {note}")
EOF
