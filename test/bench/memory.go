package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memResult is kguard's resident memory (bytes) at rest, with idle
// connections open, and at its peak while consumers fetch.
type memResult struct {
	rest, idle, fetchPeak int64
	idleConns, consumers  int
	fetchedMB             float64
}

// rssBytes is the resident set size of process pid (VmRSS).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading kguard's memory: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// measureMemory reads kguard's RSS at rest, after idle connections have
// each made one request (so each has its upstream connection and
// buffers), and, with those still open, its peak while consumers each read
// topic from the start with 1 MiB fetch responses. Clients log in
// anonymously (scenarios without client options).
func measureMemory(ctx context.Context, pid int, bootstrap string, w *workload, topic string, idle, consumers int, d time.Duration) (memResult, error) {
	res := memResult{idleConns: idle, consumers: consumers}
	var err error
	if res.rest, err = rssBytes(pid); err != nil {
		return res, err
	}
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range idle {
		c, err := idleConn(ctx, bootstrap, int32(i))
		if err != nil {
			return res, fmt.Errorf("idle connection %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond)
	if res.idle, err = rssBytes(pid); err != nil {
		return res, err
	}
	// Consumers: each fetches with 1 MiB responses until d has passed.
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var moved int64
	var firstErr error
	for range consumers {
		wg.Go(func() {
			cl, err := w.client([]string{bootstrap}, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxBytes(1<<20), kgo.FetchMaxPartitionBytes(1<<20))
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				return
			}
			defer cl.Close()
			var n int64
			for cctx.Err() == nil {
				fs := cl.PollFetches(cctx)
				fs.EachRecord(func(r *kgo.Record) { n += int64(len(r.Value)) })
			}
			mu.Lock()
			moved += n
			mu.Unlock()
		})
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for cctx.Err() == nil {
		select {
		case <-tick.C:
			if r, err := rssBytes(pid); err == nil {
				res.fetchPeak = max(res.fetchPeak, r)
			}
		case <-cctx.Done():
		}
	}
	wg.Wait()
	res.fetchedMB = float64(moved) / 1e6
	return res, firstErr
}

// idleConn opens a connection to kguard and sends one ApiVersions
// request, which kguard answers once the connection has its upstream
// connection: from then on it holds everything an idle client costs.
func idleConn(ctx context.Context, addr string, corr int32) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	frame := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, 0)
	frame = binary.BigEndian.AppendUint32(frame, uint32(corr))
	frame = binary.BigEndian.AppendUint16(frame, uint16(len("bench-idle")))
	frame = append(frame, "bench-idle"...)
	frame = req.AppendTo(frame)
	frame = append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(frame); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReader(c)
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("api versions response: %w", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r, body); err != nil || !bytes.Equal(body[:4], frame[8:12]) {
		c.Close()
		return nil, fmt.Errorf("api versions response (corr %x): %v", body[:min(4, len(body))], err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// printMemory prints the memory rows of the scenarios that measured it.
func printMemory(out io.Writer, rows []scenarioResult) {
	printed := false
	for _, r := range rows {
		m := r.mem
		if m == nil {
			continue
		}
		if !printed {
			fmt.Fprintf(out, "\nkguard memory (RSS of the kguard process, MiB):\n")
			printed = true
		}
		mib := func(b int64) float64 { return float64(b) / (1 << 20) }
		fmt.Fprintf(out, "  %-18s at rest %6.1f | %d idle connections %6.1f (%.0f KiB each) | + %d consumers fetching 1 MiB responses: peak %6.1f (%.0f MB read)\n",
			r.name, mib(m.rest), m.idleConns, mib(m.idle), float64(m.idle-m.rest)/1024/float64(max(m.idleConns, 1)),
			m.consumers, mib(m.fetchPeak), m.fetchedMB)
	}
}
