#!/usr/bin/env bash
# bridge-peers.sh: the crossings between greenlets and Swift Concurrency
# (green-bench's bridge keys) beside SwiftNIO's between its event loop and
# Swift Concurrency (Benchmarks/peers/nio-bridge, SwiftNIO 2.101, a
# MultiThreadedEventLoopGroup of one loop), one after another, in one run:
# HubHandle.run from a task on Swift's global pool beside
# EventLoop.submit(...).get() (and an actor call whose executor is the
# loop) from such a task; Task.yield() on the hub's executor beside
# Task.yield() on the loop; condvar_pingpong_ns as the floor.
#
#   Benchmarks/peers/bridge-peers.sh [--rounds R] [--runs N] [--no-build] [--json]
#
# Builds both in release mode (green-bench under .build-release-bridge, the
# peer under .build-nio-bridge; --no-build uses what is there). Each round
# runs both programs, in an order that alternates each round, each
# reporting the median of its own N runs (default: their own, 7). Prints
# per key the median over the rounds (and the rounds' range), and each
# ratio as the median of the rounds' own ratios; --json prints the same as
# one JSON object.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rounds=5
runs=""
build=1
json=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift ;;
    --runs) runs=$2; shift ;;
    --no-build) build=0 ;;
    --json) json=1 ;;
    -h|--help) show_help 19 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
case "$rounds" in ''|*[!0-9]*|0) die "--rounds needs a positive number" ;; esac
case "$runs" in *[!0-9]*) die "--runs needs a positive number" ;; esac

build_swift_pair green-bench .build-release-bridge nio-bridge .build-nio-bridge NIOBridge "the SwiftNIO peer"
bench=$ours
nio_version=$(awk '/"identity" : "swift-nio"/ { f = 1 } f && /"version"/ { gsub(/[",]/, "", $3); print $3; exit }' \
  "$here/nio-bridge/Package.resolved" 2>/dev/null || true)
nio_version=${nio_version:-2.x}

green_keys="cross_thread_run_roundtrip_ns hub_executor_yield_ns task_yield_ns condvar_pingpong_ns"
nio_keys="nio_submit_roundtrip_ns nio_executor_hop_roundtrip_ns nio_executor_yield_ns nio_task_executor_yield_ns"
# numerator denominator: each ratio is computed per round, then its median.
ratios="cross_thread_run_roundtrip_ns nio_submit_roundtrip_ns
cross_thread_run_roundtrip_ns nio_executor_hop_roundtrip_ns
hub_executor_yield_ns nio_executor_yield_ns
hub_executor_yield_ns nio_task_executor_yield_ns
hub_executor_yield_ns task_yield_ns"

work=$(mktemp -d /tmp/bridge-peers.XXXXXX)
trap 'rm -rf "$work"' EXIT

green() { keep "$("$bench" --only "$(echo $green_keys | tr ' ' ,)" ${runs:+--runs "$runs"} --json)" "$green_keys"; }
nio() { keep "$("$peer" ${runs:+--runs "$runs"} --json)" "$nio_keys"; }

# ns as green-bench prints them: whole above 1000, else two decimals.
ns() { awk '{ if ($1 >= 1000) printf "%d\n", $1 + 0.5; else printf "%.2f\n", $1 }'; }

for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then green; nio; else nio; green; fi
  echo "bridge-peers: round $r: cross_thread_run $(tail -1 "$work/cross_thread_run_roundtrip_ns")," \
    "nio_submit $(tail -1 "$work/nio_submit_roundtrip_ns"), hub_executor_yield $(tail -1 "$work/hub_executor_yield_ns")," \
    "nio_task_executor_yield $(tail -1 "$work/nio_task_executor_yield_ns") ns" >&2
done

if [ "$json" = 1 ]; then
  out="{\"rounds\": $rounds, \"swift_nio\": \"$nio_version\""
  for k in $green_keys $nio_keys; do out="$out, \"$k\": $(median < "$work/$k" | ns)"; done
  while read -r a b; do out="$out, \"$a/$b\": $(ratio "$a" "$b")"; done <<< "$ratios"
  echo "$out}"
  exit 0
fi
echo "bridge crossings, ns (median of $rounds rounds, each the median of ${runs:-7} runs in its program; range over the rounds)"
echo "  swift-green (green-bench)"
for k in $green_keys; do printf '    %-32s %10s   %s\n' "$k" "$(median < "$work/$k" | ns)" "$(range < "$work/$k")"; done
echo "  SwiftNIO $nio_version (Benchmarks/peers/nio-bridge)"
for k in $nio_keys; do printf '    %-32s %10s   %s\n' "$k" "$(median < "$work/$k" | ns)" "$(range < "$work/$k")"; done
echo "ratios (median of the rounds' ratios)"
while read -r a b; do printf '  %-62s %8s\n' "$a / $b" "$(ratio "$a" "$b")"; done <<< "$ratios"
