// Command ioserver is the Go peer of the io benchmarks (tools/bench/run-io):
// a TCP server that counts the newline-terminated records arriving on any of
// its connections, beside the C servers in tools/bench/io_peers.c and the
// Sluice server in tools/bench/io_sluice.c.
//
// It is written the way a good Go developer would write such a server, not
// slowed down on purpose: net.Listen, a goroutine per connection, and a
// bufio.Reader per connection from which each record is taken with
// ReadSlice('\n'), which hands out a view into the reader's buffer without
// allocating and finds the newline with the standard library's vectorised
// byte search.  The reader's buffer is 64 KiB, so a busy connection reads as
// much per system call as the C peers do; Go leaves a fresh buffer's pages
// untouched until data arrives, so an idle connection does not pay for it.
// GOMAXPROCS is left at its default (one per CPU).
//
// Usage:
//
//	ioserver [--port P] [--records N] [--conns N]
//
// It listens on 127.0.0.1:P (0 picks a free port) and prints the same lines
// as the C servers:
//
//	port=P pid=PID                    first, once it listens
//	ioserver impl=go open=N           once --conns N connections are open
//	ioserver impl=go records=N bytes=B seconds=S rate=R cpu=C
//
// The last line comes when --records N records have arrived, and the process
// then exits.  seconds runs from the first record received to the last; cpu
// is the process's user and system time over the same span.  Without
// --records it serves until killed.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// readerSize is each connection's bufio.Reader buffer, the C peers' read size.
const readerSize = 64 << 10

// tally is what every connection adds to.
type tally struct {
	records   atomic.Uint64
	bytes     atomic.Uint64
	open      atomic.Uint64
	wantRecs  uint64
	wantConns uint64

	startOnce sync.Once
	start     time.Time
	cpuStart  float64
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// firstByte starts the clock on the first record that arrives.
func (t *tally) firstByte() {
	t.startOnce.Do(func() {
		t.start = time.Now()
		t.cpuStart = cpuSeconds()
	})
}

// add counts a connection's records since its last call; the call that
// completes the count prints the result and ends the process.
func (t *tally) add(records, n uint64) {
	t.bytes.Add(n)
	after := t.records.Add(records)
	before := after - records
	if t.wantRecs == 0 || before >= t.wantRecs || after < t.wantRecs {
		return
	}
	secs := time.Since(t.start).Seconds()
	cpu := cpuSeconds() - t.cpuStart
	rate := 0.0
	if secs > 0 {
		rate = float64(after) / secs
	}
	fmt.Printf("ioserver impl=go records=%d bytes=%d seconds=%.6f "+
		"rate=%.0f cpu=%.6f\n", after, t.bytes.Load(), secs, rate, cpu)
	if after != t.wantRecs {
		fmt.Fprintf(os.Stderr, "ioserver: %d records arrived, %d expected\n",
			after, t.wantRecs)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve counts c's records until the peer closes.  The shared counters are
// updated once the reader has handed out everything it holds, that is about
// once per read system call, as the C servers do.
func (t *tally) serve(c net.Conn) {
	defer c.Close()
	if open := t.open.Add(1); open == t.wantConns {
		fmt.Printf("ioserver impl=go open=%d\n", open)
	}
	defer t.open.Add(^uint64(0))

	r := bufio.NewReaderSize(c, readerSize)
	var records, n uint64
	for {
		line, err := r.ReadSlice('\n')
		n += uint64(len(line))
		if err == nil {
			records++
		}
		if records > 0 && (err != nil || r.Buffered() == 0) {
			t.firstByte()
			t.add(records, n)
			records, n = 0, 0
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			// A record longer than the buffer goes on in the next slice.
		case err == io.EOF:
			return
		default:
			fmt.Fprintln(os.Stderr, "ioserver: read:", err)
			return
		}
	}
}

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0: any free port)")
	records := flag.Uint64("records", 0, "report and exit after this many records")
	conns := flag.Uint64("conns", 0, "report once this many connections are open")
	flag.Parse()

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ioserver:", err)
		os.Exit(1)
	}
	fmt.Printf("port=%d pid=%d\n", ln.Addr().(*net.TCPAddr).Port, os.Getpid())

	t := &tally{wantRecs: *records, wantConns: *conns}
	for {
		c, err := ln.Accept()
		if err != nil {
			// Out of descriptors and the like: say so, back off a
			// little as net/http does, and keep serving the
			// connections already open.
			fmt.Fprintln(os.Stderr, "ioserver: accept:", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go t.serve(c)
	}
}
