package main

// The sync, queue and pool figures of green-bench, measured for goroutines
// the way a Go programmer would write each one (GOMAXPROCS=1, as elsewhere).

import (
	"sync"
	"time"
)

// pingPongNs: two goroutines pass an int back and forth over two channels
// of capacity `capacity` (0: unbuffered), per message. green-bench's
// channel_pingpong_ns is the unbuffered case, queue_pingpong_ns the
// buffered one (a Go channel is Go's queue).
func pingPongNs(rounds, capacity int) float64 {
	there := make(chan int, capacity)
	back := make(chan int, capacity)
	go func() {
		for v := range there {
			back <- v + 1
		}
	}()
	sum := 0
	t0 := time.Now()
	for i := 0; i < rounds; i++ {
		there <- i
		sum += <-back
	}
	ns := float64(time.Since(t0).Nanoseconds()) / float64(rounds*2)
	close(there)
	if sum != rounds*(rounds+1)/2 {
		fail("ping-pong lost messages")
	}
	return ns
}

// lockUncontendedNs: sync.Mutex Lock + Unlock with no other goroutine.
func lockUncontendedNs(count int) float64 {
	var mu sync.Mutex
	n := 0
	t0 := time.Now()
	for i := 0; i < count; i++ {
		mu.Lock()
		n++
		mu.Unlock()
	}
	ns := float64(time.Since(t0).Nanoseconds()) / float64(count)
	if n != count {
		fail("lock count")
	}
	return ns
}

// poolMapNs: 100,000 trivial items with at most 100 in flight, the usual
// Go shape (a goroutine per item, a buffered channel as the semaphore, a
// WaitGroup, results by index); per item.
func poolMapNs(count int) float64 {
	results := make([]int, count)
	sem := make(chan struct{}, 100)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < count; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = i * 2
			<-sem
		}(i)
	}
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds()) / float64(count)
	if results[count-1] != (count-1)*2 {
		fail("pool map result")
	}
	return ns
}
