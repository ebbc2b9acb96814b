package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestBenchSmoke runs one tiny in-process round so a change elsewhere (the
// config format, the proxy API) that breaks `make bench` fails `make test`.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, log bytes.Buffer
	// Every scenario, kguard as a child process, as `make bench` runs it.
	err := run(ctx, []string{"-rounds", "1", "-duration", "200ms", "-prefill", "2000", "-latency-rate", "200",
		"-idle-conns", "20", "-fetch-consumers", "2", "-fetch-duration", "300ms"}, &out, &log)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	for _, want := range []string{"produce MB/s", "consume MB/s", "produce p99 ms", "interleaved p99 ms", "kguard CPU s/GB",
		"kguard CPU us/produced record", "authorization", "authz+audit", "produce MB/s vs authorization",
		"json-passthrough", "produce MB/s vs json-passthrough", "20 idle connections", "2 consumers fetching 1 MiB responses",
		"TAIL passthrough", "TAIL authorization"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("bench table has no %q row:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "NaN") || strings.Contains(out.String(), "Inf") {
		t.Errorf("bench table has a NaN or Inf:\n%s", out.String())
	}
}

// ConsumerPerformance's result is read by column name, and output without
// one is an error (not a row of zeros).
func TestParseConsumerPerf(t *testing.T) {
	out := "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n" +
		"2026-12-05 08:30:01:123, 2026-12-05 08:30:04:456, 97.6563, 29.3030, 100000, 30006.0006, 1368, 1965, 49.6978, 50890.5852\n"
	r, err := parseConsumerPerf(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.recsRead != 100000 || r.mbPerSec != 29.303 || r.fetchMBPerSec != 49.6978 || r.rebalanceMs != 1368 || r.fetchRecsPerSec != 50890.5852 {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parseConsumerPerf("start.time, end.time\n"); err == nil {
		t.Fatal("parsed output without a result line")
	}
}

// strace -c's table is read per syscall, with and without an errors
// column, and printed per request.
func TestParseStrace(t *testing.T) {
	out := `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ------------------
 42.75    0.285688          44      6415           nanosleep
 18.17    0.121412          28      4189        45 futex
 11.09    0.074116           9      8000      4000 read
 11.90    0.079557          19      4000           write
------ ----------- ----------- --------- --------- ------------------
100.00    0.668267          22     22604      4045 total
`
	c, err := parseStrace(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	c.requests = 2000
	if c.calls["read"] != 8000 || c.errors["read"] != 4000 || c.calls["nanosleep"] != 6415 || len(c.calls) != 4 {
		t.Fatalf("parsed %+v", c)
	}
	if got := c.String(); !strings.HasPrefix(got, "11.3 syscalls per request (2000 requests): read 4.00 (2.00 failed) nanosleep 3.21") {
		t.Fatalf("printed %q", got)
	}
}
