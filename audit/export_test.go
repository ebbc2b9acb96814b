package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestExportWindowAndVerdict: the export holds exactly the events of its
// time window, byte for byte as stored, under a header saying the trail
// verified; after a forged insert the file is still written, its header
// says the chain did not verify, and RunExport returns ErrVerifyFailed.
func TestExportWindowAndVerdict(t *testing.T) {
	tc := newTestCluster(t)
	topic := "audit-export"
	sink := newTestSink(t, tc, topic, 1)
	keys := newTestKeys(t)
	cfg := testConfig(t, "kg-exp", t.TempDir(), keys, sink)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var tick atomic.Int64
	cfg.Now = func() time.Time { return t0.Add(time.Duration(tick.Add(1)) * time.Second) }
	r := mustNew(t, cfg)
	recordN(t, r, 0, 60)
	closeRecorder(t, r)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	since, until := t0.Add(20*time.Second), t0.Add(40*time.Second)
	out := filepath.Join(t.TempDir(), "export.jsonl")
	vo := VerifyOptions{Kafka: KafkaOptions{Brokers: tc.c.ListenAddrs()}, Topic: topic, PublicKeyFiles: []string{keys.pubFile}}
	h, err := RunExport(ctx, ExportOptions{Verify: vo, Since: since, Until: until, Out: out}, nil)
	if err != nil || !h.Verified || !h.ChainVerified || !h.CheckpointsVerified || h.Checkpoints == 0 {
		t.Fatalf("export: %+v, %v", h, err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	fh, err := ReadEvents(f, func(ev *Event) error {
		if !InWindow(ev.Time, since, until) {
			t.Errorf("event seq %d at %v outside the window", ev.Seq, ev.Time)
		}
		n++
		return nil
	})
	b, _ := os.ReadFile(out)
	stored := readTopic(t, tc.opts(), topic)
	var want int64
	for _, rec := range stored {
		ev, _ := DecodeEvent(rec.Value)
		if !InWindow(ev.Time, since, until) {
			continue
		}
		want++
		if !bytes.Contains(b, append(append([]byte("\n"), rec.Value...), '\n')) {
			t.Fatalf("seq %d not exported byte for byte", ev.Seq)
		}
	}
	if err != nil || !fh.Verified || fh.Events != n || n != want || n == 0 || n == int64(len(stored)) {
		t.Fatalf("read back: header %+v, %d events (%d in the window), %v", fh, n, want, err)
	}

	// A forged event: exported anyway, flagged.
	last, _ := DecodeEvent(stored[len(stored)-1].Value)
	forged := sampleEvent(1)
	forged.Version, forged.Seq, forged.Time = SchemaVersion, last.Seq-3, t0.Add(30*time.Second)
	forged.Where.Instance = "kg-exp"
	fv, _ := forged.Encode()
	produceRaw(t, tc.opts(), topic, &kgo.Record{Key: []byte("kg-exp"), Value: fv})
	h, err = RunExport(ctx, ExportOptions{Verify: vo, Out: out}, nil)
	if !errors.Is(err, ErrVerifyFailed) || h.Verified || h.ChainVerified || len(h.Findings) == 0 {
		t.Fatalf("export of a forged trail: %+v, %v", h, err)
	}
	f2, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if fh, err := ReadEvents(f2, func(*Event) error { return nil }); err != nil || fh.Verified || fh.Records != int64(len(stored)+1) {
		t.Fatalf("flagged export: %+v, %v", fh, err)
	}
}

// TestReadEventsConcurrently reads the same events as ReadEvents, header
// included, and reports a malformed line.
func TestReadEventsConcurrently(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString(`{"kguard_audit_export":1,"topic":"t","records":3000,"events":3000,"verified":true}` + "\n")
	for i := 1; i <= 3000; i++ {
		ev := sampleEvent(i)
		ev.Version, ev.Seq, ev.Where.Instance = SchemaVersion, uint64(i), "kg"
		b, _ := ev.Encode()
		buf.Write(append(b, '\n'))
	}
	seen := map[uint64]bool{}
	h, err := ReadEventsConcurrently(bytes.NewReader(buf.Bytes()), 3, func(ev *Event) error {
		if seen[ev.Seq] {
			t.Errorf("seq %d twice", ev.Seq)
		}
		seen[ev.Seq] = true
		return nil
	})
	if err != nil || !h.Verified || h.Topic != "t" || len(seen) != 3000 {
		t.Fatalf("header %+v, %d events, %v", h, len(seen), err)
	}
	bad := append(buf.Bytes()[:len(buf.Bytes()):len(buf.Bytes())], []byte("{not an event}\n")...)
	if _, err := ReadEventsConcurrently(bytes.NewReader(bad), 3, func(*Event) error { return nil }); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed line: %v", err)
	}
	stop := errors.New("stop")
	if _, err := ReadEventsConcurrently(bytes.NewReader(buf.Bytes()), 2, func(*Event) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn error: %v", err)
	}
}
