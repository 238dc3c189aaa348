// Command router is the Go peer of the router benchmarks
// (tools/bench/run-router): the same job as tools/bench/router_sluice.c,
// done the way a good Go developer would do it with the standard library,
// not slowed down on purpose and not tuned beyond what such a developer
// would reach for:
//
//   - net.Listen and a goroutine per connection reading lines with a 64 KiB
//     bufio.Reader (ReadSlice, so a line is not copied before it is parsed);
//   - one string conversion per line, with the kind, key and payload as
//     substrings of it (two allocations per event: the string and the
//     *Event), and backslash escapes undone only on lines that have one;
//   - a work queue built like client-go's workqueue.Type: a FIFO slice of
//     keys, a dirty set, a processing set, one sync.Mutex and a sync.Cond,
//     with the same rules (a key is queued at most once, a key being
//     processed is not handed out again but re-queued by Done if it was
//     added meanwhile).  Where a client-go controller would keep the
//     latest object in an informer's store and queue only the key, the
//     dirty set here maps the key to its latest event, which folds
//     "latest wins" under the same lock instead of a second one;
//   - worker goroutines that Get, reconcile and Done.
//
// GOMAXPROCS and GOGC keep their defaults.
//
// Usage:
//
//	router serve --keys K --events N [--workers W] [--work-ns NS]
//	             [--latency] [--timeout S]
//	router wq --keys K --events N [--workers W] [--timeout S]
//
// serve listens on 127.0.0.1 (a free port, printed first as "port=P
// pid=PID") for router_load's lines.  wq leaves out the network: one
// goroutine builds each line and adds its event to the queue, as a
// connection's goroutine would.
//
// Every reconcile checks the version it carries against the last one
// reconciled for its key, and a key converges when its final version
// (N / K) arrives.  When all have, the program prints one line in the
// format router_sluice prints (see there), with impl=go, and exits 0; a run
// that does not converge within --timeout seconds, or that saw a version
// out of order, prints "FAILED" in that line and exits 1.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	lineLen     = 64
	keyDigits   = 7
	verDigits   = 8
	stampDigits = 19
)

// Event is one decoded line.
type Event struct {
	Kind    string
	Key     string
	Payload string
}

// Queue is a client-go style work queue that also folds: each key pending
// in dirty carries the latest event added for it.
type Queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	queue      []string
	dirty      map[string]*Event
	processing map[string]struct{}
	shutdown   bool
	adds       uint64
	folds      uint64
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	q := &Queue{
		dirty:      make(map[string]*Event),
		processing: make(map[string]struct{}),
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add folds ev into its key's pending event, or queues the key.
func (q *Queue) Add(ev *Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	q.adds++
	if _, ok := q.dirty[ev.Key]; ok {
		q.dirty[ev.Key] = ev
		q.folds++
		return
	}
	q.dirty[ev.Key] = ev
	if _, ok := q.processing[ev.Key]; ok {
		return
	}
	q.queue = append(q.queue, ev.Key)
	q.cond.Signal()
}

// Get waits for a key and hands it out with its latest event; ok is false
// once the queue is shut down and empty.
func (q *Queue) Get() (key string, ev *Event, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if len(q.queue) == 0 {
		return "", nil, false
	}
	key = q.queue[0]
	q.queue[0] = ""
	q.queue = q.queue[1:]
	ev = q.dirty[key]
	delete(q.dirty, key)
	q.processing[key] = struct{}{}
	return key, ev, true
}

// Done ends the processing of key, queueing it again if it was added
// meanwhile.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if _, ok := q.dirty[key]; ok {
		q.queue = append(q.queue, key)
		q.cond.Signal()
	}
}

// ShutDown makes Get return false once the queue is empty.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	q.cond.Broadcast()
}

var errBadLine = errors.New("a line is KIND SP KEY [SP PAYLOAD]")

// parseLine decodes one line (without its LF) into an event.
func parseLine(line []byte) (*Event, error) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, errBadLine
	}
	s := string(line)
	if strings.IndexByte(s, '\\') >= 0 {
		return parseEscaped(s)
	}
	ev := &Event{Kind: s[:sp1]}
	rest := s[sp1+1:]
	if sp2 := strings.IndexByte(rest, ' '); sp2 >= 0 {
		ev.Key, ev.Payload = rest[:sp2], rest[sp2+1:]
	} else {
		ev.Key = rest
	}
	if ev.Key == "" {
		return nil, errBadLine
	}
	return ev, nil
}

// parseEscaped is the slow path for lines with backslash escapes.
func parseEscaped(s string) (*Event, error) {
	fields := strings.SplitN(s, " ", 3)
	if len(fields) < 2 || fields[0] == "" || fields[1] == "" {
		return nil, errBadLine
	}
	for i, f := range fields {
		u, err := unescape(f)
		if err != nil {
			return nil, err
		}
		fields[i] = u
	}
	ev := &Event{Kind: fields[0], Key: fields[1]}
	if len(fields) == 3 {
		ev.Payload = fields[2]
	}
	return ev, nil
}

func unescape(f string) (string, error) {
	if strings.IndexByte(f, '\\') < 0 {
		return f, nil
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '\\' {
			b.WriteByte(f[i])
			continue
		}
		if i+1 >= len(f) {
			return "", errors.New("backslash at end of line")
		}
		i++
		switch f[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 's':
			b.WriteByte(' ')
		case 'x':
			if i+2 >= len(f) {
				return "", errors.New("bad escape \\x")
			}
			var v byte
			for _, c := range []byte(f[i+1 : i+3]) {
				switch {
				case c >= '0' && c <= '9':
					v = v<<4 | (c - '0')
				case c >= 'a' && c <= 'f':
					v = v<<4 | (c - 'a' + 10)
				case c >= 'A' && c <= 'F':
					v = v<<4 | (c - 'A' + 10)
				default:
					return "", errors.New("bad escape \\x")
				}
			}
			b.WriteByte(v)
			i += 2
		default:
			return "", errors.New("bad escape")
		}
	}
	return b.String(), nil
}

// Latency histogram, with router_sluice.c's buckets: one per value below
// 32 ns, then 32 per power of two.
const (
	histSub     = 32
	histBuckets = histSub + 59*histSub
)

type histogram [histBuckets]uint64

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	e := 63 - bits.LeadingZeros64(v)
	return histSub + (e-5)*histSub + int((v>>(e-5))&(histSub-1))
}

func histValue(i int) float64 {
	if i < histSub {
		return float64(i)
	}
	e := (i-histSub)/histSub + 5
	mant := (i - histSub) % histSub
	return float64(uint64(histSub+mant)<<(e-5)) + float64(uint64(1)<<(e-5))/2
}

// workerCount is one worker's reconcile count, alone on its cache line.
type workerCount struct {
	n uint64
	_ [56]byte
}

// bench holds the run's options and what the reconciles found.
type bench struct {
	keys, events uint64
	workers      int
	workNs       time.Duration
	latency      bool
	final        uint32
	last         []uint32 // per key; a key is reconciled by one worker at a time

	converged   atomic.Uint64
	bad         atomic.Uint64
	convergedAt atomic.Int64
	done        chan struct{}
	reconciles  []workerCount
	hists       []histogram
}

func parseDigits(s string) (uint64, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// reconcile checks one key's latest event, as router_sluice's sink does.
func (b *bench) reconcile(worker int, ev *Event) {
	b.reconciles[worker].n++
	var key, ver uint64
	ok := len(ev.Key) == 1+keyDigits && len(ev.Payload) >= verDigits
	if ok {
		key, ok = parseDigits(ev.Key[1:])
	}
	if ok && key < b.keys {
		ver, ok = parseDigits(ev.Payload[:verDigits])
	}
	if !ok || key >= b.keys || ver <= uint64(b.last[key]) ||
		ver > uint64(b.final) {
		b.bad.Add(1)
		return
	}
	b.last[key] = uint32(ver)

	if b.latency && len(ev.Payload) >= verDigits+1+stampDigits {
		stamp, sok := parseDigits(ev.Payload[verDigits+1 : verDigits+1+stampDigits])
		now := uint64(time.Now().UnixNano())
		if sok && now > stamp {
			b.hists[worker][histIndex(now-stamp)]++
		}
	}
	if b.workNs > 0 {
		for end := time.Now().Add(b.workNs); time.Now().Before(end); {
		}
	}
	if uint32(ver) == b.final && b.converged.Add(1) == b.keys {
		b.convergedAt.Store(time.Now().UnixNano())
		close(b.done)
	}
}

func (b *bench) worker(q *Queue, id int, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		key, ev, ok := q.Get()
		if !ok {
			return
		}
		b.reconcile(id, ev)
		q.Done(key)
	}
}

func serveConn(c net.Conn, q *Queue, bad *atomic.Uint64) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// Longer than the buffer: skip to the end of the line.
			bad.Add(1)
			for err == bufio.ErrBufferFull {
				_, err = r.ReadSlice('\n')
			}
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		if len(line) > 0 {
			if ev, perr := parseLine(line); perr == nil {
				q.Add(ev)
			} else {
				bad.Add(1)
			}
		}
		if err != nil {
			if err != io.EOF {
				fmt.Fprintln(os.Stderr, "router: read:", err)
			}
			return
		}
	}
}

// feed is wq mode's producer: it builds each line as router_load does and
// adds its event.
func (b *bench) feed(q *Queue, start, added *int64, fed chan<- struct{}) {
	defer close(fed)
	line := []byte("set k0000000 00000000 0000000000000000000 xxxxxxxxxxxxxxxxxxxxx")
	*start = time.Now().UnixNano()
	for i := uint64(0); i < b.events; i++ {
		key, ver := i%b.keys, i/b.keys+1
		for d := keyDigits; d >= 1; d, key = d-1, key/10 {
			line[4+d] = byte('0' + key%10)
		}
		for d := verDigits - 1; d >= 0; d, ver = d-1, ver/10 {
			line[13+d] = byte('0' + ver%10)
		}
		ev, err := parseLine(line)
		if err != nil {
			panic(err)
		}
		q.Add(ev)
	}
	*added = time.Now().UnixNano()
}

func cpuAndRSS() (float64, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 {
		return float64(t.Sec) + float64(t.Usec)/1e6
	}
	return tv(ru.Utime) + tv(ru.Stime), ru.Maxrss
}

func (b *bench) printLatency() {
	var sum histogram
	var total uint64
	for w := range b.hists {
		for i, n := range b.hists[w] {
			sum[i] += n
			total += n
		}
	}
	fmt.Printf(" samples=%d", total)
	pcts := []float64{0.50, 0.99, 0.999}
	names := []string{"p50_us", "p99_us", "p999_us"}
	var seen uint64
	p := 0
	for i := 0; i < histBuckets && p < len(pcts); i++ {
		seen += sum[i]
		for p < len(pcts) && total > 0 && float64(seen) >= pcts[p]*float64(total) {
			fmt.Printf(" %s=%.1f", names[p], histValue(i)/1e3)
			p++
		}
	}
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "serve" && os.Args[1] != "wq") {
		fmt.Fprintln(os.Stderr, "usage: router serve|wq --keys K --events N "+
			"[--workers W] [--work-ns NS] [--latency] [--timeout S]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	keys := fs.Uint64("keys", 10000, "keys")
	events := fs.Uint64("events", 5000000, "events in all")
	workers := fs.Int("workers", 4, "worker goroutines")
	workNs := fs.Int64("work-ns", 0, "busy work per reconcile, ns")
	latency := fs.Bool("latency", false, "record send-to-reconcile latency")
	timeout := fs.Int("timeout", 120, "seconds to wait for convergence")
	fs.Parse(os.Args[2:])
	if *keys == 0 || *workers <= 0 || *events%*keys != 0 || *events / *keys > 99999999 {
		fmt.Fprintln(os.Stderr, "router: --events must be a multiple of --keys")
		os.Exit(2)
	}

	b := &bench{
		keys: *keys, events: *events, workers: *workers,
		workNs: time.Duration(*workNs), latency: *latency,
		final: uint32(*events / *keys), last: make([]uint32, *keys),
		done: make(chan struct{}), reconciles: make([]workerCount, *workers),
	}
	if b.latency {
		b.hists = make([]histogram, *workers)
	}
	q := NewQueue()
	var wg sync.WaitGroup
	for w := 0; w < b.workers; w++ {
		wg.Add(1)
		go b.worker(q, w, &wg)
	}

	var start, added int64
	var badLines atomic.Uint64
	fed := make(chan struct{})
	if mode == "wq" {
		go b.feed(q, &start, &added, fed)
	} else {
		close(fed)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "router:", err)
			os.Exit(1)
		}
		fmt.Printf("port=%d pid=%d\n", ln.Addr().(*net.TCPAddr).Port, os.Getpid())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go serveConn(c, q, &badLines)
			}
		}()
	}

	failed := false
	deadline := time.After(time.Duration(*timeout) * time.Second)
	select {
	case <-b.done:
	case <-deadline:
		failed = true
	}
	if !failed {
		<-fed // the feeding goroutine's times are read below
	}
	cpu, rss := cpuAndRSS()
	q.ShutDown()
	if !failed {
		wg.Wait()
	}
	var reconciles uint64
	for _, c := range b.reconciles {
		reconciles += c.n
	}
	bad := b.bad.Load() + badLines.Load()
	failed = failed || bad != 0
	status := ""
	if failed {
		status = " FAILED"
	}
	fmt.Printf("router impl=go%s mode=%s events=%d keys=%d workers=%d "+
		"reconciles=%d converged_ns=%d cpu=%.3f rss_kb=%d bad=%d",
		status, mode, b.events, b.keys, b.workers, reconciles,
		b.convergedAt.Load(), cpu, rss, bad)
	if mode == "wq" {
		fmt.Printf(" start_ns=%d added_ns=%d", start, added)
	}
	if b.latency {
		b.printLatency()
	}
	if failed {
		fmt.Printf(" keys_converged=%d", b.converged.Load())
	}
	fmt.Println()
	if failed {
		os.Exit(1)
	}
}
