# swift-green: the two commands of the README, and a few more.
#
#   make demo    set up, build in release mode, run the main example
#   make test    set up, run the whole test suite
#
# Both install missing Debian packages when run as root, and otherwise
# print the exact command to run.

SWIFT ?= swift
DEB_PACKAGES := libev-dev libhttp-parser-dev zlib1g-dev libgumbo-dev libxml2-dev libssl-dev openssl nginx-light curl redis-server iproute2 python3-doc python3-venv gdb
UCONTEXT_BUILD := .build-ucontext

.PHONY: all deps bench-deps demo demo-distributed bench-distributed bench-crawl-peers bench-transfer test-venv test test-compact test-ucontext check-aarch64 bench bench-smoke examples-smoke bench-peers compare docs fuzz faults sanitize sanitize-address sanitize-thread valgrind ci clean

all: test

# install-debs PACKAGES: installs the missing ones (as root), or prints the
# exact command and fails.
install-debs = missing=""; \
	for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing Debian packages:$$missing"; \
	    echo "run: sudo apt-get update && sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi

deps:
	@$(call install-debs,$(DEB_PACKAGES))
	@command -v $(SWIFT) >/dev/null || { echo "swift not found: put the toolchain on PATH (e.g. /opt/swift/usr/bin)"; exit 1; }

# The main job: the crawler against a generated site it serves itself on
# loopback (3,000 pages, planted broken links, a redirect chain, a slow
# page, robots.txt); one JSON line per page in .build/demo-crawl.jsonl.
demo: deps
	$(SWIFT) build -c release --product crawl
	./.build/release/crawl --demo --timeout 1 --demo-latency 0.005 --output .build/demo-crawl.jsonl

# One crawl shared by two crawl processes through Redis (a redis-server
# and the demo site started on loopback); their summaries and the crawl's.
demo-distributed: deps
	$(SWIFT) build -c release --product crawl
	Examples/crawl/demo-distributed.sh

# The Python the tests read our output back with (warcio for the WARC
# files), in .venv-tests; made once, when missing.
test-venv: .venv-tests/bin/websockets

.venv-tests/bin/websockets:
	@$(call install-debs,python3-venv)
	python3 -m venv .venv-tests
	.venv-tests/bin/pip install --quiet warcio==1.8.1 websockets==15.0.1

test: deps test-venv
	$(SWIFT) test

# The whole suite again with compact stacks as the default mode (see
# StackMode): every spawn that names no mode shares the hub's run stack.
test-compact: deps test-venv
	GREEN_STACK_MODE=compact $(SWIFT) test

# The core's suite (GreenTests: switching, scheduling, stacks, I/O) again
# with every context on makecontext/swapcontext; the libraries above it
# switch through the same calls and run in the other modes. UCONTEXT_TESTS
# chooses (a --filter pattern; `make test-ucontext UCONTEXT_TESTS=.` runs
# everything).
UCONTEXT_TESTS := ^GreenTests\.
test-ucontext: deps test-venv
	GREEN_CONTEXT=ucontext $(SWIFT) test --scratch-path $(UCONTEXT_BUILD) --filter '$(UCONTEXT_TESTS)'

# The DocC catalogs of the libraries, without a warning (broken symbol
# links included); archives in .build/plugins/Swift-DocC/outputs.
DOC_TARGETS := Green GreenHTTP GreenTLS GreenRedis GreenCrawl GreenCompare GreenPatch
docs: deps
	$(SWIFT) package generate-documentation --warnings-as-errors $(foreach t,$(DOC_TARGETS),--target $(t))

# Doc comments on the public symbols of Green, GreenHTTP and GreenTLS,
# counted from the compiler's symbol graphs (Tools/doc-coverage.sh says
# what counts): the counts, each undocumented symbol, and a failure if any.
.PHONY: doc-coverage
doc-coverage: deps
	Tools/doc-coverage.sh --list --require-all

# The aarch64 switch must at least assemble.
check-aarch64:
	@cc=$$(command -v clang); test -n "$$cc" || { echo "clang not found"; exit 1; }; \
	out=$$(mktemp -d); \
	clang -target aarch64-linux-gnu -c Sources/CGreenContext/switch_aarch64.S -o $$out/switch_aarch64.o && \
	clang -target x86_64-linux-gnu -c Sources/CGreenContext/switch_x86_64.S -o $$out/switch_x86_64.o && \
	echo "aarch64 and x86_64 context switches assemble"; rc=$$?; rm -rf $$out; exit $$rc

BENCH_PRODUCTS := green-bench main-hub-bench echo-server echo-load http-hello ws-echo crawl green-compare
# wrk: the HTTP load generator; time: /usr/bin/time, which green-compare's
# figures are checked against.
BENCH_DEB_PACKAGES := wrk time

# The load generator of the HTTP figures (installed like the other packages).
bench-deps: deps
	@$(call install-debs,$(BENCH_DEB_PACKAGES))

# swift build takes one --product at a time.
build-release = for p in $(1); do $(SWIFT) build -c release --product $$p || exit 1; done

bench: bench-deps
	$(call build-release,$(BENCH_PRODUCTS))
	./.build/release/green-bench
	./.build/release/main-hub-bench

# A short run of every figure, to keep the benchmark working.
bench-smoke: bench-deps
	$(call build-release,$(BENCH_PRODUCTS))
	./.build/release/green-bench --quick --max-parked 20000
	./.build/release/main-hub-bench --quick
	ROUNDS=1 PAGES=150 Benchmarks/distributed-crawl.sh

# A CPU-bound crawl shared through Redis by one process, then two: pages/s
# of each (medians of 3) and the ratio.
bench-distributed: deps
	$(SWIFT) build -c release --product crawl
	Benchmarks/distributed-crawl.sh

# The examples other than the demo, small; each exits non-zero on a wrong result.
examples-smoke: bench-deps
	$(call build-release,producer-consumer bank-balance chat echo-server echo-load sleepers crawl green-compare idle-connections http-get async-interop main-hub http-hello)
	Examples/http-get/smoke-test.sh $(CURDIR)/.build/release/http-get
	Examples/http-hello/metrics-smoke.sh $(CURDIR)/.build/release/http-hello
	./.build/release/async-interop --self-test 200
	./.build/release/main-hub --workers 2000 --steps 10
	./.build/release/sleepers --count 2000
	./.build/release/idle-connections --count 2000 --stack-mode compact
	./.build/release/idle-connections --count 2000 --stack-mode dedicated
	./.build/release/producer-consumer --items 20000
	./.build/release/producer-consumer --items 5000 --capacity 0
	./.build/release/bank-balance --iterations 2000
	python3 Examples/chat/smoke-test.py ./.build/release/chat
	@# Off a terminal the crawler writes no control characters.
	./.build/release/crawl --demo --demo-pages 300 --timeout 0.5 >.crawl-smoke.out 2>.crawl-smoke.err \
	  || { cat .crawl-smoke.err; exit 1; }; \
	if grep -q "$$(printf '\033')" .crawl-smoke.out .crawl-smoke.err; then \
	  echo "crawl wrote control characters off a terminal"; exit 1; fi; \
	tail -1 .crawl-smoke.err; rm -f .crawl-smoke.out .crawl-smoke.err
	@# The crawl on the adapter layer's threads and processes.
	./.build/release/crawl --demo --demo-pages 300 --timeout 0.5 --backend threads --concurrency 8 --output /dev/null
	./.build/release/crawl --demo --demo-pages 300 --timeout 0.5 --backend processes --concurrency 4 --output /dev/null
	@# Every workload on every model, small, and the figures against /usr/bin/time -v.
	Benchmarks/compare-models.sh --quick --out .build/compare-smoke
	./.build/release/green-compare --workload counter --tasks 4 --increments 20000 --check-with-time
	@./.build/release/echo-server --port 0 > .echo-smoke.out & pid=$$!; \
	for i in $$(seq 1 100); do grep -q listening .echo-smoke.out 2>/dev/null && break; sleep 0.05; done; \
	port=$$(sed -n 's/.*:\([0-9]*\) .*/\1/p' .echo-smoke.out); \
	./.build/release/echo-load --port $$port --seconds 1 --connections 20; rc=$$?; \
	kill $$pid; rm -f .echo-smoke.out; exit $$rc

# green-bench beside Go and gevent, then the TCP echo workload on
# swift-green, Go, gevent and plain threads (installs golang-go, gcc and
# gevent in a virtual environment if missing).
bench-peers: bench-deps
	$(call build-release,$(BENCH_PRODUCTS))
	Benchmarks/peers/compare-peers.sh
	Benchmarks/peers/echo-peers.sh
	Benchmarks/peers/echo-peers.sh --http
	Benchmarks/peers/crawl-peers.sh

# Our crawler against a gevent crawler and Scrapy on python3-doc served by
# nginx on loopback, every page set checked against a reference crawl
# (ROUNDS=5 for steadier medians; CRAWL=path times another build).
bench-crawl-peers: deps
	$(call build-release,crawl)
	Benchmarks/peers/crawl-peers.sh

# green-bench's crossings between greenlets and Swift Concurrency beside
# SwiftNIO's between its event loop and Swift Concurrency (a package of its
# own, Benchmarks/peers/nio-bridge): medians of 5 rounds, and the ratios.
.PHONY: bench-bridge-peers
bench-bridge-peers: deps
	Benchmarks/peers/bridge-peers.sh --rounds 5

# A parked compact greenlet beside a suspended Swift Concurrency task
# (a package of its own, Benchmarks/peers/swift-tasks), 1,000,000 of each:
# medians of 3 rounds, and the ratios.
.PHONY: bench-task-peers
bench-task-peers: deps
	Benchmarks/peers/task-peers.sh --rounds 3

# 1 GiB down (from nginx) and up (to http-hello --upload-sink) through
# http-get beside curl, same run: medians, time ratio, peak RSS, SHA-256.
bench-transfer: deps
	@$(call install-debs,time)
	$(call build-release,http-get http-hello)
	Benchmarks/http-transfer.sh

# The standard workloads on greenlets, threads and processes: tables,
# charts (.build/compare/*.svg) and the README's summary table.
compare: bench-deps
	$(call build-release,green-compare)
	Benchmarks/compare-models.sh

# Fault runs that must leave fds, greenlet stacks and RSS at their
# baseline: 1,000,000 spawn/kill cycles, 100,000 connects that time out,
# and an HTTP server facing 10,000 connections at once, slowloris, an
# idle-connection storm beyond its fd limit, and resets mid-request and
# mid-response (the last two with normal clients' p99 under 100 ms).
faults: deps
	$(call build-release,green-faults)
	./.build/release/green-faults spawn-kill --cycles 1000000
	./.build/release/green-faults timed-connects --count 100000 --concurrency 1000
	./.build/release/green-faults http-connections --count 10000
	./.build/release/green-faults slowloris --slow 1000 --seconds 6 --header-timeout 3
	./.build/release/green-faults fd-storm --fd-limit 512 --storm 768 --seconds 5 --rounds 3
	./.build/release/green-faults resets --count 2000

# The whole suite under AddressSanitizer (LeakSanitizer included) and under
# ThreadSanitizer, each in its own build directory, with every context
# switch annotated for the tool (GREEN_SANITIZE; Sources/CGreenContext/
# sanitizers.c). Any report fails the run. lld links: gold warns about
# every ASan symbol. About 2 minutes each here, build included.
# SharedCrawlTests is left out (SANITIZE_SKIP): crawls by several crawl
# processes through a Redis server, half a minute of real-time waits that
# the other suites' runs cover; the frontier code runs in the other modes.
SANITIZE_SKIP := SharedCrawlTests
SANITIZE_FLAGS := -Xswiftc -use-ld=lld --skip '$(SANITIZE_SKIP)'
sanitize: test-venv sanitize-address sanitize-thread

sanitize-address: deps
	GREEN_SANITIZE=address LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/sanitizers/lsan.supp \
	  $(SWIFT) test --sanitize=address --scratch-path .build-asan $(SANITIZE_FLAGS)

sanitize-thread: deps
	GREEN_SANITIZE=thread $(SWIFT) test --sanitize=thread --scratch-path .build-tsan $(SANITIZE_FLAGS)

# Example programs under Valgrind's memcheck, greenlet stacks registered
# with it (GREEN_VALGRIND=1): any error or definite leak fails the run.
# Valgrind 3.19 cannot read DWARF 5, hence version 4. (The toolchain's
# runtime shows "possibly lost" blocks: its metadata caches.)
VALGRIND_BUILD := .build-valgrind
VALGRIND_FLAGS := -c release --scratch-path $(VALGRIND_BUILD) -Xswiftc -dwarf-version=4 -Xcc -gdwarf-4
VALGRIND := valgrind --error-exitcode=3 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --quiet
valgrind: deps
	@$(call install-debs,valgrind)
	for p in sleepers producer-consumer crawl; do GREEN_VALGRIND=1 $(SWIFT) build $(VALGRIND_FLAGS) --product $$p || exit 1; done
	$(VALGRIND) $(VALGRIND_BUILD)/release/sleepers --count 2000
	$(VALGRIND) $(VALGRIND_BUILD)/release/producer-consumer --items 20000
	$(VALGRIND) $(VALGRIND_BUILD)/release/crawl --demo --demo-pages 100 --timeout 5 --output /dev/null

# The libFuzzer targets (Fuzz/), 1,000,000 runs each from the seed corpus
# (FUZZ_RUNS=N for more or fewer); about five minutes here.
FUZZ_RUNS ?= 1000000
fuzz: deps
	Fuzz/run-fuzzers.sh --runs $(FUZZ_RUNS)

ci: test test-compact test-ucontext check-aarch64 demo demo-distributed bench-smoke examples-smoke faults

clean:
	rm -rf .build $(UCONTEXT_BUILD)
