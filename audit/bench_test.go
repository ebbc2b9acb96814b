package audit

import (
	"context"
	"crypto/ed25519"
	"os"
	"testing"
	"time"
)

// BenchmarkRecord measures the hot-path cost of Record: chain hash, Merkle
// append, canonical encoding and one write(2) to the spool. "kafka-down"
// refuses every Produce, showing Record does not wait on Kafka.
//
//	go test -run XXX -bench BenchmarkRecord -benchmem ./audit
func BenchmarkRecord(b *testing.B) {
	for _, where := range []string{"disk", "tmpfs"} {
		for _, kafka := range []string{"up", "down"} {
			b.Run(where+"/kafka-"+kafka, func(b *testing.B) { benchRecord(b, where, kafka == "down", FsyncInterval, false) })
		}
		b.Run(where+"/kafka-up/parallel", func(b *testing.B) { benchRecord(b, where, false, FsyncInterval, true) })
	}
	b.Run("disk/kafka-up/fsync-always", func(b *testing.B) { benchRecord(b, "disk", false, FsyncAlways, false) })
	b.Run("disk/kafka-up/fsync-always/parallel", func(b *testing.B) { benchRecord(b, "disk", false, FsyncAlways, true) })
}

func benchRecord(b *testing.B, where string, down bool, fsync FsyncPolicy, parallel bool) {
	dir := b.TempDir()
	if where == "tmpfs" {
		d, err := os.MkdirTemp("/dev/shm", "kguard-audit-bench")
		if err != nil {
			b.Skipf("no tmpfs: %v", err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	tc := newTestCluster(b)
	keys := newTestKeys(b)
	sink := newTestSink(b, tc, "bench", 1)
	cfg := testConfig(b, "kg-bench", dir, keys, sink)
	cfg.Logger = nil
	cfg.Fsync, cfg.SpoolMaxBytes, cfg.CheckpointEvery = fsync, 16<<30, 1000
	r := mustNew(b, cfg)
	b.Cleanup(r.abandon)
	tc.down.Store(down)
	ev := sampleEvent(7)
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.SetParallelism(16) // 16 goroutines per CPU, like many client connections
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := r.Record(ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for i := 0; i < b.N; i++ {
			if err := r.Record(ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	st := r.Stats()
	b.ReportMetric(float64(st.LastSeq-st.ShippedSeq), "unshipped")
}

// BenchmarkShipThroughput measures how fast the shipper drains the spool
// into kfake (ns per event from Record to acknowledged by the brokers).
//
//	go test -run XXX -bench BenchmarkShipThroughput -benchtime=50000x ./audit
func BenchmarkShipThroughput(b *testing.B) {
	tc := newTestCluster(b)
	keys := newTestKeys(b)
	sink := newTestSink(b, tc, "ship", 1)
	cfg := testConfig(b, "kg-ship", b.TempDir(), keys, sink)
	cfg.Logger = nil
	cfg.SpoolMaxBytes, cfg.CheckpointEvery = 16<<30, 1000
	r := mustNew(b, cfg)
	b.Cleanup(r.abandon)
	ev := sampleEvent(7)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.Record(ev); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkVerify measures the verifier over a 20 000-event trail in kfake.
//
//	go test -run XXX -bench BenchmarkVerify -benchtime=3x ./audit
func BenchmarkVerify(b *testing.B) {
	const n = 20000
	tc := newTestCluster(b)
	keys := newTestKeys(b)
	sink := newTestSink(b, tc, "verify", 1)
	cfg := testConfig(b, "kg-vb", b.TempDir(), keys, sink)
	cfg.Logger, cfg.CheckpointEvery = nil, 1000
	r := mustNew(b, cfg)
	for i := 0; i < n; i++ {
		if err := r.Record(sampleEvent(i)); err != nil {
			b.Fatal(err)
		}
	}
	closeRecorder(b, r)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := Verify(context.Background(), VerifyConfig{ClientOpts: tc.opts(), Topic: "verify",
			PublicKeys: []ed25519.PublicKey{keys.pub}}, nil)
		if err != nil || !rep.OK() || rep.Records < n {
			b.Fatalf("verify: %v ok=%v records=%d", err, rep.OK(), rep.Records)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
