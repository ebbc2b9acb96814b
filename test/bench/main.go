// Command bench measures what kguard costs: produce and consume throughput
// and paced produce latency with the same clients straight to a Kafka
// cluster and through kguard, alternating A/B over several rounds in one
// run, and kguard's CPU seconds per GB moved. Run it with `make bench` or
// `go run ./test/bench` from the repository root.
//
// The cluster is franz-go's kfake (3 brokers) inside this process; kguard
// is built from ./cmd/kguard and runs as a child process (`kguard serve`),
// so its CPU time is read from /proc/<pid>/stat apart from the clients' and
// the cluster's. Scenarios are rows: each is a kguard configuration
// (passthrough today; authorization, encryption and audit can be added to
// the scenarios list).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kguard/kguard/audit"
)

// scenario is one kguard configuration measured against direct access.
type scenario struct {
	name string
	// config renders kguard's YAML for the given listeners and upstream.
	config func(e scenarioEnv) (string, error)
	// target is the throughput ratio (kguard/direct) the issue asks for.
	target float64
	// baseline names the scenario this one is also compared with (audit
	// on vs. audit off).
	baseline string
	// alsoVs names more scenarios the throughput is compared with.
	alsoVs []string
	// clientOpts are extra client options for the kguard target (for
	// example SASL credentials when authentication is on).
	clientOpts []kgo.Opt
	// jsonValue makes the records JSON objects (with card and name
	// fields) instead of random bytes, for both targets.
	jsonValue bool
}

// scenarioEnv is what a scenario's config is rendered from.
type scenarioEnv struct {
	bootstrap  string
	brokerBase int
	upstream   []string
	dir        string // a fresh directory for this scenario's files
	root       string // the module root (for policies/)
}

// baseConfig is kguard with anonymous clients (as User:demo), no policy.
func baseConfig(e scenarioEnv) string {
	return fmt.Sprintf(`listen:
  bootstrap: %s
  broker_port_base: %d
  auth:
    allow_anonymous: true
    anonymous_principal: demo
upstream:
  bootstrap: [%s]
log:
  level: warn
`, e.bootstrap, e.brokerBase, strings.Join(e.upstream, ", "))
}

// policyConfig authorizes every request with the shipped policies and the
// demo data set (User:demo may use every topic and group).
func policyConfig(e scenarioEnv) string {
	return fmt.Sprintf("policy:\n  dirs: [%q, %q]\n", filepath.Join(e.root, "policies"), filepath.Join(e.root, "policies", "demo"))
}

var scenarios = []scenario{
	{
		name:   "passthrough",
		target: 0.97,
		config: func(e scenarioEnv) (string, error) {
			return baseConfig(e) + "policy:\n  disabled: true\n", nil
		},
	},
	{
		name:     "authorization",
		target:   0.95,
		baseline: "passthrough",
		config: func(e scenarioEnv) (string, error) {
			return baseConfig(e) + policyConfig(e), nil
		},
	},
	{
		// the encryption scenario's workload through kguard without a
		// policy: its like-for-like passthrough baseline
		name:      "json-passthrough",
		jsonValue: true,
		config: func(e scenarioEnv) (string, error) {
			return baseConfig(e) + "policy:\n  disabled: true\n", nil
		},
	},
	{
		name:      "encryption",
		target:    0.80,
		baseline:  "json-passthrough", // the (and Kroxylicious's) comparison
		alsoVs:    []string{"authorization"},
		jsonValue: true,
		config:    encryptionConfig,
	},
	{
		name:     "authz+audit",
		target:   0.95,
		baseline: "authorization",
		config: func(e scenarioEnv) (string, error) {
			key := filepath.Join(e.dir, "audit.pem")
			if _, err := audit.GenerateKeyFile(key); err != nil {
				return "", err
			}
			return baseConfig(e) + policyConfig(e) + fmt.Sprintf(`audit:
  enabled: true
  instance_id: bench
  spool_dir: %s
  signing_key_file: %s
  topic:
    replication_factor: 1
    min_insync_replicas: 1
`, filepath.Join(e.dir, "spool"), key), nil
		},
	},
}

const partitions = 6

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rounds := fs.Int("rounds", 5, "A/B rounds per scenario")
	duration := fs.Duration("duration", 2*time.Second, "length of each measured phase")
	size := fs.Int("record-size", 1024, "record value size in bytes")
	rate := fs.Int("latency-rate", 1000, "records/s of the paced latency phase (well below saturation)")
	prefill := fs.Int64("prefill", 50_000, "records preloaded for the consume phases (read over and over)")
	bin := fs.String("kguard", "", "kguard binary (default: go build ./cmd/kguard)")
	only := fs.String("scenarios", "", "comma-separated scenario names (default: all)")
	brokers := fs.String("brokers", "", "comma-separated bootstrap of an external cluster (default: in-process kfake)")
	perfRecords := fs.Int("perf-tool", 0, "also run Kafka's ProducerPerformance and ConsumerPerformance with this many records per run, direct and through kguard (needs test/kafka/lib: bash test/deps.sh)")
	perfOnly := fs.Bool("perf-only", false, "with -perf-tool: only the Kafka tools' comparison, not the scenario tables")
	perfScenario := fs.String("perf-scenario", "passthrough", "with -perf-tool: the kguard scenario the Kafka tools run through")
	inproc := fs.Bool("inprocess", false, "run kguard inside this process (CPU by getrusage difference) instead of as a child process")
	pin := fs.Bool("pin", false, "kguard on a CPU of its own: this process (clients, kfake) and -pin-pids on CPU 0, kguard on CPU 1 (needs 2 CPUs and taskset)")
	pinPids := fs.String("pin-pids", "", "with -pin: comma-separated pids (e.g. the Kafka JVMs) also confined to CPU 0")
	idleConns := fs.Int("idle-conns", 500, "memory phase: idle client connections (0: no memory phase)")
	memConsumers := fs.Int("fetch-consumers", 50, "memory phase: consumers fetching 1 MiB responses at once")
	memFor := fs.Duration("fetch-duration", 3*time.Second, "memory phase: how long the consumers fetch")
	straceOn := fs.Bool("strace", false, "after each scenario's rounds, count kguard's system calls over one more paced produce phase (strace -c -f; child process only)")
	profDir := fs.String("cpuprofile", "", "write a CPU profile of kguard's first produce phase of each scenario to this directory (<scenario>-produce.pprof; child process only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 || *duration <= 0 || *size < 1 || *rate < 1 {
		return errors.New("-rounds, -duration, -record-size and -latency-rate must be positive")
	}

	pinCPU := -1
	if *pin {
		if *inproc || runtime.NumCPU() < 2 {
			return errors.New("-pin needs kguard as a child process and at least 2 CPUs")
		}
		pids := []string{strconv.Itoa(os.Getpid())}
		if *pinPids != "" {
			pids = append(pids, strings.Split(*pinPids, ",")...)
		}
		for _, pid := range pids {
			// -a: every thread; threads started later inherit it
			if out, err := exec.CommandContext(ctx, "taskset", "-a", "-p", "-c", "0", strings.TrimSpace(pid)).CombinedOutput(); err != nil {
				return fmt.Errorf("pinning %s to CPU 0: %v: %s", pid, err, out)
			}
		}
		pinCPU = 1
	}
	load0 := loadavg()
	dir, err := os.MkdirTemp("", "kguard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *bin == "" && !*inproc {
		fmt.Fprintln(stderr, "building ./cmd/kguard ...")
		if *bin, err = buildKguard(ctx, dir); err != nil {
			return err
		}
	}

	var cluster upstream
	if *brokers != "" {
		cluster, err = newExternal(strings.Split(*brokers, ","))
	} else {
		cluster, err = newKfake()
	}
	if err != nil {
		return err
	}
	defer cluster.close()
	var perfSc *scenario
	if *perfRecords > 0 {
		if *inproc {
			return errors.New("-perf-tool runs kguard as a child process; drop -inprocess")
		}
		i := slices.IndexFunc(scenarios, func(sc scenario) bool { return sc.name == *perfScenario })
		if i < 0 {
			return fmt.Errorf("-perf-scenario: no scenario named %q", *perfScenario)
		}
		perfSc = &scenarios[i]
	} else if *perfOnly {
		return errors.New("-perf-only needs -perf-tool")
	}
	if *perfOnly {
		return runPerfTool(ctx, stdout, stderr, *bin, dir, cluster, *perfSc, *rounds, *perfRecords, *size)
	}
	upAddrs := cluster.addrs()
	w := newWorkload(*size, *duration, *rate)
	for _, t := range []string{"bench-consume", "bench-latency"} {
		if err := cluster.createTopic(ctx, t); err != nil {
			return err
		}
		defer cluster.deleteTopic(context.Background(), t) //nolint:errcheck // best effort
	}
	fmt.Fprintf(stderr, "preloading %d records for the consume phases ...\n", *prefill)
	if err := preload(ctx, w, upAddrs, "bench-consume", *prefill); err != nil {
		return err
	}
	ends, err := cluster.endOffsets(ctx, "bench-consume")
	if err != nil {
		return err
	}

	var rows []scenarioResult
	for _, sc := range scenarios {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), sc.name) {
			continue
		}
		mem := memOpts{idle: *idleConns, consumers: *memConsumers, d: *memFor}
		r, err := runScenario(ctx, stderr, sc, w, cluster, *bin, dir, *rounds, ends, *inproc, *profDir, pinCPU, mem, *straceOn)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc.name, err)
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return fmt.Errorf("no scenario named %q", *only)
	}
	printTable(stdout, rows, *rounds, *duration, *size, *rate, load0, loadavg())
	printMemory(stdout, rows)
	printSyscalls(stdout, rows)
	printTails(stdout, rows)
	if pinCPU >= 0 {
		fmt.Fprintf(stdout, "Pinned (-pin): the clients, the cluster (kfake in this process, or -pin-pids) on CPU 0, kguard alone on CPU 1:\nthe ratios say whether kguard with a core of its own keeps up with what the rest does on one core.\n")
	}
	if perfSc != nil {
		return runPerfTool(ctx, stdout, stderr, *bin, dir, cluster, *perfSc, *rounds, *perfRecords, *size)
	}
	return nil
}

func preload(ctx context.Context, w *workload, seeds []string, topic string, n int64) error {
	cl, err := w.client(seeds, kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	errc := make(chan error, 1)
	for range n {
		cl.Produce(ctx, &kgo.Record{Value: w.value}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return fmt.Errorf("preload: %w", err)
	default:
		return nil
	}
}

// scenarioResult is every round's measurements for one scenario.
type scenarioResult struct {
	name           string
	direct, kguard []phaseResult
	inproc         bool // kguard ran inside the benchmark process
	cluster        string
	target         float64
	baseline       string
	alsoVs         []string
	mem            *memResult     // nil: not measured
	syscalls       *syscallCounts // nil: not measured (-strace)
	tails          []tailResult   // per round (kguard as a child process)
}

// memOpts sizes the memory phase (idle 0: none).
type memOpts struct {
	idle, consumers int
	d               time.Duration
}

func runScenario(ctx context.Context, log io.Writer, sc scenario, w *workload, cluster upstream,
	bin, dir string, rounds int, ends map[int32]int64, inproc bool, profDir string, pinCPU int, mem memOpts, straceOn bool) (scenarioResult, error) {
	res := scenarioResult{name: sc.name, cluster: cluster.describe(), target: sc.target, baseline: sc.baseline, alsoVs: sc.alsoVs}
	upAddrs := cluster.addrs()
	port, err := freePortBlock()
	if err != nil {
		return res, err
	}
	bootstrap := fmt.Sprintf("127.0.0.1:%d", port)
	root, err := moduleRoot(ctx)
	if err != nil {
		return res, err
	}
	sdir := filepath.Join(dir, "scenario-"+sc.name)
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return res, err
	}
	cfg, err := sc.config(scenarioEnv{bootstrap: bootstrap, brokerBase: port + 1, upstream: upAddrs, dir: sdir, root: root})
	if err != nil {
		return res, err
	}
	var (
		prof  *profiler
		probe *tailProbe
	)
	if !inproc {
		// kguard's metrics listener: its own latency histograms
		// (tail.go), and the CPU profile with -cpuprofile.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		addr := ln.Addr().String()
		ln.Close()
		probe = &tailProbe{url: "http://" + addr + "/metrics"}
		if profDir != "" {
			if prof, err = newProfiler(profDir, sc.name, addr); err != nil {
				return res, err
			}
			cfg += prof.config()
		} else {
			cfg += fmt.Sprintf("metrics:\n  listen: %s\n", addr)
		}
	}
	var k kguardRunner
	var pid int
	if inproc {
		k, err = startInProcess(ctx, cfg)
	} else {
		var kp *kguardProc
		kp, err = startKguard(ctx, bin, dir, sc.name, cfg, bootstrap, pinCPU)
		if kp != nil {
			k, pid = kp, kp.cmd.Process.Pid
		}
	}
	if err != nil {
		return res, err
	}
	defer k.stop()
	res.inproc = inproc
	if mem.idle > 0 && pid != 0 && len(sc.clientOpts) == 0 {
		// First, on a fresh kguard: its memory at rest, with idle
		// connections, and with consumers fetching large responses.
		m, err := measureMemory(ctx, pid, bootstrap, w, "bench-consume", mem.idle, mem.consumers, mem.d)
		if err != nil {
			return res, fmt.Errorf("memory phase: %w%s", err, tail(k.output()))
		}
		res.mem = &m
		fmt.Fprintf(log, "%s memory: RSS at rest %.1f MiB, %d idle connections %.1f MiB, %d consumers fetching peak %.1f MiB\n",
			sc.name, float64(m.rest)/(1<<20), m.idleConns, float64(m.idle)/(1<<20), m.consumers, float64(m.fetchPeak)/(1<<20))
	}

	value, common := w.value, []kgo.Opt(nil)
	if sc.jsonValue {
		// Encryption grows a batch (ciphertext, headers, signature
		// proofs): keep produced batches well under the broker's 1 MiB
		// message limit, for both targets alike.
		value, common = jsonRecord(w.size), []kgo.Opt{kgo.ProducerBatchMaxBytes(256 << 10)}
	}
	direct := &workload{size: w.size, duration: w.duration, rate: w.rate, value: value, extra: common}
	proxied := &workload{size: w.size, duration: w.duration, rate: w.rate, value: value, extra: append(common, sc.clientOpts...)}
	for r := range rounds {
		order := []string{"direct", "kguard"}
		if r%2 == 1 {
			order = []string{"kguard", "direct"}
		}
		for _, target := range order {
			seeds, wl := upAddrs, direct
			if target == "kguard" {
				seeds, wl = []string{bootstrap}, proxied
			}
			var profiled <-chan error
			if prof != nil && target == "kguard" && r == 0 {
				profiled = prof.start(ctx, w.duration)
			}
			pr, err := runPhases(ctx, wl, cluster, seeds, fmt.Sprintf("bench-produce-%s-%d-%s", sc.name, r, target), ends, k.cpuSeconds)
			if err != nil {
				return res, fmt.Errorf("round %d %s: %w%s", r+1, target, err, tail(k.output()))
			}
			if profiled != nil {
				if err := <-profiled; err != nil {
					return res, fmt.Errorf("cpu profile: %w", err)
				}
				fmt.Fprintf(log, "%s: kguard CPU profile of the produce phase in %s\n", sc.name, prof.path)
			}
			if target == "kguard" {
				res.kguard = append(res.kguard, pr)
			} else {
				res.direct = append(res.direct, pr)
			}
			fmt.Fprintf(log, "%s round %d/%d %-6s produce %7.1f MB/s (%5.1f records/batch)  consume %7.1f MB/s  latency p50 %6.3f ms p99 %6.3f ms\n",
				sc.name, r+1, rounds, target, pr.produceBytes/1e6, pr.recsPerBatch, pr.consumeBytes/1e6, ms(pr.p50), ms(pr.p99))
		}
		var span0 produceSpan
		if probe != nil {
			if span0, err = probe.read(ctx); err != nil {
				return res, fmt.Errorf("round %d: kguard's metrics: %w", r+1, err)
			}
		}
		d, k, err := interleavedLatency(ctx, direct, proxied, upAddrs, []string{bootstrap}, "bench-latency")
		if err != nil {
			return res, fmt.Errorf("round %d interleaved latency: %w", r+1, err)
		}
		res.direct[r].ip50, res.direct[r].ip99 = d.p50, d.p99
		res.kguard[r].ip50, res.kguard[r].ip99 = k.p50, k.p99
		fmt.Fprintf(log, "%s round %d/%d interleaved latency p50/p99 direct %.3f/%.3f ms, kguard %.3f/%.3f ms\n",
			sc.name, r+1, rounds, ms(d.p50), ms(d.p99), ms(k.p50), ms(k.p99))
		if probe != nil {
			span1, err := probe.read(ctx)
			if err != nil {
				return res, fmt.Errorf("round %d: kguard's metrics: %w", r+1, err)
			}
			res.tails = append(res.tails, tailResult{directSlow: d.slow, kguardSlow: k.slow, span: span1.minus(span0)})
		}
	}
	if straceOn && pid != 0 {
		c, err := straceLatency(ctx, pid, proxied, []string{bootstrap}, "bench-latency", sdir)
		if err != nil {
			return res, fmt.Errorf("strace phase: %w", err)
		}
		res.syscalls = c
		fmt.Fprintf(log, "%s: %s\n", sc.name, c)
	}
	return res, nil
}

// runPhases measures produce throughput, consume throughput and paced
// latency for one target; pr.cpu is the CPU time read by cpu (kguard's
// process) over the two throughput phases.
func runPhases(ctx context.Context, w *workload, cluster upstream, seeds []string, produceTopic string, ends map[int32]int64, cpu func() (cpuTime, error)) (phaseResult, error) {
	var pr phaseResult
	cpu0, err := cpu()
	if err != nil {
		return pr, err
	}
	if err := cluster.createTopic(ctx, produceTopic); err != nil {
		return pr, err
	}
	var pm, cm int64
	pr.produceBytes, pr.produceRecs, pm, pr.recsPerBatch, err = w.produceThroughput(ctx, seeds, produceTopic)
	if err != nil {
		_ = cluster.deleteTopic(ctx, produceTopic)
		return pr, err
	}
	cpuMid, err := cpu()
	_ = cluster.deleteTopic(ctx, produceTopic) // free the cluster's memory
	if err != nil {
		return pr, err
	}
	pr.produceCPU = cpuMid.total() - cpu0.total()
	pr.produceSys = cpuMid.sys - cpu0.sys
	pr.producedRecs = float64(pm) / float64(len(w.value))
	pr.consumeBytes, pr.consumeRecs, cm, err = w.consumeThroughput(ctx, seeds, "bench-consume", ends)
	if err != nil {
		return pr, err
	}
	pr.movedBytes = pm + cm
	cpu1, err := cpu()
	if err != nil {
		return pr, err
	}
	pr.cpu = cpu1.total() - cpu0.total()
	pr.p50, pr.p99, err = w.produceLatency(ctx, seeds, "bench-latency")
	return pr, err
}

func tail(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return "\nkguard output:\n" + s
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// freePortBlock finds a port p with p+1..p+16 free too (kguard's broker
// listeners are base + node id).
func freePortBlock() (int, error) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p+16 > 65535 {
			continue
		}
		ok := true
		for q := p; q <= p+16 && ok; q++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return p, nil
		}
	}
	return 0, errors.New("no free block of 17 ports")
}

// loadavg is the machine's 1-minute load average, for the footer: other
// work on the machine makes every number here noisier.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func printTable(out io.Writer, rows []scenarioResult, rounds int, d time.Duration, size, rate int, load0, load1 string) {
	fmt.Fprintf(out, "\nkguard benchmark: %d-byte records (random, uncompressed), %d A/B rounds (order alternating), %v per phase, GOMAXPROCS %d, %d CPUs\n\n",
		size, rounds, d, runtime.GOMAXPROCS(0), runtime.NumCPU())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "scenario\tmeasure\tdirect\tkguard\tmedian of per-round\ttarget\tmet\t")
	for _, r := range rows {
		get := func(xs []phaseResult, f func(phaseResult) float64) []float64 {
			out := make([]float64, len(xs))
			for i, x := range xs {
				out[i] = f(x)
			}
			return out
		}
		ratio := func(f func(phaseResult) float64) float64 {
			rs := make([]float64, len(r.direct))
			for i := range r.direct {
				rs[i] = f(r.kguard[i]) / f(r.direct[i])
			}
			return median(rs)
		}
		added := func(f func(phaseResult) float64) float64 {
			rs := make([]float64, len(r.direct))
			for i := range r.direct {
				rs[i] = f(r.kguard[i]) - f(r.direct[i])
			}
			return median(rs)
		}
		thr := func(label string, f func(phaseResult) float64, scale float64, format string, target bool) {
			rt := ratio(f)
			tgt, met := "", ""
			if target && r.target > 0 {
				tgt, met = fmt.Sprintf(">= %.2f", r.target), yesNo(rt >= r.target)
			}
			fmt.Fprintf(tw, "%s\t%s\t"+format+"\t"+format+"\tratio %.3f\t%s\t%s\t\n", r.name, label,
				median(get(r.direct, f))/scale, median(get(r.kguard, f))/scale, rt, tgt, met)
		}
		thr("produce MB/s", func(p phaseResult) float64 { return p.produceBytes }, 1e6, "%.1f", true)
		thr("produce records/s", func(p phaseResult) float64 { return p.produceRecs }, 1, "%.0f", false)
		thr("produce records/batch", func(p phaseResult) float64 { return p.recsPerBatch }, 1, "%.1f", false)
		thr("consume MB/s", func(p phaseResult) float64 { return p.consumeBytes }, 1e6, "%.1f", true)
		thr("consume records/s", func(p phaseResult) float64 { return p.consumeRecs }, 1, "%.0f", false)
		lat := func(label string, f func(phaseResult) float64, target bool) {
			a := added(f)
			tgt, met := "", ""
			if target {
				tgt, met = "<= +0.300 ms", yesNo(a <= 0.3)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\tadded %+.3f ms\t%s\t%s\t\n", r.name, label,
				median(get(r.direct, f)), median(get(r.kguard, f)), a, tgt, met)
		}
		lat(fmt.Sprintf("produce p50 ms @%d/s", rate), func(p phaseResult) float64 { return ms(p.p50) }, false)
		lat(fmt.Sprintf("produce p99 ms @%d/s", rate), func(p phaseResult) float64 { return ms(p.p99) }, true)
		lat(fmt.Sprintf("interleaved p50 ms @%d/s", rate), func(p phaseResult) float64 { return ms(p.ip50) }, false)
		lat(fmt.Sprintf("interleaved p99 ms @%d/s", rate), func(p phaseResult) float64 { return ms(p.ip99) }, true)
		for _, bn := range append([]string{r.baseline}, r.alsoVs...) {
			b := findRow(rows, bn)
			if b == nil {
				continue
			}
			vs := func(label string, f func(phaseResult) float64) {
				rt := median(get(r.kguard, f)) / median(get(b.kguard, f))
				fmt.Fprintf(tw, "%s\t%s vs %s\t%.1f\t%.1f\tratio %.3f\t>= %.2f\t%s\t\n", r.name, label, b.name,
					median(get(b.kguard, f))/1e6, median(get(r.kguard, f))/1e6, rt, r.target, yesNo(rt >= r.target))
			}
			vs("produce MB/s", func(p phaseResult) float64 { return p.produceBytes })
			vs("consume MB/s", func(p phaseResult) float64 { return p.consumeBytes })
		}
		kc, kgb := cpuGB(r.kguard)
		dc, dgb := cpuGB(r.direct)
		perGB := kc/kgb - dc/dgb
		fmt.Fprintf(tw, "%s\tkguard CPU s/GB\t%.2f\t%.2f\tkguard's share %.2f\t\t\t\n", r.name, dc/dgb, kc/kgb, perGB)
		kp, ks, kn := cpuProduce(r.kguard)
		dp, ds, dn := cpuProduce(r.direct)
		if kn > 0 && dn > 0 {
			us := 1e6 * (kp/kn - dp/dn)
			busy := kp / kn * median(get(r.kguard, func(p phaseResult) float64 { return p.produceRecs }))
			fmt.Fprintf(tw, "%s\tkguard CPU us/produced record\t%.2f\t%.2f\tone core: %.0f records/s, %.2f busy\t\t\t\n", r.name,
				1e6*dp/dn, 1e6*kp/kn, 1e6/max(us, 0.01), busy)
			fmt.Fprintf(tw, "%s\t  of which in the kernel\t%.2f\t%.2f\t%.0f%% of kguard's\t\t\t\n", r.name,
				1e6*ds/dn, 1e6*ks/kn, 100*ks/max(kp, 1e-9))
		}
	}
	tw.Flush()
	fmt.Fprintf(out, `
direct/kguard columns: median over rounds; ratio and added latency: median of the per-round kguard/direct
ratios and kguard-direct differences. Throughput: one kgo client, as fast as it goes (produce: idempotent,
acks=all, default linger, 6 partitions, rate from first send to last ack; consume: fresh client reading a
preloaded topic, rate from the first fetched batch). Latency: one record every %v with linger 0, send to ack;
"interleaved": a direct and a kguard producer paced at the same rate at the same time, sends alternating, so
machine noise hits both alike (the sequential rows are the A/B phases above). "X vs Y" rows: kguard's MB/s in
scenario X over kguard's MB/s in scenario Y (json-passthrough and encryption write 1 KiB JSON records in batches
of at most 256 KiB, the other scenarios random bytes in batches of up to 1 MiB: compare like with like).
%s
Cluster: %s.
The clients (and kfake) run in this process and share the machine's CPUs with kguard, so kguard's CPU use
also slows them: the ratios include that contention. Machine load average (1 min) at start %s,
at end %s; other work on the machine makes every number noisier.
%s`, time.Second/time.Duration(rate), cpuMethod(rows), rows[0].cluster, load0, load1, idleNote())
}

// idleNote says how this machine's idle CPUs wake, when it can tell: a
// paced record crosses kguard twice, and each crossing may wake a CPU
// from idle (in a VM, a halted vCPU costs a trip through the hypervisor,
// tens of µs, unless the guest polls first: cpuidle-haltpoll's
// guest_halt_poll_ns).
func idleNote() string {
	b, err := os.ReadFile("/sys/devices/system/cpu/cpuidle/current_driver")
	if err != nil {
		return ""
	}
	drv := strings.TrimSpace(string(b))
	note := "CPU idle driver: " + drv
	if b, err := os.ReadFile("/sys/module/haltpoll/parameters/guest_halt_poll_ns"); err == nil && drv == "haltpoll" {
		ns := strings.TrimSpace(string(b))
		note += ", guest_halt_poll_ns " + ns
		if ns == "0" {
			note += " (an idle vCPU halts at once: every wake-up goes through the hypervisor, which the\n" +
				"paced latency rows pay on each of kguard's two extra hops; docs/architecture.md)"
		}
	}
	return note + ".\n"
}

// findRow returns the row named name, nil if none.
func findRow(rows []scenarioResult, name string) *scenarioResult {
	for i := range rows {
		if name != "" && rows[i].name == name {
			return &rows[i]
		}
	}
	return nil
}

// cpuProduce sums kguard's CPU seconds, their system part, and the
// records of the produce phases.
func cpuProduce(ps []phaseResult) (cpu, sys, recs float64) {
	for _, p := range ps {
		cpu += p.produceCPU
		sys += p.produceSys
		recs += p.producedRecs
	}
	return cpu, sys, recs
}

// cpuGB sums the CPU seconds and payload GB of the throughput phases.
func cpuGB(ps []phaseResult) (cpu, gb float64) {
	for _, p := range ps {
		cpu += p.cpu
		gb += float64(p.movedBytes) / 1e9
	}
	return cpu, gb
}

func cpuMethod(rows []scenarioResult) string {
	if len(rows) > 0 && rows[0].inproc {
		return `CPU (-inprocess): user+system time of this whole process (getrusage) over the produce and consume
throughput phases per GB of record payload moved; kguard's share = the kguard column minus the direct column
(what the same traffic costs without kguard).`
	}
	return `CPU: user+system time of the kguard child process (/proc/<pid>/stat, 10 ms ticks) over the produce and
consume throughput phases per GB of record payload moved (wire bytes are slightly more); the direct column is
kguard's idle CPU during the direct phases, and kguard's share subtracts it. "us/produced record": the same
over the produce phase alone per record written; "one core" is how many records/s one core of kguard's own
would carry at that cost (a capacity figure: kguard does not share that core with the clients or the cluster),
"busy" the cores kguard kept busy while producing (its CPU per record times the records/s it carried): with
-pin, below 1 means kguard's core waited for the clients and the cluster, which set the throughput;
"of which in the kernel" is its system time: socket reads and writes, and on loopback also the TCP receive
processing of the peer that reads what kguard writes (the broker's side, which a network would not charge here).`
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
