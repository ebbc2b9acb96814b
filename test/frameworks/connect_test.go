package frameworks_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kguard/kguard/test/harness"
)

// connectNames are the names of one Connect cluster of a test run: the
// worker's group and internal topics, the connectors and their topic.
type connectNames struct {
	group                    string // group.id
	configs, offsets, status string // internal topics (the shipped connect-internal class)
	source, sink             string // connector names
	topic                    string // the topic the file goes through
	sinkGroup                string // connect-<sink>: the sink connector's consumer group
	internal                 []string
}

func newConnectNames(run string) connectNames {
	p := "cx" + run
	n := connectNames{
		group:   p + "-connect-cluster",
		configs: p + "-connect-configs",
		offsets: p + "-connect-offsets",
		status:  p + "-connect-status",
		source:  p + "-file-source",
		sink:    p + "-file-sink",
		topic:   p + "-lines",
	}
	n.sinkGroup = "connect-" + n.sink
	n.internal = []string{n.configs, n.offsets, n.status}
	return n
}

// connectRecipeACLs are the grants of docs/policy.md's Connect recipe for
// the worker principal, with this run's names.
func connectRecipeACLs(principal string, n connectNames) []harness.ACL {
	acl := func(res, pattern, name, op string) harness.ACL {
		return harness.ACL{Principal: principal, Host: "*", Resource: res, Pattern: pattern, Name: name, Operation: op, Permission: "ALLOW"}
	}
	a := []harness.ACL{
		acl("Group", "LITERAL", n.group, "Read"),     // the workers' group
		acl("Group", "PREFIXED", "connect-", "Read"), // sink connectors' groups
		// the source connector's topic, created by the worker
		// (topic.creation), and the sink's
		acl("Topic", "LITERAL", n.topic, "Create"),
		acl("Topic", "LITERAL", n.topic, "Write"),
		acl("Topic", "LITERAL", n.topic, "Read"),
	}
	for _, name := range n.internal {
		for _, op := range []string{"Create", "Read", "Write", "DescribeConfigs"} {
			a = append(a, acl("Topic", "LITERAL", name, op))
		}
	}
	return a
}

// connectWorkerProps is a distributed worker's configuration, logging in
// to the kguard of s as user.
func connectWorkerProps(s *stack, user string, n connectNames, restPort int) string {
	return fmt.Sprintf(`bootstrap.servers=%s
group.id=%s
config.storage.topic=%s
offset.storage.topic=%s
status.storage.topic=%s
offset.storage.partitions=3
status.storage.partitions=1
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
listeners=http://127.0.0.1:%d
rest.advertised.host.name=127.0.0.1
rest.advertised.port=%d
offset.flush.interval.ms=500
scheduled.rebalance.max.delay.ms=0
task.shutdown.graceful.timeout.ms=2000
%s`, s.bootstrap, n.group, n.configs, n.offsets, n.status, restPort, restPort,
		cxClientProps(s, user, "", "producer.", "consumer.", "admin."))
}

// connectFile is n lines of text (ASCII, tabs, UTF-8), newline-terminated.
func connectFile(lines int) []byte {
	words := []string{"ledger", "débit", "crédit", "Überweisung", "支付", "💶", "acct\t42", "{\"amount\": 12.50}", "x"}
	var b bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&b, "%06d", i)
		for range 1 + rand.IntN(12) {
			b.WriteByte(' ')
			b.WriteString(words[rand.IntN(len(words))])
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// startConnectWorker writes the worker's properties and starts it.
func startConnectWorker(t *testing.T, dir, name string, s *stack, user string, n connectNames) (*cxJava, cxREST) {
	t.Helper()
	ports, err := harness.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	props := filepath.Join(dir, name+".properties")
	if err := os.WriteFile(props, []byte(connectWorkerProps(s, user, n, ports[0])), 0o600); err != nil {
		t.Fatal(err)
	}
	j := cxStartJava(t, dir, name, "org.apache.kafka.connect.cli.ConnectDistributed", props)
	return j, cxREST{base: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
}

// waitConnectorRunning waits until the connector and its task run; a
// failed connector or task fails the test with its trace.
func waitConnectorRunning(ctx context.Context, t *testing.T, w *cxJava, rest cxREST, name string) {
	t.Helper()
	err := cxPoll(ctx, 300*time.Millisecond, "connector "+name+" running", func() (bool, error) {
		if w.exited() {
			t.Fatalf("worker exited\n%s", fileTail(w.logFile, 60))
		}
		var st cxConnectorStatus
		if _, err := rest.do(ctx, "GET", "/connectors/"+name+"/status", nil, &st); err != nil {
			return false, err
		}
		if trace, failed := st.failed(); failed {
			t.Fatalf("connector %s failed: %s\nworker log:\n%s", name, trace, fileTail(w.logFile, 60))
		}
		return st.running(), nil
	})
	if err != nil {
		t.Fatalf("%v\nworker log:\n%s", err, fileTail(w.logFile, 60))
	}
}

// TestConnectDistributed runs a Kafka Connect worker in distributed mode
// through kguard with the shipped policies and the Connect recipe's
// grants: it creates its internal topics itself, a FileStreamSource
// connector reads a file into a topic (created by the worker too), a
// FileStreamSink connector writes the topic to another file, and the two
// files are equal byte for byte. A worker whose principal lacks the
// recipe's grants is refused with a clear message.
func TestConnectDistributed(t *testing.T) {
	start := time.Now()
	run := harness.RandHex(t, 3)
	n := newConnectNames(run)
	bad := newConnectNames(run + "x")
	const worker, intruder = "connect-worker", "connect-intruder"
	// The intruder may use the connectors' topic (as an ordinary
	// application would), nothing of the recipe.
	acls := connectRecipeACLs("User:"+worker, n)
	acls = append(acls,
		harness.ACL{Principal: "User:" + intruder, Host: "*", Resource: "Topic", Pattern: "LITERAL", Name: bad.topic, Operation: "All", Permission: "ALLOW"})
	s := startStack(t, stackOpts{acls: acls, users: []string{worker, intruder}})
	dir := t.TempDir()
	cxKeepLogs(t, dir, s.logFile)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm := kadm.NewClient(direct(t, s.kafka))
	deleteTopicsWithPrefix(t, adm, "cx"+run)
	cxDeleteGroups(t, adm, n.group, n.sinkGroup, bad.group)

	w, rest := startConnectWorker(t, dir, "worker", s, worker, n)
	err := cxPoll(ctx, 300*time.Millisecond, "worker REST API", func() (bool, error) {
		if w.exited() {
			t.Fatalf("Connect worker exited\n%s\nkguard:\n%s", fileTail(w.logFile, 60), s.logTail(20))
		}
		var names []string
		_, err := rest.do(ctx, "GET", "/connectors", nil, &names)
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("%v\nworker log:\n%s\nkguard:\n%s", err, fileTail(w.logFile, 60), s.logTail(20))
	}
	up := time.Since(start)

	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	const lines = 2000
	data := connectFile(lines)
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := rest.do(ctx, "POST", "/connectors", map[string]any{"name": n.source, "config": map[string]string{
		"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
		"tasks.max":       "1",
		"file":            in,
		"topic":           n.topic,
		"batch.size":      "500",
		// the worker creates the topic through kguard (KIP-158): one
		// partition keeps the lines in order
		"topic.creation.default.partitions":         "1",
		"topic.creation.default.replication.factor": "-1",
	}}, nil); err != nil {
		t.Fatalf("%v\nworker log:\n%s", err, fileTail(w.logFile, 80))
	}
	waitConnectorRunning(ctx, t, w, rest, n.source)
	if _, err := rest.do(ctx, "POST", "/connectors", map[string]any{"name": n.sink, "config": map[string]string{
		"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
		"tasks.max":       "1",
		"file":            out,
		"topics":          n.topic,
	}}, nil); err != nil {
		t.Fatalf("%v\nworker log:\n%s", err, fileTail(w.logFile, 80))
	}
	waitConnectorRunning(ctx, t, w, rest, n.sink)

	var got []byte
	err = cxPoll(ctx, 300*time.Millisecond, "sink file complete", func() (bool, error) {
		var err error
		got, err = os.ReadFile(out)
		if err != nil {
			return false, err
		}
		if len(got) > len(data) {
			t.Fatalf("sink file has %d bytes, the source %d (duplicates?)", len(got), len(data))
		}
		return len(got) == len(data), nil
	})
	if err != nil {
		t.Fatalf("%v: %d of %d bytes\nworker log:\n%s", err, len(got), len(data), fileTail(w.logFile, 60))
	}
	if !bytes.Equal(got, data) {
		i := 0
		for i < len(got) && got[i] == data[i] {
			i++
		}
		t.Fatalf("sink file differs from the source at byte %d", i)
	}

	// The internal topics exist, compacted: the worker created them (their
	// names are this run's, the test created none, and the worker's only
	// way to the cluster is kguard).
	rcs, err := adm.DescribeTopicConfigs(ctx, n.internal...)
	if err != nil {
		t.Fatalf("describing the internal topics: %v", err)
	}
	for _, name := range n.internal {
		rc, err := rcs.On(name, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("internal topic %s: %v %v", name, err, rc.Err)
		}
		policy := ""
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil {
				policy = *c.Value
			}
		}
		if policy != "compact" {
			t.Errorf("internal topic %s: cleanup.policy %q, want compact", name, policy)
		}
	}
	// The source connector's position (the whole file, counted in the
	// Java chars its reader decoded) is committed to the offsets topic,
	// and the sink connector's group has committed the topic's end: the
	// worker's and the sink's offset commits pass kguard.
	chars := int64(len(utf16.Encode([]rune(string(data)))))
	var position, sinkAt int64
	err = cxPoll(ctx, 300*time.Millisecond, "offsets committed", func() (bool, error) {
		var offs struct {
			Offsets []struct {
				Offset map[string]any `json:"offset"`
			} `json:"offsets"`
		}
		if _, err := rest.do(ctx, "GET", "/connectors/"+n.source+"/offsets", nil, &offs); err != nil {
			return false, err
		}
		for _, o := range offs.Offsets {
			if p, ok := o.Offset["position"].(float64); ok {
				position = int64(p)
			}
		}
		fetched, err := adm.FetchOffsets(ctx, n.sinkGroup)
		if err != nil {
			return false, err
		}
		if o, ok := fetched.Lookup(n.topic, 0); ok {
			sinkAt = o.At
		}
		return position == chars && sinkAt == lines, nil
	})
	if err != nil {
		t.Fatalf("%v: source position %d of %d chars, sink group at %d of %d records\nworker log:\n%s", err, position, chars, sinkAt, lines, fileTail(w.logFile, 60))
	}
	// Everything the worker did was allowed: no error in its log.
	if l := cxGrep(w.logFile, "] ERROR "); len(l) > 0 {
		t.Errorf("the worker logged %d errors, the first: %s", len(l), l[0])
	}
	for _, what := range []string{"AuthorizationException", "PolicyViolationException"} {
		if l := cxGrep(w.logFile, what); len(l) > 0 {
			t.Errorf("the worker logged %d lines with %s, the first: %s", len(l), what, l[0])
		}
	}
	t.Logf("FRAMEWORK connect distributed: file %d lines (%d bytes) round-tripped byte for byte (FileStreamSource -> %s -> FileStreamSink); source position and sink group offsets committed; internal topics %s created by the worker through kguard; worker up in %s, total %s",
		lines, len(data), n.topic, strings.Join(n.internal, ", "), up.Round(time.Second), time.Since(start).Round(time.Second))
	w.stop()

	// Negative: a worker whose principal has no grant of the recipe.
	t0 := time.Now()
	bw, _ := startConnectWorker(t, dir, "intruder-worker", s, intruder, bad)
	var refusal string
	err = cxPoll(ctx, 300*time.Millisecond, "intruder worker refused", func() (bool, error) {
		if refusal = cxRefusal(bw.logFile); refusal != "" {
			return true, nil
		}
		if bw.exited() {
			return false, fmt.Errorf("worker exited without an authorization error")
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("%v\nworker log:\n%s", err, fileTail(bw.logFile, 60))
	}
	if !strings.Contains(refusal, bad.group) && !strings.Contains(refusal, bad.configs) && !strings.Contains(refusal, bad.offsets) && !strings.Contains(refusal, bad.status) {
		t.Errorf("the refusal does not name the worker's group or an internal topic: %s", refusal)
	}
	if made, err := topicsWithPrefix(ctx, adm, "cx"+run+"x-connect"); err != nil || len(made) > 0 {
		t.Errorf("the refused worker's internal topics exist: %v %v", made, err)
	}
	t.Logf("FRAMEWORK connect negative: a worker as User:%s without the recipe's grants is refused in %s: %s", intruder, time.Since(t0).Round(time.Second), strings.TrimSpace(refusal))
}
