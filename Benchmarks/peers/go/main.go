// go-peer: the figures of green-bench (Sources/GreenBench/GreenBench.swift),
// measured the same way for goroutines, so the two can be set side by side.
//
// Output is one JSON object with green-bench's key names where a figure
// applies. Each figure is the median of several runs, as in green-bench.
//
// The whole process runs with GOMAXPROCS(1): swift-green schedules all its
// greenlets on one thread, so a single P is the like-for-like comparison
// (and keeps the idle-P wakeups of a multi-P scheduler out of the figures).
//
// Standard library only.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	quick := flag.Bool("quick", false, "a shortened run for smoke tests (figures are rough)")
	runsFlag := flag.Int("runs", 0, "runs per figure; the median is reported (default 7, 3 with --quick)")
	only := flag.String("only", "", "measure only the figures whose key contains this text")
	maxParked := flag.Int("max-parked", 0, "goroutines to park for max_parked_greenlets (default 1,000,000, 100,000 with --quick)")
	// Output is always JSON; the flag is accepted so the peers share green-bench's command line.
	flag.Bool("json", true, "print one JSON object (always on)")
	// Internal: one parked-memory measurement in a fresh process (see parkedInChild).
	childParked := flag.Int("child-parked", 0, "")
	echoPort := flag.Int("echo-port", -1, "run the echo server on this port (0: any) instead of the figures")
	echoProcs := flag.Int("echo-procs", 1, "GOMAXPROCS for the echo and HTTP servers")
	httpPort := flag.Int("http-port", -1, "run the net/http hello server on this port (0: any) instead of the figures")
	tlsCert := flag.String("tls-cert", "", "with -http-port: serve HTTPS with this certificate (PEM)")
	tlsKey := flag.String("tls-key", "", "the key of -tls-cert (PEM)")
	flag.Parse()

	if *echoPort >= 0 {
		runEchoServer(*echoPort, *echoProcs)
		return
	}
	if *httpPort >= 0 {
		runHTTPServer(*httpPort, *echoProcs, *tlsCert, *tlsKey)
		return
	}

	runtime.GOMAXPROCS(1)

	if *childParked > 0 {
		before, after := parkedRSS(*childParked)
		fmt.Printf("%d %d\n", before, after)
		return
	}

	runs := *runsFlag
	if runs <= 0 {
		runs = 7
		if *quick {
			runs = 3
		}
	}
	scale := 1
	if *quick {
		scale = 10
	}
	target := *maxParked
	if target <= 0 {
		target = 1_000_000
		if *quick {
			target = 100_000
		}
	}

	var out figures
	wanted := func(key string) bool { return strings.Contains(key, *only) }

	switches := 2_000_000 / scale
	if wanted("switch_ns") {
		out.add("switch_ns", median(runs, func() float64 { return channelSwitchNs(switches) }))
	}
	if wanted("yield_ns") {
		out.add("yield_ns", median(runs, func() float64 { return yieldNs(1_000_000 / scale) }))
	}
	if wanted("spawn_join_ns") {
		out.add("spawn_join_ns", median(runs, func() float64 { return spawnJoinNs(100_000 / scale) }))
	}
	rounds := 500_000 / scale
	if wanted("queue_pingpong_ns") {
		out.add("queue_pingpong_ns", median(runs, func() float64 { return pingPongNs(rounds, 1024) }))
	}
	if wanted("channel_pingpong_ns") {
		out.add("channel_pingpong_ns", median(runs, func() float64 { return pingPongNs(rounds, 0) }))
	}
	if wanted("lock_uncontended_ns") {
		out.add("lock_uncontended_ns", median(runs, func() float64 { return lockUncontendedNs(2_000_000 / scale) }))
	}
	if wanted("pool_map_ns_per_item") {
		out.add("pool_map_ns_per_item", median(runs, func() float64 { return poolMapNs(100_000 / scale) }))
	}
	parkedRuns := 3
	if *quick {
		parkedRuns = 1
	}
	if wanted("parked_bytes_per_greenlet") {
		n := 100_000 / scale
		out.add("parked_bytes_per_greenlet", median(parkedRuns, func() float64 {
			before, after := mustParkedInChild(n)
			return float64(after-before) / float64(n)
		}))
	}
	if wanted("compact_parked_bytes_per_greenlet") {
		// Go has one kind of goroutine: the same measurement at the scale
		// of green-bench's compact figure, 1,000,000 parked.
		n := 1_000_000 / scale
		out.add("compact_parked_bytes_per_greenlet", median(parkedRuns, func() float64 {
			before, after := mustParkedInChild(n)
			return float64(after-before) / float64(n)
		}))
	}
	if wanted("max_parked") {
		_, after := mustParkedInChild(target)
		out.add("max_parked_greenlets", float64(target))
		out.add("max_parked_rss_bytes", float64(after))
	}

	note := fmt.Sprintf("%s, GOMAXPROCS=1; switch_ns is one handoff over an unbuffered channel "+
		"(channel send/receive and scheduler included, not a bare context switch); "+
		"parked figures measured in a fresh child process per run, goroutines blocked on one channel "+
		"(compact_parked_bytes_per_greenlet: the same with 1,000,000 goroutines, Go's only kind); "+
		"queue_pingpong_ns uses buffered channels (capacity 1024), channel_pingpong_ns unbuffered ones; "+
		"pool_map_ns_per_item is a goroutine per item with a 100-slot semaphore channel and a WaitGroup",
		runtime.Version())
	fmt.Println(out.json(runs, *quick, note))
}

// figures keeps insertion order so the JSON reads like green-bench's.
type figures struct {
	keys   []string
	values []float64
}

func (f *figures) add(key string, v float64) {
	f.keys = append(f.keys, key)
	f.values = append(f.values, v)
}

func (f *figures) json(runs int, quick bool, note string) string {
	parts := make([]string, 0, len(f.keys)+3)
	for i, k := range f.keys {
		parts = append(parts, fmt.Sprintf("%q: %s", k, format(f.values[i])))
	}
	parts = append(parts, fmt.Sprintf("\"runs\": %d", runs), fmt.Sprintf("\"quick\": %t", quick),
		fmt.Sprintf("\"note\": %s", strconv.Quote(note)))
	return "{" + strings.Join(parts, ", ") + "}"
}

// format matches green-bench: whole numbers for large or integral values,
// otherwise two decimals (truncated).
func format(v float64) string {
	if v >= 1000 || v == float64(int64(v)) {
		return strconv.FormatInt(int64(v+0.5), 10)
	}
	return strconv.FormatFloat(float64(int64(v*100))/100, 'f', -1, 64)
}

func median(runs int, f func() float64) float64 {
	if runs < 1 {
		runs = 1
	}
	xs := make([]float64, 0, runs)
	for i := 0; i < runs; i++ {
		xs = append(xs, f())
	}
	sort.Float64s(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// channelSwitchNs is the nearest Go has to green-bench's switch_ns: Go
// exposes no bare context switch, so the main goroutine and a peer hand
// control back and forth over two unbuffered channels. With one P each
// send parks the sender and runs the receiver, so one handoff is one
// goroutine switch plus the channel operation.
func channelSwitchNs(switches int) float64 {
	roundTrips := switches / 2
	ping := make(chan struct{})
	pong := make(chan struct{})
	go func() {
		for range ping {
			pong <- struct{}{}
		}
	}()
	t0 := time.Now()
	for i := 0; i < roundTrips; i++ {
		ping <- struct{}{}
		<-pong
	}
	ns := float64(time.Since(t0).Nanoseconds()) / float64(roundTrips*2)
	close(ping)
	return ns
}

// yieldNs: two goroutines alternating runtime.Gosched(), as green-bench's
// two greenlets alternate Green.sleep(0). Both are parked on a closed-later
// channel first so the clock starts with both ready, as with the Event there.
func yieldNs(yields int) float64 {
	perGoroutine := yields / 2
	start := make(chan struct{})
	var wg sync.WaitGroup
	body := func() {
		defer wg.Done()
		<-start
		for i := 0; i < perGoroutine; i++ {
			runtime.Gosched()
		}
	}
	wg.Add(2)
	go body()
	go body()
	runtime.Gosched() // with one P, both run up to their receive and park
	t0 := time.Now()
	close(start)
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(perGoroutine*2)
}

// spawnJoinNs: spawn one goroutine that returns at once and wait for it,
// one at a time, like green-bench's spawn { () } followed by join().
func spawnJoinNs(count int) float64 {
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < count; i++ {
		wg.Add(1)
		go wg.Done()
		wg.Wait()
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(count)
}

func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// parkedRSS parks count goroutines on one channel (closing it is Go's
// broadcast, as Event.set is swift-green's), and returns the RSS before
// spawning and once all are parked, as green-bench's parkedBytes does.
func parkedRSS(count int) (before, after int64) {
	release := make(chan struct{})
	var started int64
	var wg sync.WaitGroup
	before = residentBytes()
	wg.Add(count)
	for i := 0; i < count; i++ {
		go func() {
			defer wg.Done()
			atomic.AddInt64(&started, 1)
			<-release
		}()
	}
	// Let every goroutine run up to its receive.
	for atomic.LoadInt64(&started) < int64(count) {
		runtime.Gosched()
	}
	after = residentBytes()
	close(release)
	wg.Wait()
	return before, after
}

// mustParkedInChild runs parkedRSS in a fresh copy of this program. Go
// never frees a goroutine's descriptor (it is kept on a free list for
// reuse) and keeps freed stack memory in the heap, so a second measurement
// in the same process would reuse the first one's memory and show almost
// no growth. A fresh process per run measures what the first run in
// green-bench measures.
func mustParkedInChild(count int) (before, after int64) {
	self, err := os.Executable()
	if err != nil {
		fail("cannot find own executable: %v", err)
	}
	cmd := exec.Command(self, "-child-parked", strconv.Itoa(count))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		fail("parked child (%d goroutines) failed: %v", count, err)
	}
	if _, err := fmt.Sscanf(string(out), "%d %d", &before, &after); err != nil {
		fail("parked child printed %q: %v", out, err)
	}
	return before, after
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-peer: "+format+"\n", args...)
	os.Exit(1)
}
