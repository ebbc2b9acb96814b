package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestNormalTrafficVerifies(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "__kguard_audit", 3)

	// The topic is created append-only with the required settings.
	cl, err := kgo.NewClient(tc.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	rcs, err := adm.DescribeTopicConfigs(context.Background(), "__kguard_audit")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("__kguard_audit", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value != nil {
			got[c.Key] = *c.Value
		}
	}
	if got["cleanup.policy"] != "delete" || got["min.insync.replicas"] != "2" || got["retention.ms"] != "31536000000" {
		t.Fatalf("topic configs = %v", got)
	}
	td, err := adm.ListTopics(context.Background(), "__kguard_audit")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range td["__kguard_audit"].Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("partition %d has %d replicas, want 3", p.Partition, len(p.Replicas))
		}
	}

	// Two instances write concurrently.
	reg := prometheus.NewRegistry()
	cfgA := testConfig(t, "kg-a", t.TempDir(), keys, sink)
	reg.MustRegister(cfgA.Metrics)
	a := mustNew(t, cfgA)
	b := mustNew(t, testConfig(t, "kg-b", t.TempDir(), keys, sink))
	done := make(chan struct{})
	go func() { defer close(done); recordN(t, b, 0, 120) }()
	recordN(t, a, 0, 230)
	<-done
	closeRecorder(t, a)
	closeRecorder(t, b)

	rep := verifyTopic(t, tc.opts(), "__kguard_audit", keys.pub)
	logReport(t, rep)
	if !rep.OK() {
		t.Fatalf("verify failed on untouched trail")
	}
	if len(rep.Instances) != 2 {
		t.Fatalf("instances = %d, want 2", len(rep.Instances))
	}
	for _, in := range rep.Instances {
		n := map[string]int{"kg-a": 230, "kg-b": 120}[in.Instance]
		// audit.start + events + audit.stop + one checkpoint per 50 events and a final one.
		wantCk := n/50 + 1
		want := n + 2 + wantCk
		if in.Events != want || in.FirstSeq != 1 || in.LastSeq != uint64(want) {
			t.Errorf("%s: events %d seq %d..%d, want %d", in.Instance, in.Events, in.FirstSeq, in.LastSeq, want)
		}
		if in.Checkpoints != wantCk || in.VerifiedCheckpoints != wantCk || in.VerifiedSize != uint64(want-1) {
			t.Errorf("%s: checkpoints %d verified %d size %d, want %d covering %d", in.Instance,
				in.Checkpoints, in.VerifiedCheckpoints, in.VerifiedSize, wantCk, want-1)
		}
		if len(in.Partitions) != 1 {
			t.Errorf("%s in partitions %v, want one", in.Instance, in.Partitions)
		}
	}
	if v := metricValue(cfgA.Metrics.recorded); v != 230+2+5 {
		t.Errorf("recorded metric = %v", v)
	}
	if v := metricValue(cfgA.Metrics.shipped); v != 237 {
		t.Errorf("shipped metric = %v", v)
	}
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 14 {
		n := len(mfs)
		t.Errorf("gathered %d metrics, err %v", n, err)
	}

	// A wrong key fails every checkpoint.
	other := newTestKeys(t)
	rep = verifyTopic(t, tc.opts(), "__kguard_audit", other.pub)
	if rep.OK() || !rep.Has(FindingBadSignature) {
		t.Fatalf("verify with a foreign key passed")
	}
}

func TestEncodingIsCanonical(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "canon", 1)
	r := mustNew(t, testConfig(t, "kg-c", t.TempDir(), keys, sink))
	ev := sampleEvent(3)
	ev.Details = map[string]string{"z": "1", "a": "quote\"<>&"}
	ev.Time = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	if err := r.Record(ev); err != nil {
		t.Fatal(err)
	}
	odd := sampleEvent(4)
	odd.Time = time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC) // not representable in RFC 3339
	if err := r.Record(odd); err != nil {
		t.Fatal(err)
	}
	closeRecorder(t, r)
	recs := readTopic(t, tc.opts(), "canon")
	if len(recs) != 5 {
		t.Fatalf("got %d records", len(recs))
	}
	var prev Hash
	for i, rec := range recs {
		e, err := DecodeEvent(rec.Value)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		again, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, rec.Value) {
			t.Fatalf("record %d is not canonical:\n%s\n%s", i, rec.Value, again)
		}
		if e.Seq != uint64(i+1) || e.Prev != prev || e.Where.Instance != "kg-c" || e.Where.Cluster != "test-cluster" {
			t.Fatalf("record %d: seq %d prev %s where %+v", i, e.Seq, e.Prev, e.Where)
		}
		if string(rec.Key) != "kg-c" {
			t.Fatalf("key %q", rec.Key)
		}
		prev = HashEvent(rec.Value)
	}
	e, _ := DecodeEvent(recs[1].Value)
	if !e.Time.Equal(ev.Time) || e.Time.Location() != time.UTC || e.Details["a"] != "quote\"<>&" {
		t.Fatalf("event round trip: %+v", e)
	}
	for _, rec := range recs {
		if _, err := DecodeEvent(rec.Value); err != nil {
			t.Fatalf("recorded event does not decode: %v", err)
		}
	}
	if strings.Contains(string(recs[1].Value), "payload") {
		t.Fatal("unexpected field")
	}
}

func TestBrokerOutageSpoolsThenDrains(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "outage", 1)
	cfg := testConfig(t, "kg-o", t.TempDir(), keys, sink)
	r := mustNew(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	tc.down.Store(true)
	start := time.Now()
	recordN(t, r, 0, 400)
	elapsed := time.Since(start)
	// Give the shipper time to try (and fail) against the refusing brokers.
	deadline := time.Now().Add(10 * time.Second)
	for tc.refused.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if tc.refused.Load() < 2 {
		t.Fatal("shipper never tried to produce during the outage")
	}
	st := r.Stats()
	if st.ShippedSeq != 1 || st.LastSeq != 1+400+8 || st.SpoolBytes == 0 {
		t.Fatalf("during outage: %+v", st)
	}
	t.Logf("400 Records during the outage took %v", elapsed)

	tc.down.Store(false)
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("spool did not drain after recovery: %v", err)
	}
	closeRecorder(t, r)

	rep := verifyTopic(t, tc.opts(), "outage", keys.pub)
	logReport(t, rep)
	if !rep.OK() || rep.Instances[0].Events != 1+400+9+1 || rep.Has(FindingReordered) {
		t.Fatalf("after outage: ok=%v instances=%+v", rep.OK(), rep.Instances)
	}
}

// TestRestartResumesChain abandons a recorder without Close (what SIGKILL
// leaves: no audit.stop, no final checkpoint, unshipped events, stale
// cursor), tears the spool tail, and opens a new recorder over the spool.
func TestRestartResumesChain(t *testing.T) {
	for _, torn := range []string{"none", "partial-header", "bad-crc", "partial-payload"} {
		t.Run(torn, func(t *testing.T) {
			tc := newTestCluster(t)
			keys := newTestKeys(t)
			sink := newTestSink(t, tc, "restart", 1)
			dir := t.TempDir()
			s1 := newDyingSink(t, tc, "restart")
			r1 := mustNew(t, testConfig(t, "kg-r", dir, keys, s1))
			recordN(t, r1, 0, 60)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := r1.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			tc.down.Store(true)
			recordN(t, r1, 60, 90) // spooled, not shipped
			last := r1.Stats().LastSeq
			kill(r1, s1)

			segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			tail := segs[len(segs)-1]
			fi, _ := os.Stat(tail)
			var garbage []byte
			rec := appendRecord(nil, last+1, []byte(`{"v":1,"type":"authz.decision"}`))
			switch torn {
			case "partial-header":
				garbage = rec[:7]
			case "bad-crc":
				garbage = append([]byte(nil), rec...)
				garbage[len(garbage)-1] ^= 0xff
			case "partial-payload":
				garbage = rec[:len(rec)-3]
			}
			f, err := os.OpenFile(tail, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(garbage)
			f.Close()

			tc.down.Store(false)
			r2 := mustNew(t, testConfig(t, "kg-r", dir, keys, sink))
			if st := r2.Stats(); st.LastSeq != last+1 {
				t.Fatalf("chain resumed at %d, want %d", st.LastSeq, last+1)
			}
			if fi2, _ := os.Stat(tail); fi2.Size() < fi.Size() {
				t.Fatalf("acknowledged spool data was truncated: %d < %d", fi2.Size(), fi.Size())
			}
			recordN(t, r2, 150, 20)
			closeRecorder(t, r2)

			rep := verifyTopic(t, tc.opts(), "restart", keys.pub)
			logReport(t, rep)
			if !rep.OK() {
				t.Fatal("verify failed after restart")
			}
			in := rep.Instances[0]
			// 2 starts + 170 events + 1 stop + checkpoints (60->1, 90 more->2 ... counted by the chain itself).
			if in.FirstSeq != 1 || uint64(in.Events) != in.LastSeq || in.LastSeq < last+1+20+1 {
				t.Fatalf("instance %+v (last before kill %d)", in, last)
			}
			if in.VerifiedCheckpoints != in.Checkpoints || in.VerifiedSize != in.LastSeq-1 {
				t.Fatalf("checkpoints not all verified: %+v", in)
			}
		})
	}
}

func TestSpoolFullFailClosed(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "full-closed", 1)
	cfg := testConfig(t, "kg-f", t.TempDir(), keys, sink)
	cfg.SpoolMaxBytes, cfg.SegmentBytes = 64<<10, 4096
	r := mustNew(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tc.down.Store(true)
	var accepted, refused int
	for i := 0; i < 1000; i++ {
		err := r.Record(sampleEvent(i))
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, ErrSpoolFull):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if accepted == 0 || refused == 0 {
		t.Fatalf("accepted %d refused %d", accepted, refused)
	}
	if st := r.Stats(); st.SpoolBytes > cfg.SpoolMaxBytes {
		t.Fatalf("spool %d exceeds bound %d", st.SpoolBytes, cfg.SpoolMaxBytes)
	}
	if v := metricValue(cfg.Metrics.spoolFull); v != float64(refused) {
		t.Fatalf("spool-full metric %v, refused %d", v, refused)
	}
	tc.down.Store(false)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Record(sampleEvent(1)); err != nil {
		t.Fatalf("Record after drain: %v", err)
	}
	closeRecorder(t, r)
	rep := verifyTopic(t, tc.opts(), "full-closed", keys.pub)
	logReport(t, rep)
	if !rep.OK() || rep.Has(FindingDeclaredGap) {
		t.Fatal("fail-closed trail must verify without gaps")
	}
}

func TestSpoolFullContinueWithAlarm(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "full-alarm", 1)
	cfg := testConfig(t, "kg-g", t.TempDir(), keys, sink)
	cfg.SpoolMaxBytes, cfg.SegmentBytes, cfg.OnFull = 64<<10, 4096, ContinueWithAlarm
	r := mustNew(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tc.down.Store(true)
	recordN(t, r, 0, 1000) // never fails
	dropped := r.Stats().Dropped
	if dropped == 0 || metricValue(cfg.Metrics.dropped) != float64(dropped) {
		t.Fatalf("dropped %d, metric %v", dropped, metricValue(cfg.Metrics.dropped))
	}
	tc.down.Store(false)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recordN(t, r, 1000, 5) // first one writes the gap marker
	if r.Stats().Dropped != 0 {
		t.Fatal("gap marker not written after drain")
	}
	closeRecorder(t, r)

	rep := verifyTopic(t, tc.opts(), "full-alarm", keys.pub)
	logReport(t, rep)
	gaps := findings(rep, FindingDeclaredGap)
	if !rep.OK() || len(gaps) != 1 || gaps[0].Severity != SeverityWarning {
		t.Fatalf("want OK with one declared gap, got ok=%v gaps=%v", rep.OK(), gaps)
	}
	recs := readTopic(t, tc.opts(), "full-alarm")
	var gapEv Event
	for _, rec := range recs {
		if e, _ := DecodeEvent(rec.Value); e.Type == EventGap {
			gapEv = e
		}
	}
	if gapEv.Gap == nil || gapEv.Gap.Dropped != dropped || gapEv.Seq != gaps[0].Seq {
		t.Fatalf("gap event %+v, dropped %d", gapEv, dropped)
	}
	// Events kept + events dropped = events offered.
	kept := 0
	for _, rec := range recs {
		if e, _ := DecodeEvent(rec.Value); e.Type == EventAuthzDecision {
			kept++
		}
	}
	if uint64(kept)+dropped != 1005 {
		t.Fatalf("kept %d + dropped %d != 1005", kept, dropped)
	}
}

func TestCheckpointByTime(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "ck-time", 1)
	cfg := testConfig(t, "kg-t", t.TempDir(), keys, sink)
	cfg.CheckpointEvery, cfg.CheckpointInterval = 1_000_000, 100*time.Millisecond
	r := mustNew(t, cfg)
	recordN(t, r, 0, 3)
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(cfg.Metrics.checkpoints) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if metricValue(cfg.Metrics.checkpoints) == 0 {
		t.Fatal("no timed checkpoint")
	}
	// Idle: no new checkpoint without new events.
	n := metricValue(cfg.Metrics.checkpoints)
	time.Sleep(400 * time.Millisecond)
	if metricValue(cfg.Metrics.checkpoints) != n {
		t.Fatal("checkpoints written while idle")
	}
	closeRecorder(t, r)
}

func TestNewRejectsBadConfigAndSharedSpool(t *testing.T) {
	keys := newTestKeys(t)
	tc := newTestCluster(t)
	sink := newTestSink(t, tc, "cfg", 1)
	if _, err := New(Config{SpoolDir: t.TempDir(), Signer: keys.signer, Sink: sink}); err == nil {
		t.Fatal("missing instance id accepted")
	}
	dir := t.TempDir()
	r := mustNew(t, testConfig(t, "kg-x", dir, keys, sink))
	if _, err := New(testConfig(t, "kg-x", dir, keys, sink)); err == nil {
		t.Fatal("second recorder on a locked spool accepted")
	}
	if err := r.Record(Event{Type: "bogus"}); err == nil {
		t.Fatal("unknown event type accepted")
	}
	closeRecorder(t, r)
	if err := r.Record(sampleEvent(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	// A clean restart continues the chain with no unshipped events.
	r2 := mustNew(t, testConfig(t, "kg-x", dir, keys, sink))
	closeRecorder(t, r2)
	rep := verifyTopic(t, tc.opts(), "cfg", keys.pub)
	if !rep.OK() || rep.Instances[0].LastSeq != 6 {
		logReport(t, rep)
		t.Fatal("restart chain did not verify")
	}
}

// TestRestartWithRotatedSegments kills a recorder whose shipped segments
// were already deleted, so recovery must start from the saved tree state.
func TestRestartWithRotatedSegments(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "rotated", 1)
	dir := t.TempDir()
	s1 := newDyingSink(t, tc, "rotated")
	cfg := testConfig(t, "kg-s", dir, keys, s1)
	cfg.SegmentBytes = 4096
	r1 := mustNew(t, cfg)
	recordN(t, r1, 0, 300)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tc.down.Store(true)
	recordN(t, r1, 300, 100)
	last := r1.Stats().LastSeq
	kill(r1, s1)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 2 || filepath.Base(segs[0]) == segName(1) {
		t.Fatalf("expected rotated and deleted segments, have %v", segs)
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
		t.Fatalf("no tree state: %v", err)
	}
	tc.down.Store(false)
	cfg2 := testConfig(t, "kg-s", dir, keys, sink)
	cfg2.SegmentBytes = 4096
	r2 := mustNew(t, cfg2)
	if st := r2.Stats(); st.LastSeq != last+1 {
		t.Fatalf("resumed at %d, want %d", st.LastSeq, last+1)
	}
	recordN(t, r2, 400, 10)
	closeRecorder(t, r2)
	rep := verifyTopic(t, tc.opts(), "rotated", keys.pub)
	logReport(t, rep)
	in := rep.Instances[0]
	if !rep.OK() || in.FirstSeq != 1 || uint64(in.Events) != in.LastSeq || in.VerifiedCheckpoints != in.Checkpoints || in.VerifiedSize != in.LastSeq-1 {
		t.Fatalf("verify after restart over rotated spool: ok=%v %+v", rep.OK(), in)
	}
}

// TestFsyncAlwaysGroupCommit records concurrently with fsync=always and
// checks every acknowledged event is in the spool and the trail verifies.
func TestFsyncAlwaysGroupCommit(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "fsync", 1)
	cfg := testConfig(t, "kg-fs", t.TempDir(), keys, sink)
	cfg.Fsync, cfg.SegmentBytes = FsyncAlways, 4096
	r := mustNew(t, cfg)
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			var err error
			for i := 0; i < 40 && err == nil; i++ {
				err = r.Record(sampleEvent(g*100 + i))
			}
			errs <- err
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	r.syncMu.Lock()
	synced := r.synced
	r.syncMu.Unlock()
	if st := r.Stats(); synced != st.LastSeq {
		t.Fatalf("synced through %d, last seq %d", synced, st.LastSeq)
	}
	closeRecorder(t, r)
	rep := verifyTopic(t, tc.opts(), "fsync", keys.pub)
	if !rep.OK() || rep.Instances[0].Events != 1+320+1+7 {
		logReport(t, rep)
		t.Fatalf("fsync=always trail: %+v", rep.Instances)
	}
}

// TestRestartWithFullSpool: a fail-closed recorder killed with a full spool
// must start again (and drain), not refuse to start.
func TestRestartWithFullSpool(t *testing.T) {
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "refull", 1)
	dir := t.TempDir()
	s1 := newDyingSink(t, tc, "refull")
	cfg := testConfig(t, "kg-rf", dir, keys, s1)
	cfg.SpoolMaxBytes, cfg.SegmentBytes = 32<<10, 4096
	r1 := mustNew(t, cfg)
	tc.down.Store(true)
	for i := 0; ; i++ {
		if err := r1.Record(sampleEvent(i)); errors.Is(err, ErrSpoolFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	kill(r1, s1)

	// Another instance id may not take over this spool.
	if _, err := New(testConfig(t, "kg-other", dir, keys, sink)); err == nil || !strings.Contains(err.Error(), "belongs to instance") {
		t.Fatalf("foreign instance accepted the spool: %v", err)
	}
	cfg2 := testConfig(t, "kg-rf", dir, keys, sink)
	cfg2.SpoolMaxBytes, cfg2.SegmentBytes = 32<<10, 4096
	r2 := mustNew(t, cfg2)
	tc.down.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recordN(t, r2, 0, 5)
	closeRecorder(t, r2)
	rep := verifyTopic(t, tc.opts(), "refull", keys.pub)
	if !rep.OK() {
		logReport(t, rep)
		t.Fatal("trail after restart with a full spool does not verify")
	}
}

func TestEnsureTopicRefusesCompactedTopic(t *testing.T) {
	tc := newTestCluster(t)
	cl, err := kgo.NewClient(tc.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "compacted"); err != nil {
		t.Fatal(err)
	}
	err = EnsureTopic(ctx, cl, TopicConfig{Name: "compacted"}, nil)
	if err == nil || !strings.Contains(err.Error(), "must not be compacted") {
		t.Fatalf("EnsureTopic on a compacted topic: %v", err)
	}
	// An existing append-only topic is accepted as is.
	if err := EnsureTopic(ctx, cl, TopicConfig{Name: "plain", ReplicationFactor: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopic(ctx, cl, TopicConfig{Name: "plain", ReplicationFactor: 1}, nil); err != nil {
		t.Fatalf("second EnsureTopic: %v", err)
	}
}
