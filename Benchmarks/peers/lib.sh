# lib.sh: what the peer scripts share. Sourced (after `set -euo pipefail`)
# by echo-peers.sh, ws-peers.sh, bridge-peers.sh, task-peers.sh and
# compare-peers.sh:
#
#   . "$(dirname "$0")/lib.sh"
#
# Sets $repo (the repository) and $here (Benchmarks/peers), and defines the
# functions below; messages start with the script's name.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$repo/Benchmarks/peers"
peer_script=$(basename "$0" .sh)

die() { echo "$peer_script: $*" >&2; exit 1; }

# show_help LAST: prints the script's header comment, lines 2 to LAST, and exits.
show_help() { sed -n "2,${1}p" "$0" | sed 's/^# \{0,1\}//'; exit 0; }

# need_deb PACKAGE...: installs the missing Debian packages (as root), or
# dies with the command to run.
need_deb() {
  local missing=""
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    die "missing:$missing; run: sudo apt-get update && sudo apt-get install -y$missing"
  fi
}

# gevent_venv: sets $venv to the virtual environment with gevent from PyPI
# that the peer scripts share, made first if missing.
gevent_venv() {
  venv=/tmp/swift-green-peers-venv
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import gevent' 2>/dev/null; then
    echo "installing gevent into $venv" >&2
    { python3 -m venv "$venv" && "$venv/bin/pip" install -q gevent; } >&2 \
      || die "installing gevent failed; run: python3 -m venv $venv && $venv/bin/pip install gevent"
  fi
}

# build_go_peer OUT: builds the Go peer (Benchmarks/peers/go) into OUT, its
# caches under /tmp, so that nothing lands in the repository.
build_go_peer() {
  echo "building the Go peer" >&2
  (cd "$here/go" &&
    GOCACHE=/tmp/$peer_script-go/cache GOPATH=/tmp/$peer_script-go/path GOFLAGS=-buildvcs=false \
    go build -o "$1" . >&2) || die "building the Go peer (Benchmarks/peers/go) failed"
}

# build_swift_pair PRODUCT SCRATCH PACKAGE PEER_SCRATCH EXECUTABLE WHAT:
# unless $build is 0 (--no-build), builds our PRODUCT and the Swift peer
# package Benchmarks/peers/PACKAGE (WHAT, for the message) in release
# mode, each under its scratch folder in the repository. Sets $ours and
# $peer to the two executables; dies if either is missing.
build_swift_pair() {
  local product=$1 scratch=$2 package=$3 peer_scratch=$4 executable=$5 what=$6
  export PATH=/opt/swift/usr/bin:$PATH
  if [ "$build" = 1 ]; then
    echo "$peer_script: building $product and $what (release)" >&2
    swift build -c release --package-path "$repo" --scratch-path "$repo/$scratch" --product "$product" >&2
    swift build -c release --package-path "$here/$package" --scratch-path "$repo/$peer_scratch" >&2
  fi
  ours="$repo/$scratch/release/$product"
  peer="$repo/$peer_scratch/release/$executable"
  [ -x "$ours" ] && [ -x "$peer" ] || die "missing $ours or $peer: run without --no-build"
}

# median: the median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Rounds of figures kept in files, one per key, in the directory $work
# (the script makes it): the scripts that run two programs in turns.
# value KEY: the value of KEY in the one-line JSON object on stdin.
value() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"; }
# keep JSON KEYS: appends each key's value in JSON to $work/KEY.
keep() {
  local k v
  for k in $2; do
    v=$(echo "$1" | value "$k")
    [ -n "$v" ] || die "no $k in: $1"
    echo "$v" >> "$work/$k"
  done
}
# range: "lowest-highest" of the numbers on stdin.
range() { sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "-" hi}'; }
# ratio A B: the median over the rounds of A / B, each round's own.
ratio() { paste "$work/$1" "$work/$2" | awk '{ print $1 / $2 }' | median | awk '{ printf "%.3f\n", $1 }'; }
