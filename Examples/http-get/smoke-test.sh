#!/bin/sh
# http-get against `openssl s_server -www` on loopback, with a throwaway
# CA: a good certificate is fetched (exit 0), an expired one (60), an
# unknown CA (60) and a wrong host (60) fail with the reason; a port with
# no server is exit 7; a body goes to a file with -o.
#   Examples/http-get/smoke-test.sh ./.build/release/http-get
set -eu
bin=${1:?usage: smoke-test.sh PATH-TO-http-get}
dir=$(mktemp -d /tmp/http-get-smoke.XXXXXX)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
cd "$dir"
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=smoke CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
q openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj "/CN=other CA"
q openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > ext
q openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext
q openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out expired.pem -days -1 -extfile ext

# serve CERT: starts s_server -www on a free port, sets $port.
serve() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  # A new file: the old one may still name the old server's port.
  rm -f server.out
  openssl s_server -accept 0 -www -cert "$1" -key srv.key >server.out 2>&1 &
  server_pid=$!
  port=
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' server.out)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "s_server did not start"; cat server.out; exit 1; }
}

expect_failure() {  # WHAT STATUS PATTERN ARGS...
  what=$1 want=$2 pattern=$3; shift 3
  status=0
  "$bin" "$@" >out.txt 2>&1 || status=$?
  [ "$status" = "$want" ] || { echo "http-get: $what: exit $status, not $want"; cat out.txt; exit 1; }
  grep -q "$pattern" out.txt || { echo "http-get: $what failed without saying '$pattern':"; cat out.txt; exit 1; }
  echo "ok: $what -> exit $status, $(grep -o "$pattern.*" out.txt | head -1)"
}

serve srv.pem
"$bin" "https://localhost:$port/" --ca-file ca.pem -v -o page.html 2>out.txt
grep -q "^< 200" out.txt || { echo "no 200:"; cat out.txt; exit 1; }
grep -q "s_server" page.html || { echo "no page in the -o file:"; cat page.html; exit 1; }
echo "ok: fetched to a file: $(wc -c <page.html) bytes"
expect_failure "an unknown CA" 60 "did not verify" "https://localhost:$port/" --ca-file other.pem
expect_failure "a wrong host" 60 "address mismatch" "https://127.0.0.2:$port/" --ca-file ca.pem
expect_failure "a port with no server" 7 "refused" "http://127.0.0.1:1/"
serve expired.pem
expect_failure "an expired certificate" 60 "certificate has expired" "https://localhost:$port/" --ca-file ca.pem
"$bin" "https://localhost:$port/" --insecure >/dev/null && echo "ok: --insecure fetches despite it"
