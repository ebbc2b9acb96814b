package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

// perfResult is Kafka's ProducerPerformance summary line, parsed.
type perfResult struct {
	recsPerSec, mbPerSec, avgMs, p50Ms, p99Ms float64
}

// perfLine matches "N records sent, X records/sec (Y MB/sec), A ms avg
// latency, M ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, ...".
var perfLine = regexp.MustCompile(`records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, [\d.]+ ms max latency, (\d+) ms 50th, \d+ ms 95th, (\d+) ms 99th`)

func parsePerf(out string) (perfResult, error) {
	m := perfLine.FindStringSubmatch(out)
	if m == nil {
		return perfResult{}, fmt.Errorf("no ProducerPerformance summary in %q", tail(out))
	}
	var r perfResult
	for i, p := range []*float64{&r.recsPerSec, &r.mbPerSec, &r.avgMs, &r.p50Ms, &r.p99Ms} {
		v, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return r, err
		}
		*p = v
	}
	return r, nil
}

// runPerfTool drives Kafka's own ProducerPerformance (test/compat/perf.sh)
// straight at the cluster and through a passthrough kguard, alternating
// over rounds, and prints its own table.
func runPerfTool(ctx context.Context, out, log io.Writer, bin, dir string, cluster upstream, rounds, records, size int) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	port, err := freePortBlock()
	if err != nil {
		return err
	}
	bootstrap := fmt.Sprintf("127.0.0.1:%d", port)
	cfg, err := scenarios[0].config(scenarioEnv{bootstrap: bootstrap, brokerBase: port + 1, upstream: cluster.addrs(), dir: dir, root: root})
	if err != nil {
		return err
	}
	k, err := startKguard(ctx, bin, dir, "perftool", cfg, bootstrap, -1)
	if err != nil {
		return err
	}
	defer k.stop()
	script := filepath.Join(root, "test", "compat", "perf.sh")
	var direct, proxied []perfResult
	for r := range rounds {
		order := []string{"direct", "kguard"}
		if r%2 == 1 {
			order = []string{"kguard", "direct"}
		}
		for _, target := range order {
			seeds := strings.Join(cluster.addrs(), ",")
			if target == "kguard" {
				seeds = bootstrap
			}
			topic := fmt.Sprintf("bench-perf-%d-%s", r, target)
			if err := cluster.createTopic(ctx, topic); err != nil {
				return err
			}
			cmd := exec.CommandContext(ctx, "bash", script, "producer", "--bootstrap", seeds, "--topic", topic,
				"--records", strconv.Itoa(records), "--record-size", strconv.Itoa(size))
			b, err := cmd.Output()
			_ = cluster.deleteTopic(context.Background(), topic)
			if err != nil {
				return fmt.Errorf("ProducerPerformance %s: %w\n%s", target, err, tail(string(b)))
			}
			res, err := parsePerf(string(b))
			if err != nil {
				return err
			}
			fmt.Fprintf(log, "ProducerPerformance round %d/%d %-6s %.0f records/s %.2f MB/s avg %.1f ms p99 %.0f ms\n",
				r+1, rounds, target, res.recsPerSec, res.mbPerSec, res.avgMs, res.p99Ms)
			if target == "kguard" {
				proxied = append(proxied, res)
			} else {
				direct = append(direct, res)
			}
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(out, "\nKafka ProducerPerformance (acks=all, %d records of %d bytes per run, no throttle), %d A/B rounds, %s\n\n", records, size, rounds, cluster.describe())
	fmt.Fprintln(tw, "measure\tdirect\tkguard\tmedian of per-round\t")
	row := func(label string, f func(perfResult) float64, diff bool) {
		per := make([]float64, len(direct))
		d, p := make([]float64, len(direct)), make([]float64, len(direct))
		for i := range direct {
			d[i], p[i] = f(direct[i]), f(proxied[i])
			if diff {
				per[i] = p[i] - d[i]
			} else {
				per[i] = p[i] / d[i]
			}
		}
		agg := fmt.Sprintf("ratio %.3f", median(per))
		if diff {
			agg = fmt.Sprintf("added %+.1f ms", median(per))
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t\n", label, median(d), median(p), agg)
	}
	row("records/s", func(r perfResult) float64 { return r.recsPerSec }, false)
	row("MB/s", func(r perfResult) float64 { return r.mbPerSec }, false)
	row("avg latency ms", func(r perfResult) float64 { return r.avgMs }, true)
	row("p50 latency ms", func(r perfResult) float64 { return r.p50Ms }, true)
	row("p99 latency ms", func(r perfResult) float64 { return r.p99Ms }, true)
	return tw.Flush()
}
