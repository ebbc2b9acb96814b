package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// consumerResult is Kafka's ConsumerPerformance result line, parsed.
type consumerResult struct {
	mbPerSec, recsPerSec           float64 // whole run, the group join included
	fetchMBPerSec, fetchRecsPerSec float64 // fetch phase alone
	rebalanceMs, fetchMs, recsRead float64
}

// parseConsumerPerf reads perf.sh consumer's output: the header
// ("start.time, end.time, data.consumed.in.MB, MB.sec,
// data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms,
// fetch.MB.sec, fetch.nMsg.sec") and the result line, by column name.
func parseConsumerPerf(out string) (consumerResult, error) {
	var header, result []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(l), ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		switch {
		case strings.HasPrefix(l, "start.time,"):
			header = f
		case header != nil && len(f) == len(header):
			result = f
		}
	}
	if result == nil {
		return consumerResult{}, fmt.Errorf("no ConsumerPerformance result in %q", tail(out))
	}
	var r consumerResult
	for name, dst := range map[string]*float64{"MB.sec": &r.mbPerSec, "nMsg.sec": &r.recsPerSec, "fetch.MB.sec": &r.fetchMBPerSec,
		"fetch.nMsg.sec": &r.fetchRecsPerSec, "rebalance.time.ms": &r.rebalanceMs, "fetch.time.ms": &r.fetchMs, "data.consumed.in.nMsg": &r.recsRead} {
		i := slices.Index(header, name)
		if i < 0 {
			return r, fmt.Errorf("ConsumerPerformance output has no %s column: %q", name, tail(out))
		}
		v, err := strconv.ParseFloat(result[i], 64)
		if err != nil {
			return r, fmt.Errorf("ConsumerPerformance %s: %w", name, err)
		}
		*dst = v
	}
	return r, nil
}

// perfTarget is where a round's tools connect: straight to the cluster or
// through kguard.
type perfTarget struct {
	name, seeds string
}

// runPerfTool drives Kafka's own ProducerPerformance and then
// ConsumerPerformance (test/compat/perf.sh) straight at the cluster and
// through kguard (scenario sc, passthrough by default), alternating which
// goes first over rounds: each run produces records to a fresh topic and
// reads them all back with the same target. It prints one table per tool.
func runPerfTool(ctx context.Context, out, log io.Writer, bin, dir string, cluster upstream, sc scenario, rounds, records, size int) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	port, err := freePortBlock()
	if err != nil {
		return err
	}
	bootstrap := fmt.Sprintf("127.0.0.1:%d", port)
	cfg, err := sc.config(scenarioEnv{bootstrap: bootstrap, brokerBase: port + 1, upstream: cluster.addrs(), dir: dir, root: root})
	if err != nil {
		return err
	}
	k, err := startKguard(ctx, bin, dir, "perftool", cfg, bootstrap, -1)
	if err != nil {
		return err
	}
	defer k.stop()
	script := filepath.Join(root, "test", "compat", "perf.sh")
	direct := perfTarget{"direct", strings.Join(cluster.addrs(), ",")}
	proxied := perfTarget{"kguard", bootstrap}
	prod := map[string][]perfResult{}
	cons := map[string][]consumerResult{}
	load0 := loadavg()
	for r := range rounds {
		order := []perfTarget{direct, proxied}
		if r%2 == 1 {
			order = []perfTarget{proxied, direct}
		}
		for _, t := range order {
			pr, cr, err := perfRound(ctx, cluster, script, t, fmt.Sprintf("bench-perf-%d-%d-%s", os.Getpid(), r, t.name), records, size)
			if err != nil {
				return err
			}
			fmt.Fprintf(log, "Kafka perf tools round %d/%d %-6s produce %.0f records/s %.2f MB/s p99 %.0f ms | consume %.2f MB/s (fetch %.2f MB/s, join %.0f ms)\n",
				r+1, rounds, t.name, pr.recsPerSec, pr.mbPerSec, pr.p99Ms, cr.mbPerSec, cr.fetchMBPerSec, cr.rebalanceMs)
			prod[t.name] = append(prod[t.name], pr)
			cons[t.name] = append(cons[t.name], cr)
		}
	}
	fmt.Fprintf(out, "\nKafka ProducerPerformance (acks=all, %d records of %d bytes per run, no throttle), then ConsumerPerformance reading them back,\n%d A/B rounds (order alternating), kguard scenario %s, %s, load average %s -> %s\n\n",
		records, size, rounds, sc.name, cluster.describe(), load0, loadavg())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "measure\tdirect\tkguard\tmedian of per-round\t")
	perfRow(tw, "produce records/s", prod, func(r perfResult) float64 { return r.recsPerSec }, false)
	perfRow(tw, "produce MB/s", prod, func(r perfResult) float64 { return r.mbPerSec }, false)
	perfRow(tw, "produce avg latency ms", prod, func(r perfResult) float64 { return r.avgMs }, true)
	perfRow(tw, "produce p50 latency ms", prod, func(r perfResult) float64 { return r.p50Ms }, true)
	perfRow(tw, "produce p99 latency ms", prod, func(r perfResult) float64 { return r.p99Ms }, true)
	perfRow(tw, "consume MB/s (fetch phase)", cons, func(r consumerResult) float64 { return r.fetchMBPerSec }, false)
	perfRow(tw, "consume records/s (fetch phase)", cons, func(r consumerResult) float64 { return r.fetchRecsPerSec }, false)
	perfRow(tw, "consume MB/s (with group join)", cons, func(r consumerResult) float64 { return r.mbPerSec }, false)
	perfRow(tw, "consumer group join ms", cons, func(r consumerResult) float64 { return r.rebalanceMs }, true)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nratio: kguard/direct per round; added: kguard minus direct per round (ms). The fetch phase excludes the consumer's group join.")
	return nil
}

// perfRound produces records to a fresh topic through t with
// ProducerPerformance, reads them all back through t with
// ConsumerPerformance, and deletes the topic.
func perfRound(ctx context.Context, cluster upstream, script string, t perfTarget, topic string, records, size int) (perfResult, consumerResult, error) {
	if err := cluster.createTopic(ctx, topic); err != nil {
		return perfResult{}, consumerResult{}, err
	}
	defer cluster.deleteTopic(context.Background(), topic) //nolint:errcheck // best effort
	b, err := runTool(ctx, script, "producer", "--bootstrap", t.seeds, "--topic", topic,
		"--records", strconv.Itoa(records), "--record-size", strconv.Itoa(size))
	if err != nil {
		return perfResult{}, consumerResult{}, fmt.Errorf("ProducerPerformance %s: %w", t.name, err)
	}
	pr, err := parsePerf(string(b))
	if err != nil {
		return pr, consumerResult{}, err
	}
	b, err = runTool(ctx, script, "consumer", "--bootstrap", t.seeds, "--topic", topic,
		"--records", strconv.Itoa(records), "--group", topic, "--timeout", "120")
	if err != nil {
		return pr, consumerResult{}, fmt.Errorf("ConsumerPerformance %s: %w", t.name, err)
	}
	cr, err := parseConsumerPerf(string(b))
	return pr, cr, err
}

// runTool runs perf.sh with args and returns its standard output; a
// failure carries the end of what it printed on both outputs.
func runTool(ctx context.Context, script string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		msg := string(b) + stderr.String()
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return b, fmt.Errorf("%w\n%s", err, msg)
	}
	return b, nil
}

// perfRow prints one measure of the per-target results: the medians and
// the median per-round ratio (or difference, for latencies).
func perfRow[R any](tw io.Writer, label string, res map[string][]R, f func(R) float64, diff bool) {
	d, k := res["direct"], res["kguard"]
	n := min(len(d), len(k))
	dv, kv, per := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		dv[i], kv[i] = f(d[i]), f(k[i])
		if diff {
			per[i] = kv[i] - dv[i]
		} else if dv[i] > 0 {
			per[i] = kv[i] / dv[i]
		}
	}
	agg := fmt.Sprintf("ratio %.3f", median(per))
	if diff {
		agg = fmt.Sprintf("added %+.1f ms", median(per))
	}
	fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t\n", label, median(dv), median(kv), agg)
}
