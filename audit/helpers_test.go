package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"
)

// testCluster is an in-process 3-broker kfake cluster with a switchable
// Produce outage.
type testCluster struct {
	c    *kfake.Cluster
	down atomic.Bool
	// produceCalls counts Produce requests seen while down.
	refused atomic.Int64
}

func newTestCluster(t testing.TB) *testCluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	tc := &testCluster{c: c}
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if tc.down.Load() {
			tc.refused.Add(1)
			return nil, fmt.Errorf("test outage: produce refused"), true
		}
		return nil, nil, false
	})
	t.Cleanup(c.Close)
	return tc
}

func (tc *testCluster) opts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(tc.c.ListenAddrs()...), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })}
}

type testKeys struct {
	signer  *Signer
	pub     ed25519.PublicKey
	pubFile string
}

func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.key")
	pub, err := GenerateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := LoadPublicKey(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(pub2) || !s.PublicKey().Equal(pub) {
		t.Fatal("key files do not round-trip")
	}
	return testKeys{signer: s, pub: pub, pubFile: path + ".pub"}
}

func newTestSink(t testing.TB, tc *testCluster, topic string, partitions int32) *KafkaSink {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := NewKafkaSink(ctx, tc.opts(), TopicConfig{Name: topic, Partitions: partitions}, true, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// newDyingSink is a sink for a recorder that will be abandoned: its client
// is closed together with the recorder, as a killed process's would be.
func newDyingSink(t testing.TB, tc *testCluster, topic string) *KafkaSink {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := NewKafkaSink(ctx, tc.opts(), TopicConfig{Name: topic, Partitions: 1}, false, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	return s
}

// kill abandons r (no audit.stop, no final checkpoint, no sync) and closes
// its sink's client.
func kill(r *Recorder, s *KafkaSink) {
	r.abandon()
	s.Close()
}

func testConfig(t testing.TB, instance, dir string, keys testKeys, sink Sink) Config {
	return Config{
		InstanceID: instance, ClusterID: "test-cluster", SpoolDir: dir,
		Signer: keys.signer, Sink: sink, CheckpointEvery: 50, CheckpointInterval: time.Hour,
		Logger: zaptest.NewLogger(t), Metrics: NewMetrics(), Fsync: FsyncNever,
	}
}

func sampleEvent(i int) Event {
	dec := DecisionAllow
	var code int16
	if i%7 == 0 {
		dec, code = DecisionDeny, 29
	}
	return Event{
		Type: EventAuthzDecision,
		Who:  &Who{Principal: fmt.Sprintf("User:user-%d", i%5), Mechanism: "SCRAM-SHA-512", ClientID: "app"},
		What: &What{APIKey: 0, APIName: "Produce", APIVersion: 11, Operation: "WRITE", ResourceType: "TOPIC",
			ResourceName: "orders", Produce: []TopicSummary{{Topic: "orders",
				Partitions: []PartitionSummary{{Partition: int32(i % 3), Records: 10, Bytes: 1200}}}}},
		Where:   Where{Client: "127.0.0.1:50000", Listener: "external"},
		Outcome: &Outcome{Decision: dec, ErrorCode: code, Reasons: []string{"rule acl"}, PolicyRev: "rev-1", DecisionID: fmt.Sprintf("d-%d", i)},
	}
}

func mustNew(t testing.TB, cfg Config) *Recorder {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func recordN(t testing.TB, r *Recorder, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := r.Record(sampleEvent(i)); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
}

func closeRecorder(t testing.TB, r *Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := r.Stats(); st.ShippedSeq != st.LastSeq {
		t.Fatalf("closed with %d of %d shipped", st.ShippedSeq, st.LastSeq)
	}
}

func verifyTopic(t testing.TB, opts []kgo.Opt, topic string, keys ...ed25519.PublicKey) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Verify(ctx, VerifyConfig{ClientOpts: opts, Topic: topic, PublicKeys: keys, ProgressEvery: 100}, testWriter{t})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func logReport(t testing.TB, rep Report) {
	t.Helper()
	_ = rep.WriteText(testWriter{t})
}

// findings returns the findings of kind k.
func findings(rep Report, k FindingKind) []Finding {
	var out []Finding
	for _, f := range rep.Findings {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

// readTopic returns all records of topic (one partition assumed per key) in
// offset order.
func readTopic(t testing.TB, opts []kgo.Opt, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	cl, err = kgo.NewClient(append(append([]kgo.Opt(nil), opts...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// produceRaw writes records to topic as a superuser client going straight
// to the brokers would, and returns their offsets.
func produceRaw(t testing.TB, opts []kgo.Opt, topic string, recs ...*kgo.Record) []int64 {
	t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var offs []int64
	for _, r := range recs {
		r.Topic = topic
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		offs = append(offs, r.Offset)
	}
	return offs
}

func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
