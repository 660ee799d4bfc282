#!/usr/bin/env bash
# task-peers.sh: a parked compact greenlet beside a suspended Swift
# Concurrency task, 1,000,000 of each, in one run: green-bench's
# compact_parked_bytes_per_greenlet (RSS growth per greenlet, parked on an
# Event) beside Benchmarks/peers/swift-tasks (RSS growth per task,
# suspended in withUnsafeContinuation, and in withCheckedContinuation).
#
#   Benchmarks/peers/task-peers.sh [--rounds R] [--quick] [--no-build] [--bench PATH] [--json]
#
# Builds both in release mode (green-bench under .build-release-tasks,
# the peer under .build-swift-tasks; --no-build uses what is there,
# --bench PATH another green-bench, e.g. .build/release/green-bench).
# Each round runs both programs, in an order that alternates each round,
# each reporting the median of its own 3 runs (1 with --quick, which also
# parks 100,000 instead of 1,000,000). Prints per key the median over the
# rounds (default 3) and their range, and each ratio (greenlet / task) as
# the median of the rounds' own ratios; --json prints the same as one
# JSON object. The issue's bars: the greenlet at or below the task, and
# at or below 1,280 bytes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rounds=3
quick=0
build=1
bench=""
json=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) [ $# -ge 2 ] || die "--rounds needs a number"; rounds=$2; shift ;;
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    --bench) [ $# -ge 2 ] || die "--bench needs a path"; bench=$2; build=0; shift ;;
    --json) json=1 ;;
    -h|--help) show_help 19 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
case "$rounds" in ''|*[!0-9]*|0) die "--rounds needs a positive number" ;; esac

if [ -n "$bench" ]; then
  export PATH=/opt/swift/usr/bin:$PATH
  peer="$repo/.build-swift-tasks/release/SwiftTasks"
  if [ ! -x "$peer" ]; then
    swift build -c release --package-path "$here/swift-tasks" --scratch-path "$repo/.build-swift-tasks" >&2
  fi
  ours=$bench
  [ -x "$ours" ] && [ -x "$peer" ] || die "missing $ours or $peer"
else
  build_swift_pair green-bench .build-release-tasks swift-tasks .build-swift-tasks SwiftTasks "the Swift tasks peer"
fi

green_key=compact_parked_bytes_per_greenlet
task_keys="swift_task_parked_bytes_per_task swift_task_checked_parked_bytes_per_task"
quick_flag=()
[ "$quick" = 1 ] && quick_flag=(--quick)

work=$(mktemp -d /tmp/task-peers.XXXXXX)
trap 'rm -rf "$work"' EXIT

green() { keep "$("$ours" --only "=$green_key" "${quick_flag[@]}" --json 2>/dev/null | tail -1)" "$green_key"; }
tasks() { keep "$("$peer" "${quick_flag[@]}" --json | tail -1)" "$task_keys"; }


for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then green; tasks; else tasks; green; fi
  echo "task-peers: round $r: greenlet $(tail -1 "$work/$green_key")," \
    "task $(tail -1 "$work/swift_task_parked_bytes_per_task")," \
    "checked task $(tail -1 "$work/swift_task_checked_parked_bytes_per_task") bytes" >&2
done

count=$([ "$quick" = 1 ] && echo 100,000 || echo 1,000,000)
if [ "$json" = 1 ]; then
  out="{\"rounds\": $rounds, \"count\": \"$count\""
  for k in $green_key $task_keys; do out="$out, \"$k\": $(median < "$work/$k")"; done
  for k in $task_keys; do out="$out, \"$green_key/$k\": $(ratio "$green_key" "$k")"; done
  echo "$out}"
  exit 0
fi
echo "bytes per parked task, $count of each (median of $rounds rounds, each the median of its program's runs; range over the rounds)"
for k in $green_key $task_keys; do
  printf '  %-42s %8s   %s\n' "$k" "$(median < "$work/$k")" "$(range < "$work/$k")"
done
echo "ratios (median of the rounds' ratios; below 1: the greenlet is lighter)"
for k in $task_keys; do
  printf '  %-84s %6s\n' "$green_key / $k" "$(ratio "$green_key" "$k")"
done
