package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// syscallCounts are kguard's system calls over one paced latency phase
// (-strace): what a request costs in syscalls and scheduler wake-ups,
// which, unlike throughput, does not depend on what else the machine runs.
type syscallCounts struct {
	requests int            // records sent (paced: one record per Produce request)
	calls    map[string]int // syscall name -> calls
	errors   map[string]int // syscall name -> failed calls (read: EAGAIN)
}

// straceLatency runs one more paced produce phase through kguard (pid)
// with `strace -c -f` attached, after the measured rounds so that
// strace's overhead is in none of them.
func straceLatency(ctx context.Context, pid int, w *workload, seeds []string, topic, dir string) (*syscallCounts, error) {
	out := filepath.Join(dir, "strace.txt")
	cmd := exec.CommandContext(ctx, "strace", "-c", "-f", "-o", out, "-p", strconv.Itoa(pid))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("strace (install it, or drop -strace): %w", err)
	}
	time.Sleep(300 * time.Millisecond) // attached to every thread
	n, err := w.pacedSends(ctx, seeds, topic)
	_ = cmd.Process.Signal(syscall.SIGINT)
	werr := cmd.Wait()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, fmt.Errorf("strace: %w (%v)", err, werr)
	}
	defer f.Close()
	c, err := parseStrace(f)
	if err != nil {
		return nil, err
	}
	c.requests = n
	return c, nil
}

// parseStrace reads `strace -c` output: "% time seconds usecs/call calls
// [errors] syscall" rows between the dashed lines.
func parseStrace(r io.Reader) (*syscallCounts, error) {
	c := &syscallCounts{calls: map[string]int{}, errors: map[string]int{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || len(f) > 6 || f[len(f)-1] == "total" || f[len(f)-1] == "syscall" {
			continue
		}
		calls, err := strconv.Atoi(f[3])
		if err != nil {
			continue
		}
		name := f[len(f)-1]
		c.calls[name] = calls
		if len(f) == 6 {
			if e, err := strconv.Atoi(f[4]); err == nil {
				c.errors[name] = e
			}
		}
	}
	if len(c.calls) == 0 {
		return nil, fmt.Errorf("strace printed no counts")
	}
	return c, sc.Err()
}

// String is the counts per request, the total first, then the calls that
// make up most of it.
func (c *syscallCounts) String() string {
	total := 0
	names := make([]string, 0, len(c.calls))
	for n, v := range c.calls {
		total += v
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return c.calls[b] - c.calls[a] })
	per := func(v int) float64 { return float64(v) / float64(max(c.requests, 1)) }
	var b strings.Builder
	fmt.Fprintf(&b, "%.1f syscalls per request (%d requests):", per(total), c.requests)
	for _, n := range names[:min(len(names), 6)] {
		fmt.Fprintf(&b, " %s %.2f", n, per(c.calls[n]))
		if e := c.errors[n]; e > 0 {
			fmt.Fprintf(&b, " (%.2f failed)", per(e))
		}
	}
	return b.String()
}

// printSyscalls prints the -strace counts of each scenario.
func printSyscalls(out io.Writer, rows []scenarioResult) {
	printed := false
	for _, r := range rows {
		if r.syscalls == nil {
			continue
		}
		if !printed {
			fmt.Fprintf(out, "\nkguard system calls over a paced produce phase (strace -c -f, one record per request; failed reads are EAGAIN,\nfutex and nanosleep are the Go scheduler waking threads):\n")
			printed = true
		}
		fmt.Fprintf(out, "  SYSCALLS %-18s %s\n", r.name, r.syscalls)
	}
}
