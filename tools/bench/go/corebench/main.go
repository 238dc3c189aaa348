// Command corebench is the Go peer of tools/bench/core_bench.c: it runs one
// of the core (runtime) workloads with goroutines and channels and prints one
// result line in the same format as the C program, so tools/bench/run-core
// can alternate the two and compare them.
//
// Every workload is written the way a good Go developer would write it:
// plain goroutines, sync.WaitGroup, channels, select and context from the
// standard library, with nothing slowed down on purpose and nothing tuned
// beyond setting GOMAXPROCS to the processor count the workload names.
//
// Usage:
//
//	corebench WORKLOAD [N]
//
// WORKLOAD is one of spawn, parked, yield, pingpong-1, pingpong-2, chan-1,
// chan-2, chan-4 and select; N overrides the workload's size (tasks, switches,
// round trips or items).  The result line reads
//
//	corebench name=chan-2 impl=go unit=items/s better=higher value=... n=...
//
// and the program exits non-zero when a workload's own check fails (an item
// lost or duplicated, a round trip returning the wrong value).
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// result is one measurement: the figure, its unit and which way is better.
type result struct {
	unit   string
	better string
	value  float64
	n      int
}

type workload struct {
	procs int
	size  int
	run   func(n int) (result, error)
}

// spawnBatch bounds the goroutines alive at once in the spawn workload.
const spawnBatch = 10000

// chanCap is the buffer of the chan and select workloads' channels.
const chanCap = 1024

var workloads = map[string]workload{
	"spawn":      {2, 1000000, spawn},
	"parked":     {2, 100000, parked},
	"yield":      {1, 2000000, yield},
	"pingpong-1": {1, 1000000, pingpong},
	"pingpong-2": {2, 1000000, pingpong},
	"chan-1":     {2, 10000000, chanWorkload(1)},
	"chan-2":     {2, 10000000, chanWorkload(2)},
	"chan-4":     {2, 10000000, chanWorkload(4)},
	"select":     {2, 4000000, selectWorkload},
}

// perOp divides an elapsed time by a count of operations, in nanoseconds.
func perOp(d time.Duration, ops int) float64 {
	return float64(d.Nanoseconds()) / float64(ops)
}

// spawn starts n goroutines in waves of spawnBatch and waits for each wave,
// so no more than spawnBatch are alive at once.
func spawn(n int) (result, error) {
	var wg sync.WaitGroup
	start := time.Now()

	for done := 0; done < n; done += spawnBatch {
		k := spawnBatch
		if n-done < k {
			k = n - done
		}
		wg.Add(k)
		for i := 0; i < k; i++ {
			go func() {
				wg.Done()
			}()
		}
		wg.Wait()
	}

	return result{"ns/task", "lower", perOp(time.Since(start), n), n}, nil
}

// residentBytes reads VmRSS from /proc/self/status, the figure the C side
// reads too, so both count the same pages.
func residentBytes() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// parked leaves n goroutines blocked on one channel receive and reports how
// much resident memory they added, per goroutine.
func parked(n int) (result, error) {
	ch := make(chan struct{})
	var ready, exited sync.WaitGroup
	before, err := residentBytes()
	if err != nil {
		return result{}, err
	}

	ready.Add(n)
	exited.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			ready.Done()
			<-ch
			exited.Done()
		}()
	}
	ready.Wait()

	after, err := residentBytes()
	if err != nil {
		return result{}, err
	}
	close(ch)
	exited.Wait()

	perTask := float64(after-before) / float64(n)
	return result{"bytes/task", "lower", perTask, n}, nil
}

// yield has two goroutines hand the one processor back and forth with
// runtime.Gosched; n is the total number of switches.
func yield(n int) (result, error) {
	var wg sync.WaitGroup
	per := n / 2
	start := time.Now()

	wg.Add(2)
	for g := 0; g < 2; g++ {
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()

	return result{"ns/switch", "lower", perOp(time.Since(start), 2*per), 2 * per}, nil
}

// pingpong sends a value to an echoing goroutine over an unbuffered channel
// and waits for it to come back on another, n times.
func pingpong(n int) (result, error) {
	ping := make(chan int64)
	pong := make(chan int64)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()

	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- int64(i)
		if v := <-pong; v != int64(i) {
			return result{}, fmt.Errorf("sent %d, got back %d", i, v)
		}
	}
	elapsed := time.Since(start)
	close(ping)

	return result{"ns/roundtrip", "lower", perOp(elapsed, n), n}, nil
}

// expectedSum is the sum of the items 1..n that the chan and select
// workloads send, the figure the receivers' sum is checked against.
func expectedSum(n int) int64 {
	return int64(n) * int64(n+1) / 2
}

// chanWorkload moves n int64 items through one buffered channel from p
// producers to p consumers.
func chanWorkload(p int) func(n int) (result, error) {
	return func(n int) (result, error) {
		n -= n % p
		ch := make(chan int64, chanCap)
		var producers, consumers sync.WaitGroup
		var sum, count int64
		start := time.Now()

		producers.Add(p)
		for i := 0; i < p; i++ {
			go func(first int) {
				defer producers.Done()
				for v := first; v <= n; v += p {
					ch <- int64(v)
				}
			}(i + 1)
		}
		consumers.Add(p)
		for i := 0; i < p; i++ {
			go func() {
				defer consumers.Done()
				var s, c int64
				for v := range ch {
					s += v
					c++
				}
				atomic.AddInt64(&sum, s)
				atomic.AddInt64(&count, c)
			}()
		}
		producers.Wait()
		close(ch)
		consumers.Wait()
		elapsed := time.Since(start)

		if count != int64(n) || sum != expectedSum(n) {
			return result{}, fmt.Errorf("received %d items summing to %d, "+
				"sent %d summing to %d", count, sum, n, expectedSum(n))
		}
		rate := float64(n) / elapsed.Seconds()
		return result{"items/s", "higher", rate, n}, nil
	}
}

// selectWorkload has one consumer select over four buffered channels, each
// fed by its own producer, and over a context's Done channel, which a real
// consumer would watch to stop early.
func selectWorkload(n int) (result, error) {
	const producers = 4
	n -= n % producers
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var chans [producers]chan int64
	for i := range chans {
		chans[i] = make(chan int64, chanCap)
	}
	start := time.Now()

	for i := range chans {
		go func(ch chan<- int64, first int) {
			for v := first; v <= n; v += producers {
				ch <- int64(v)
			}
		}(chans[i], i+1)
	}

	var sum int64
	for got := 0; got < n; got++ {
		select {
		case v := <-chans[0]:
			sum += v
		case v := <-chans[1]:
			sum += v
		case v := <-chans[2]:
			sum += v
		case v := <-chans[3]:
			sum += v
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
	}
	elapsed := time.Since(start)

	if sum != expectedSum(n) {
		return result{}, fmt.Errorf("received items summing to %d, sent %d",
			sum, expectedSum(n))
	}
	return result{"ns/item", "lower", perOp(elapsed, n), n}, nil
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: corebench WORKLOAD [N]")
		os.Exit(2)
	}
	name := os.Args[1]
	w, ok := workloads[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "corebench: unknown workload %q\n", name)
		os.Exit(2)
	}
	n := w.size
	if len(os.Args) == 3 {
		v, err := strconv.Atoi(os.Args[2])
		if err != nil || v < 4 {
			fmt.Fprintf(os.Stderr, "corebench: bad size %q\n", os.Args[2])
			os.Exit(2)
		}
		n = v
	}

	runtime.GOMAXPROCS(w.procs)
	r, err := w.run(n)
	if err != nil {
		fmt.Fprintf(os.Stderr, "corebench: %s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("corebench name=%s impl=go unit=%s better=%s value=%.1f n=%d\n",
		name, r.unit, r.better, r.value, r.n)
}
