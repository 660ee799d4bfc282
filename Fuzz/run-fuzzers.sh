#!/usr/bin/env bash
# run-fuzzers.sh: builds the libFuzzer targets (GREEN_FUZZ=1, with
# AddressSanitizer) and runs each for a number of executions from its
# seed corpus (Fuzz/corpus/<target>), failing on the first crash or
# failed check; the crashing input is left in .build-fuzz/.
#
#   Fuzz/run-fuzzers.sh [--runs N] [TARGET ...]     (default 1,000,000 runs, all targets)
#
# Targets: FuzzHTTP (request/response parsing, the client's URL reading
# against Foundation), FuzzURL (link resolution and the normalized-URL
# test against Foundation), FuzzLinks (link extraction from any bytes).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
runs=1000000
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(FuzzHTTP FuzzURL FuzzLinks)
declare -A corpus=([FuzzHTTP]=http [FuzzURL]=url [FuzzLinks]=links)
for t in "${targets[@]}"; do
  [ -n "${corpus[$t]:-}" ] || { echo "run-fuzzers: unknown target $t" >&2; exit 2; }
  GREEN_FUZZ=1 swift build -c release --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address --product "$t" >&2
  work=$(mktemp -d /tmp/green-fuzz.XXXXXX)
  cp Fuzz/corpus/"${corpus[$t]}"/* "$work"/
  echo "== $t: $runs runs from Fuzz/corpus/${corpus[$t]}" >&2
  set +e
  SWIFT_BACKTRACE=enable=no ./.build-fuzz/release/"$t" -runs="$runs" -max_len=1024 \
    -artifact_prefix=.build-fuzz/ "$work" >"$work.log" 2>&1
  rc=$?
  set -e
  grep -E "^Done|fuzz check failed|ERROR" "$work.log" >&2 || true
  rm -rf "$work" "$work.log"
  [ $rc = 0 ] || { echo "run-fuzzers: $t failed (the input is in .build-fuzz/crash-*)" >&2; exit 1; }
done
