#!/bin/sh
# https-get against `openssl s_server -www` on loopback, with a throwaway
# CA: a good certificate is fetched (exit 0), an expired one, an unknown CA
# and a wrong host fail with the reason (exit non-zero).
#   Examples/https-get/smoke-test.sh ./.build/release/https-get
set -eu
bin=${1:?usage: smoke-test.sh PATH-TO-https-get}
dir=$(mktemp -d /tmp/https-get-smoke.XXXXXX)
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

expect_failure() {  # WHAT PATTERN ARGS...
  what=$1 pattern=$2; shift 2
  if "$bin" "$@" >out.txt 2>&1; then echo "https-get: $what was accepted"; cat out.txt; exit 1; fi
  grep -q "$pattern" out.txt || { echo "https-get: $what failed without saying '$pattern':"; cat out.txt; exit 1; }
  echo "ok: $what -> $(grep -o "$pattern.*" out.txt | head -1)"
}

serve srv.pem
"$bin" "https://localhost:$port/" --ca-file ca.pem >out.txt
grep -q "^HTTP/1.[01] 200" out.txt || { echo "no 200:"; cat out.txt; exit 1; }
echo "ok: fetched: $(head -2 out.txt | tr '\n' ' ')"
expect_failure "an unknown CA" "did not verify" "https://localhost:$port/" --ca-file other.pem
expect_failure "a wrong host" "address mismatch" "https://127.0.0.2:$port/" --ca-file ca.pem
serve expired.pem
expect_failure "an expired certificate" "certificate has expired" "https://localhost:$port/" --ca-file ca.pem
"$bin" "https://localhost:$port/" --insecure >/dev/null && echo "ok: --insecure fetches despite it"
