#!/usr/bin/env bash
# Doc-comment coverage of the public API of Green, GreenHTTP and GreenTLS,
# read from the compiler's symbol graphs (`swift package dump-symbol-graph
# --minimum-access-level public`), not from the source text.
#
#   Tools/doc-coverage.sh [--list] [--list-throwing] [--require-all]
#                         [--no-build] [--graphs DIR] [MODULE...]
#
#   --list           also print each symbol without a doc comment
#                    (file:line, kind, name)
#   --list-throwing  also print each throwing function or initializer whose
#                    own comment never mentions what it throws (a review
#                    aid: the type's comment may say it for all members, so
#                    this never fails the run)
#   --require-all    exit 1 if any counted symbol lacks a doc comment
#   --no-build       read the symbol graphs already dumped instead of
#                    running dump-symbol-graph (which builds the package)
#   --graphs DIR     the directory of *.symbols.json to read (default: the
#                    one dump-symbol-graph reports, .build/<triple>/symbolgraph)
#   MODULE...        the modules to count (default: Green GreenHTTP GreenTLS)
#
# WHAT COUNTS: every public or open symbol of the module that is declared in
# its own source, that is, that has a source location in the symbol graph:
# types, protocols, type aliases, enum cases (each case of `case a, b`),
# initializers, properties, subscripts, methods, operators, and members
# declared in extensions, including the members that implement a protocol
# requirement (`description`, `hash(into:)`, `makeIterator()`, `next()`,
# `init(rawValue:)` written out) and overrides. Not counted: what the
# compiler synthesizes or a type inherits without declaring it (default
# implementations of protocol extensions such as `!=` or `shuffled()`,
# synthesized `==`, `hash(into:)` and `init(rawValue:)`): the symbol graph
# gives those no source location. Underscored and internal symbols are not
# in a public symbol graph.
#
# WHAT IS A DOC COMMENT: a non-blank `///` or `/** */` comment written on
# the symbol itself. The graph shows a witness or an override without one
# the comment of the requirement or overridden member (the standard
# library's `description` text, say); that one does not count.
set -euo pipefail

cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
list=0 list_throwing=0 require_all=0 build=1 graphs=""
modules=()
while [ $# -gt 0 ]; do
  case "$1" in
    --list) list=1 ;;
    --list-throwing) list_throwing=1 ;;
    --require-all) require_all=1 ;;
    --no-build) build=0 ;;
    --graphs) graphs=${2:?--graphs needs a directory}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) modules+=("$1") ;;
  esac
  shift
done
[ ${#modules[@]} -gt 0 ] || modules=(Green GreenHTTP GreenTLS)

fresh=""
if [ -z "$graphs" ]; then
  if [ "$build" = 1 ]; then
    log=$(mktemp)
    fresh=$(mktemp)
    trap 'rm -f "$log" "$fresh"' EXIT
    # It exits 1 even when it wrote every library's graph: it also tries
    # the test modules SwiftPM synthesizes and cannot load them. What
    # counts is that the graphs asked for were written now (checked below).
    rc=0
    "$SWIFT" package dump-symbol-graph --minimum-access-level public >"$log" 2>&1 || rc=$?
    graphs=$(sed -n 's/^Files written to //p' "$log" | tail -1)
    for m in "${modules[@]}"; do
      if [ -z "$graphs" ] || [ ! "$graphs/$m.symbols.json" -nt "$fresh" ]; then
        grep -v '^Using commandline' "$log" | tail -40 >&2
        echo "swift package dump-symbol-graph (exit $rc) wrote no symbol graph for $m" >&2
        exit 2
      fi
    done
  else
    graphs=$(ls -d .build/*/symbolgraph 2>/dev/null | head -1 || true)
  fi
fi
if [ -z "$graphs" ] || [ ! -d "$graphs" ]; then
  echo "no symbol graphs found (run without --no-build, or pass --graphs DIR)" >&2
  exit 2
fi

python3 - "$graphs" "$list" "$list_throwing" "$require_all" "${modules[@]}" <<'PY'
import glob, json, os, sys

graphs, show_list, show_throwing, require_all = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4] == "1"
modules = sys.argv[5:]
root = os.getcwd() + "/"

def path_of(uri):
    p = uri[len("file://"):] if uri.startswith("file://") else uri
    return p[len(root):] if p.startswith(root) else p

missing_total = 0
for module in modules:
    files = [os.path.join(graphs, module + ".symbols.json")]
    # Extensions of other modules' types, when the graph puts them apart.
    files += sorted(glob.glob(os.path.join(graphs, module + "@*.symbols.json")))
    if not os.path.exists(files[0]):
        print(f"{module}: no symbol graph in {graphs}", file=sys.stderr)
        sys.exit(2)
    symbols = []
    for f in files:
        with open(f) as fh:
            symbols += json.load(fh)["symbols"]
    counted = [s for s in symbols
               if s.get("accessLevel") in ("public", "open") and "location" in s
               and not s["kind"]["identifier"].startswith("swift.extension")]

    def doc_key(s):
        d = s.get("docComment")
        if not d or "uri" not in d or not d.get("lines") or "range" not in d["lines"][0]:
            return None
        return (d["uri"], d["lines"][0]["range"]["start"]["line"], d["lines"][-1]["range"]["end"]["line"])

    # A comment belongs to the declaration right after it: among the symbols
    # the graph shows it on, those declared nearest below it (both cases of
    # `case a, b`). The others inherited it.
    owner_line = {}
    for s in counted:
        k = doc_key(s)
        loc = s["location"]
        if k and loc["uri"] == k[0] and loc["position"]["line"] > k[2]:
            line = loc["position"]["line"]
            owner_line[k] = min(owner_line.get(k, line), line)

    def own_doc(s):
        d = s.get("docComment")
        k = doc_key(s)
        if not k or d.get("module") != module:
            return None
        loc = s["location"]
        if loc["uri"] != k[0] or owner_line.get(k) != loc["position"]["line"]:
            return None
        text = "\n".join(l.get("text", "") for l in d["lines"])
        return text if text.strip() else None

    def name(s):
        return ".".join(s["pathComponents"])

    def where(s):
        loc = s["location"]
        return f'{path_of(loc["uri"])}:{loc["position"]["line"] + 1}'

    def order(s):
        loc = s["location"]
        return (path_of(loc["uri"]), loc["position"]["line"], name(s))

    undocumented = sorted((s for s in counted if own_doc(s) is None), key=order)
    documented = len(counted) - len(undocumented)
    missing_total += len(undocumented)
    print(f"{module}: {documented}/{len(counted)} public symbols documented")
    if show_list:
        for s in undocumented:
            print(f"  {where(s)}: {s['kind']['identifier'][len('swift.'):]} {name(s)}")
    if show_throwing:
        for s in sorted(counted, key=order):
            frags = s.get("declarationFragments", [])
            callable = s["kind"]["identifier"] in ("swift.func", "swift.method", "swift.type.method", "swift.init",
                                                   "swift.func.op")
            # The call's own `throws`: outside the parameter list (a
            # closure parameter's `throws` is inside it).
            depth, throws = 0, False
            for f in frags:
                if f["kind"] == "text":
                    depth += f["spelling"].count("(") - f["spelling"].count(")")
                elif f["kind"] == "keyword" and f["spelling"] in ("throws", "rethrows") and depth == 0:
                    throws = callable
            text = own_doc(s)
            if throws and text is not None and "throw" not in text.lower():
                print(f"  throws, unsaid: {where(s)}: {name(s)}")

if require_all and missing_total:
    print(f"{missing_total} public symbols have no doc comment", file=sys.stderr)
    sys.exit(1)
PY
