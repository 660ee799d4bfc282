#!/usr/bin/env bash
# compare-models.sh: the standard workloads of green-compare on greenlets,
# threads and processes, on this machine. Prints each table, writes each
# chart to OUT/<workload>.svg and the JSON to OUT/<workload>.json (each
# model's memory per task, user+kernel, in its line), and ends with a
# Markdown summary (the README's "Which model when" table). io-sleep runs
# twice: the greenlets on dedicated stacks (the default), then on compact
# ones beside threads (io-sleep-compact.*).
#
#   Benchmarks/compare-models.sh [--out DIR] [--quick]
#
# --quick runs every workload small (a smoke test, for CI).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/.build/compare"
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift ;;
    --quick) quick=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare-models: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
bin="$repo/.build/release/green-compare"
[ -x "$bin" ] || (cd "$repo" && swift build -c release --product green-compare >&2)

if [ $quick = 1 ]; then
  runs=(
    "cpu-hash --tasks 4 --concurrency 2 --bytes 1000000"
    "cpu-primes --tasks 4 --concurrency 2 --limit 50000"
    "io-sleep --tasks 500 --concurrency 500 --latency 0.05 --process-limit 8"
    "io-sleep-compact=io-sleep --tasks 500 --concurrency 500 --latency 0.05 --models greenlets,threads --stack-mode compact"
    "http-fetch --tasks 200 --concurrency 50 --latency 0.01 --process-limit 8"
    "echo --tasks 20 --concurrency 10 --round-trips 50"
    "mixed --tasks 40 --concurrency 20 --latency 0.02 --bytes 800000 --process-limit 8"
    "producer-consumer --tasks 2000 --concurrency 4"
    "counter --tasks 4 --increments 20000"
  )
else
  runs=(
    "cpu-hash --tasks 16 --concurrency 2 --bytes 16000000"
    "cpu-primes --tasks 16 --concurrency 2 --limit 400000"
    "io-sleep --tasks 10000 --concurrency 10000 --latency 0.1 --process-limit 64"
    "io-sleep-compact=io-sleep --tasks 10000 --concurrency 10000 --latency 0.1 --models greenlets,threads --stack-mode compact"
    "http-fetch --tasks 2000 --concurrency 200 --latency 0.02 --process-limit 64"
    "echo --tasks 100 --concurrency 100 --round-trips 200 --process-limit 64"
    "mixed --tasks 400 --concurrency 100 --latency 0.05 --bytes 4000000 --process-limit 64"
    "producer-consumer --tasks 100000 --concurrency 4"
    "counter --tasks 4 --increments 1000000"
  )
fi

for r in "${runs[@]}"; do
  name=${r%% *}
  # "LABEL=WORKLOAD ARGS": a second run of a workload, under its own name.
  if [[ $name == *=* ]]; then
    r=${r#*=}
    name=${name%%=*}
  fi
  echo "== green-compare --workload $r" >&2
  # shellcheck disable=SC2086
  "$bin" --workload $r --svg "$out/$name.svg" --json > "$out/$name.json"
  python3 - "$out/$name.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
for x in o["results"]:
    extra = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(x.get("figures", {}).items()) if "lost" in k)
    u, k = x.get("task_user_bytes"), x.get("task_kernel_bytes")
    task = f'  per task {u / 1024:,.1f}+{k / 1024:,.1f} KiB' if u is not None and k is not None else ''
    print(f'  {x["model"]:<10} wall {x["wall_s"]:8.3f} s  user {x["user_s"]:7.3f}  sys {x["sys_s"]:7.3f}  '
          f'peak RSS {x["peak_rss_bytes"] / 2**20:8.1f} MiB  ctx {x["voluntary_ctx"]}+{x["involuntary_ctx"]}  '
          f'{x["throughput"]:,.1f} units/s' + task + (f"  ({extra})" if extra else ""))
PY
done

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = []
for f in sorted(os.listdir(out)):
    if not f.endswith(".json"):
        continue
    o = json.load(open(os.path.join(out, f)))
    r = {x["model"]: x for x in o["results"]}
    g = r.get("greenlets", {}).get("throughput") or 1
    def cell(m):
        x = r.get(m)
        if not x:
            return "-"
        return f'{x["throughput"]:,.0f}/s ({x["throughput"] / g:.2f}x), {x["peak_rss_bytes"] / 2**20:.0f} MiB'
    mode = o.get("greenlet_stack_mode", "dedicated")
    label = o["workload"] + (f" ({mode} greenlets)" if mode != "dedicated" else "")
    rows.append(f'| {label} | {cell("greenlets")} | {cell("threads")} | {cell("processes")} |')
print("| workload | greenlets | threads | processes |")
print("|---|---|---|---|")
print("\n".join(rows))
PY
