package faults_test

// The audit fault tests run kguard as a child process (`go build
// ./cmd/kguard`, then `kguard serve --config F`) so that it can be killed
// with SIGKILL, with its audit trail on: spool in a temp dir, a fresh
// signing key from `kguard audit keygen`, and an audit topic unique to the
// test run, shipped over SASL_SSL (SCRAM-SHA-512) as kguard's own identity.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// auditStack is kguard as a child process in front of the real cluster,
// with the audit trail on.
type auditStack struct {
	t        *testing.T
	kafka    testenv.Kafka
	dir      string
	bin      string
	cfgPath  string
	pubFile  string
	spool    string
	instance string
	topic    string // the audit topic of this run
	user     string
	password string
	port     int // bootstrap; broker N on port+1+N
	mport    int // /metrics and /healthz
	direct   audit.KafkaOptions
	adm      *kadm.Client // straight to the brokers, as kguard's identity
	proc     *kguardProc
	starts   int
}

// kguardProc is one run of the kguard binary.
type kguardProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // cmd.Wait's result, valid after done
}

// buildKguard builds ./cmd/kguard into dir (with -race when this test
// binary has it).
func buildKguard(t *testing.T, dir string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "kguard")
	args := []string{"build"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "-o", bin, "./cmd/kguard")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built kguard (race=%v) in %v", raceEnabled, time.Since(start).Round(time.Millisecond))
	return bin
}

// newAuditStack prepares everything and starts kguard.
func newAuditStack(t *testing.T, name string) *auditStack {
	t.Helper()
	k := testenv.NeedKafka(t)
	dir := t.TempDir()
	s := &auditStack{
		t: t, kafka: k, dir: dir,
		spool:    filepath.Join(dir, "spool"),
		instance: "faults-" + name + "-" + randHex(t, 4),
		topic:    "__kguard_audit_faults_" + name + "_" + randHex(t, 4),
		user:     principalUser, password: randHex(t, 16),
		direct: audit.KafkaOptions{Brokers: k.SASLSSL, TLS: true, CAFile: k.CAFile,
			SASLMechanism: "SCRAM-SHA-512", User: k.User, Password: k.Password},
	}
	s.bin = buildKguard(t, dir)
	pdir := filepath.Join(dir, "policies")
	copyPolicies(t, pdir)
	users := filepath.Join(dir, "users.yaml")
	if err := auth.AddUser(users, s.user, s.password, 4096); err != nil {
		t.Fatalf("adding SASL user: %v", err)
	}
	pwFile := filepath.Join(dir, "upstream-password")
	if err := os.WriteFile(pwFile, []byte(k.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "audit-signing.pem")
	if out, err := exec.Command(s.bin, "audit", "keygen", "--out", key).CombinedOutput(); err != nil {
		t.Fatalf("kguard audit keygen: %v\n%s", err, out)
	}
	s.pubFile = key + ".pub"
	ports, err := harness.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	s.port, s.mport = ports[0], ports[1]
	cfg := fmt.Sprintf(`listen:
  bootstrap: 127.0.0.1:%d
  broker_port_base: %d
  auth:
    sasl_mechanisms: [SCRAM-SHA-512]
    credentials_file: %s
upstream:
  bootstrap: [%s]
  tls:
    ca_file: %s
  sasl:
    mechanism: SCRAM-SHA-512
    username: %s
    password_file: %s
  startup_timeout: 90s
policy:
  dirs: [%s]
  watch: false
audit:
  enabled: true
  instance_id: %s
  spool_dir: %s
  signing_key_file: %s
  on_full: fail-closed
  checkpoint_every: 1000
  checkpoint_interval: 5s
  topic:
    name: %s
    partitions: 3
    replication_factor: 3
    min_insync_replicas: 2
    retention: 24h
limits:
  shutdown_grace: 10s
log:
  level: warn
metrics:
  listen: 127.0.0.1:%d
`, s.port, s.port+1, users, strings.Join(k.SASLSSL, ", "), k.CAFile, k.User, pwFile, pdir,
		s.instance, s.spool, key, s.topic, s.mport)
	s.cfgPath = filepath.Join(dir, "kguard.yaml")
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := s.direct.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.ClientID("kguard-faults-audit-direct"))...)
	if err != nil {
		t.Fatal(err)
	}
	s.adm = kadm.NewClient(cl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.adm.DeleteTopics(ctx, s.topic); err != nil {
			t.Logf("deleting %s: %v", s.topic, err)
		}
		cl.Close()
	})
	// Registered after the topic cleanup, so it runs first.
	t.Cleanup(func() {
		if s.proc != nil {
			select {
			case <-s.proc.done:
			default:
				_ = s.proc.cmd.Process.Kill()
				<-s.proc.done
			}
			s.proc = nil
		}
	})
	return s
}

// start runs `kguard serve` and waits until /healthz answers.
func (s *auditStack) start() {
	t := s.t
	t.Helper()
	s.starts++
	logPath := filepath.Join(s.dir, fmt.Sprintf("kguard-run%d.log", s.starts))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "serve", "--config", s.cfgPath)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting kguard: %v", err)
	}
	p := &kguardProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.proc = p
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	for {
		select {
		case <-p.done:
			t.Fatalf("kguard exited during start-up: %v\n%s", p.err, tail(logPath, 30))
		default:
		}
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", s.mport)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("kguard run %d (pid %d) ready after %v", s.starts, cmd.Process.Pid, time.Since(start).Round(time.Millisecond))
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kguard not ready after 2m\n%s", tail(logPath, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends sig to kguard and waits for it to exit. SIGTERM must end
// with exit status 0 (a clean close: audit.stop, final checkpoint, spool
// shipped).
func (s *auditStack) stop(sig syscall.Signal) {
	t := s.t
	t.Helper()
	p := s.proc
	if p == nil {
		t.Fatal("kguard is not running")
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling kguard: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("kguard did not exit within 90s of %v\n%s", sig, tail(p.log, 30))
	}
	s.proc = nil
	t.Logf("kguard run %d exited after %v on %v: %v", s.starts, time.Since(start).Round(time.Millisecond), sig, p.err)
	logText, _ := os.ReadFile(p.log)
	if bytes.Contains(logText, []byte("WARNING: DATA RACE")) {
		t.Errorf("kguard run %d reported a data race:\n%s", s.starts, logText)
	}
	switch sig {
	case syscall.SIGTERM:
		if p.err != nil {
			t.Fatalf("kguard after SIGTERM: %v (want a clean exit)\n%s", p.err, tail(p.log, 30))
		}
	case syscall.SIGKILL:
		var ee *exec.ExitError
		if !errors.As(p.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("kguard was not killed by SIGKILL: %v", p.err)
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// metrics reads the named un-labelled metrics from one scrape of kguard's
// /metrics.
func (s *auditStack) metrics(names ...string) (map[string]float64, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.mport))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for _, name := range names {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return nil, fmt.Errorf("metric %s: %w", name, err)
				}
				out[name] = f
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("metric %s not exported", name)
		}
	}
	return out, nil
}

// auditProgress is kguard's recorded and shipped event counts of the
// current run from one scrape (-1 when unreadable).
func (s *auditStack) auditProgress() (recorded, shipped int64) {
	const rn, sn = "kguard_audit_events_recorded_total", "kguard_audit_events_shipped_total"
	m, err := s.metrics(rn, sn)
	if err != nil {
		s.t.Logf("reading kguard's audit metrics: %v", err)
		return -1, -1
	}
	return int64(m[rn]), int64(m[sn])
}

// clientOpts reach kguard as User:faults.
func (s *auditStack) clientOpts(opts ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", s.port)),
		kgo.SASL(scram.Auth{User: s.user, Pass: s.password}.AsSha512Mechanism()),
		kgo.ClientID("kguard-faults-audit"),
	}, opts...)
}

// createClientTopic creates a 3-partition RF=3 topic through kguard.
func (s *auditStack) createClientTopic(topic string) {
	t := s.t
	t.Helper()
	cl, err := kgo.NewClient(s.clientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 3, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("creating %s through kguard: %v", topic, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.adm.DeleteTopics(ctx, topic); err != nil {
			t.Logf("deleting %s: %v", topic, err)
		}
	})
}

// requestCounter counts Produce and Fetch requests the client wrote to
// kguard, and the Produce responses it read back.
type requestCounter struct{ produce, fetch, produceAnswered *atomic.Int64 }

// OnBrokerRead counts answered Produce requests: kguard answers only what
// it read, authorized and audited. A request the client wrote just as
// kguard closed the connection (its broker connection died) was never
// read by kguard, reached no broker, and is retried by the client.
func (h requestCounter) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil && key == 0 {
		h.produceAnswered.Add(1)
	}
}

func (h requestCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	switch key {
	case 0:
		h.produce.Add(1)
	case 1:
		h.fetch.Add(1)
	}
}

// traffic is producers and a consumer through kguard.
type traffic struct {
	topic              string
	produceReqs        atomic.Int64 // Produce requests written to kguard
	produceAnswered    atomic.Int64 // Produce responses read from kguard
	fetchReqs          atomic.Int64
	acked, failed      atomic.Int64 // records
	consumed           atomic.Int64
	cancel             context.CancelFunc
	wg                 sync.WaitGroup
	firstErrMu         sync.Mutex
	firstErr           error
	producer, consumer *kgo.Client
}

// startTraffic runs `writers` goroutines producing one 100-byte record at a
// time (each request carries few records, so requests are many) with an
// idempotent acks=all client, and a consumer reading the topic, until stop.
func (s *auditStack) startTraffic(topic string, writers int) *traffic {
	t := s.t
	t.Helper()
	tr := &traffic{topic: topic}
	hook := requestCounter{produce: &tr.produceReqs, fetch: &tr.fetchReqs, produceAnswered: &tr.produceAnswered}
	var err error
	tr.producer, err = kgo.NewClient(s.clientOpts(kgo.WithHooks(hook), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	tr.consumer, err = kgo.NewClient(s.clientOpts(kgo.WithHooks(hook), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	val := bytes.Repeat([]byte("a"), 100)
	for range writers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for ctx.Err() == nil {
				if err := tr.producer.ProduceSync(ctx, &kgo.Record{Value: val}).FirstErr(); err != nil {
					if ctx.Err() != nil {
						return
					}
					tr.failed.Add(1)
					tr.firstErrMu.Lock()
					if tr.firstErr == nil {
						tr.firstErr = err
					}
					tr.firstErrMu.Unlock()
					time.Sleep(100 * time.Millisecond)
					continue
				}
				tr.acked.Add(1)
			}
		}()
	}
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		for ctx.Err() == nil {
			fs := tr.consumer.PollFetches(ctx)
			tr.consumed.Add(int64(fs.NumRecords()))
		}
	}()
	t.Cleanup(tr.stop)
	return tr
}

// stop ends the traffic and closes the clients (idempotent).
func (tr *traffic) stop() {
	if tr.cancel == nil {
		return
	}
	tr.cancel()
	tr.wg.Wait()
	tr.producer.Close()
	tr.consumer.Close()
	tr.cancel = nil
}

// waitProduce waits until at least n Produce requests were written.
func (tr *traffic) waitProduce(ctx context.Context, n int64) error {
	for tr.produceReqs.Load() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d produce requests written (first error: %v): %w", tr.produceReqs.Load(), n, tr.err(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func (tr *traffic) err() error {
	tr.firstErrMu.Lock()
	defer tr.firstErrMu.Unlock()
	return tr.firstErr
}

func (tr *traffic) String() string {
	return fmt.Sprintf("%d produce requests, %d records acknowledged, %d failed, %d fetch requests, %d records consumed",
		tr.produceReqs.Load(), tr.acked.Load(), tr.failed.Load(), tr.fetchReqs.Load(), tr.consumed.Load())
}

// spoolState is what a spool directory holds: the shipped cursor and the
// events of the retained segments.
type spoolState struct {
	cursor uint64            // highest seq acknowledged by Kafka
	last   uint64            // highest seq recorded (max of cursor and the segments)
	events map[uint64][]byte // seq -> value, events still in segments
	torn   int               // bytes of a torn tail record (never acknowledged)
}

// readSpool reads a spool directory in the documented layout
// (docs/audit.md): "KGAUDIT1", then records u32 length | u32
// CRC-32C(seq||payload) | u64 seq | payload, big endian. A record cut
// short or failing its CRC at the very end of the last segment is a torn
// write (the process was killed inside write(2)); anywhere else it is an
// error.
func readSpool(dir string) (spoolState, error) {
	st := spoolState{events: map[uint64][]byte{}}
	if b, err := os.ReadFile(filepath.Join(dir, "cursor")); err == nil {
		if st.cursor, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil {
			return st, fmt.Errorf("spool cursor %q: %w", b, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return st, err
	}
	st.last = st.cursor
	names, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		return st, err
	}
	sort.Strings(names) // 20-digit zero-padded first seqs
	crcTab := crc32.MakeTable(crc32.Castagnoli)
	var prev uint64
	for i, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return st, err
		}
		if !bytes.HasPrefix(b, []byte("KGAUDIT1")) {
			return st, fmt.Errorf("%s: no segment magic", name)
		}
		b = b[8:]
		lastSeg := i == len(names)-1
		for len(b) > 0 {
			bad := ""
			var l uint32
			switch {
			case len(b) < 16:
				bad = "partial header"
			default:
				l = binary.BigEndian.Uint32(b[0:4])
				if 16+int(l) > len(b) {
					bad = "partial payload"
				}
			}
			if bad == "" {
				c := crc32.Update(0, crcTab, b[8:16])
				c = crc32.Update(c, crcTab, b[16:16+l])
				if c != binary.BigEndian.Uint32(b[4:8]) {
					bad = "CRC mismatch"
				}
			}
			if bad != "" {
				if lastSeg {
					st.torn = len(b)
					break
				}
				return st, fmt.Errorf("%s: %s inside a closed segment", name, bad)
			}
			seq := binary.BigEndian.Uint64(b[8:16])
			if prev != 0 && seq != prev+1 {
				return st, fmt.Errorf("%s: seq %d after %d", name, seq, prev)
			}
			prev = seq
			st.events[seq] = append([]byte(nil), b[16:16+l]...)
			st.last = max(st.last, seq)
			b = b[16+l:]
		}
	}
	return st, nil
}

// trail is this instance's part of the audit topic.
type trail struct {
	records    int
	values     map[uint64][][]byte // seq -> stored values, in topic order
	partitions map[int32]int
	types      map[audit.EventType]int // first copy of each seq
	produce    struct{ decisions, records int64 }
	maxSeq     uint64
}

// readTrail reads the audit topic straight from the brokers, from the
// start to the end offsets read first, keeping this instance's records.
func (s *auditStack) readTrail(ctx context.Context, clientTopic string) (*trail, error) {
	ends, err := s.adm.ListEndOffsets(ctx, s.topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", s.topic, err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			want[o.Partition] = o.Offset
			offsets[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", s.topic, err)
	}
	tr := &trail{values: map[uint64][][]byte{}, partitions: map[int32]int{}, types: map[audit.EventType]int{}}
	if len(want) == 0 {
		return tr, nil
	}
	opts, err := s.direct.ClientOpts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	pos := map[int32]int64{}
	done := func() bool {
		for p, end := range want {
			if pos[p] < end {
				return false
			}
		}
		return true
	}
	var firstErr error
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading %s: at %v of %v: %w", s.topic, pos, want, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) {
			s.t.Logf("fetch %s/%d: %v", s.topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			pos[r.Partition] = r.Offset + 1
			if string(r.Key) != s.instance {
				return
			}
			tr.records++
			tr.partitions[r.Partition]++
			ev, err := audit.DecodeEvent(r.Value)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
				}
				return
			}
			if len(tr.values[ev.Seq]) == 0 {
				tr.types[ev.Type]++
				if ev.Type == audit.EventAuthzDecision && ev.What != nil && ev.What.APIKey == 0 {
					tr.produce.decisions++
					for _, ts := range ev.What.Produce {
						if ts.Topic != clientTopic {
							continue
						}
						for _, ps := range ts.Partitions {
							tr.produce.records += ps.Records
						}
					}
				}
			}
			tr.values[ev.Seq] = append(tr.values[ev.Seq], append([]byte(nil), r.Value...))
			tr.maxSeq = max(tr.maxSeq, ev.Seq)
		})
	}
	return tr, firstErr
}

// auditCounts compares the trail with what kguard recorded.
type auditCounts struct {
	recorded    uint64 // seqs 1..recorded were recorded by kguard
	inTopic     int    // distinct seqs of this instance in the topic
	records     int    // records of this instance in the topic
	lost        int    // seqs in 1..recorded missing from the topic
	duplicated  int    // extra identical copies (at-least-once redelivery)
	conflicting int    // seqs stored with different contents
	beyond      int    // seqs above recorded
	spoolDiffer int    // spooled events whose topic copy has other bytes
}

func (c auditCounts) String() string {
	return fmt.Sprintf("events recorded %d, in topic %d (%d records), lost %d, duplicated %d (identical redeliveries), conflicting %d, unexpected seqs above %d: %d, spooled events stored with other bytes: %d",
		c.recorded, c.inTopic, c.records, c.lost, c.duplicated, c.conflicting, c.recorded, c.beyond, c.spoolDiffer)
}

// compare counts the trail against seqs 1..recorded, and checks that every
// event of spooled (seq -> value, read from the spool) is in the topic
// with exactly those bytes.
func compare(tr *trail, recorded uint64, spooled ...map[uint64][]byte) auditCounts {
	c := auditCounts{recorded: recorded, inTopic: len(tr.values), records: tr.records}
	for seq := uint64(1); seq <= recorded; seq++ {
		if len(tr.values[seq]) == 0 {
			c.lost++
		}
	}
	for seq, vs := range tr.values {
		if seq > recorded {
			c.beyond++
		}
		for _, v := range vs[1:] {
			if bytes.Equal(v, vs[0]) {
				c.duplicated++
			} else {
				c.conflicting++
			}
		}
	}
	for _, sp := range spooled {
		for seq, v := range sp {
			if vs := tr.values[seq]; len(vs) > 0 && !bytes.Equal(vs[0], v) {
				c.spoolDiffer++
			}
		}
	}
	return c
}

// checkCounts prints the counts and fails on any loss or conflict.
func checkCounts(t *testing.T, what string, c auditCounts) {
	t.Helper()
	line := fmt.Sprintf("audit fault %s: %s", what, c)
	t.Log(line)
	fmt.Println(line)
	if c.recorded == 0 {
		t.Fatalf("%s: kguard recorded nothing; the check would be vacuous", what)
	}
	if c.lost != 0 || c.conflicting != 0 || c.beyond != 0 || c.spoolDiffer != 0 {
		t.Errorf("%s: %d events lost, %d conflicting, %d unexpected seqs above %d, %d spooled events stored with other bytes",
			what, c.lost, c.conflicting, c.beyond, c.recorded, c.spoolDiffer)
	}
}

// verifyTrail runs audit.Verify over the topic and requires a clean
// report whose chain for this instance is seqs 1..n ending in a verified
// checkpoint over 1..n-1 (the final checkpoint of a clean stop).
func (s *auditStack) verifyTrail(ctx context.Context, n uint64) audit.Report {
	t := s.t
	t.Helper()
	pub, err := audit.LoadPublicKey(s.pubFile)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := s.direct.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, audit.VerifyConfig{ClientOpts: opts, Topic: s.topic, PublicKeys: []ed25519.PublicKey{pub}}, io.Discard)
	if err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	var b strings.Builder
	_ = rep.WriteText(&b)
	t.Logf("verify report:\n%s", b.String())
	if !rep.OK() {
		t.Errorf("verify: %d error findings, want none", rep.Errors())
	}
	var ir *audit.InstanceReport
	for i := range rep.Instances {
		if rep.Instances[i].Instance == s.instance {
			ir = &rep.Instances[i]
		}
	}
	if ir == nil {
		t.Fatalf("verify report has no instance %s", s.instance)
	}
	if ir.FirstSeq != 1 || ir.LastSeq != n || uint64(ir.Events) != n {
		t.Errorf("verify: chain seq %d..%d with %d events, want 1..%d", ir.FirstSeq, ir.LastSeq, ir.Events, n)
	}
	if ir.VerifiedSize != n-1 {
		t.Errorf("verify: largest verified checkpoint covers %d events, want %d (the final checkpoint)", ir.VerifiedSize, n-1)
	}
	fmt.Printf("audit verify %s: OK=%v, %d records, chain 1..%d, %d checkpoints (%d verified, last covering %d events), %d findings\n",
		s.instance, rep.OK(), rep.Records, ir.LastSeq, ir.Checkpoints, ir.VerifiedCheckpoints, ir.VerifiedSize, len(rep.Findings))
	return rep
}

// cliVerify runs `kguard audit verify` against the topic with pubFile and
// returns its output and error (non-nil on a non-zero exit).
func (s *auditStack) cliVerify(ctx context.Context, pubFile string) (string, error) {
	cmd := exec.CommandContext(ctx, s.bin, "audit", "verify", "--brokers", strings.Join(s.kafka.SASLSSL, ","),
		"--tls", "--ca", s.kafka.CAFile, "--sasl-mechanism", "SCRAM-SHA-512", "--user", s.kafka.User,
		"--password-env", "KGUARD_FAULTS_AUDIT_PASSWORD", "--topic", s.topic, "--pubkey", pubFile)
	cmd.Env = append(os.Environ(), "KGUARD_FAULTS_AUDIT_PASSWORD="+s.kafka.Password)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// drainedSpool reads the spool after a clean stop and requires that
// everything recorded was acknowledged by Kafka.
func (s *auditStack) drainedSpool() spoolState {
	t := s.t
	t.Helper()
	st, err := readSpool(s.spool)
	if err != nil {
		t.Fatalf("reading the spool: %v", err)
	}
	if st.torn != 0 {
		t.Errorf("spool has a torn tail of %d bytes after a clean stop", st.torn)
	}
	if st.cursor != st.last {
		t.Fatalf("spool not drained after a clean stop: recorded up to seq %d, acknowledged by Kafka up to %d", st.last, st.cursor)
	}
	return st
}

// cluster runs cluster.sh with args (kill/restart only under the exclusive
// clusterLock).
func (s *auditStack) cluster(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "bash", append([]string{s.kafka.Script}, args...)...)
	out, err := cmd.CombinedOutput()
	s.t.Logf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("cluster.sh %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
