package proxy_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduceThroughKguard measures the produce path end to end in
// process (kgo producer -> kguard -> kfake): 100 records of 1 KiB JSON per
// synchronous produce, uncompressed. "passthrough" writes to an unprotected
// topic (kguard only scans for forged kguard.* headers); "encrypted" to a
// topic whose rule encrypts two fields ($.card AES-GCM, $.name AES-SIV)
// and signs every record (Ed25519, kguard.sig v1); "encrypted-batchsig"
// signs each batch once (kguard.sig v2, crypto.batch_signatures). MB/s is
// plaintext record bytes; the ratio of encrypted to passthrough MB/s is the
// figure docs/data-protection.md reports.
func BenchmarkProduceThroughKguard(b *testing.B) {
	const perOp = 100
	for _, bc := range []struct {
		name     string
		topic    string
		batchSig bool
	}{{"passthrough", "plain", false}, {"encrypted", "pay.bench", false}, {"encrypted-batchsig", "pay.bench", true}} {
		b.Run(bc.name, func(b *testing.B) {
			e := startProtEnv(b, protOpts{batchSig: bc.batchSig})
			cl := e.client(b, "alice", kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(1<<20))
			recs := make([]*kgo.Record, perOp)
			size := 0
			for i := range recs {
				recs[i] = &kgo.Record{Topic: bc.topic, Value: payment(i)}
				size += len(recs[i].Value)
			}
			produceAll(b, cl, recs...) // warm up: connections, keys
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for _, r := range recs {
					r.Offset, r.Partition, r.Context = 0, 0, ctx
				}
				if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
