package proxy

import (
	"bytes"
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzScanReserved: the forged-header check of unprotected topics reads
// client bytes; it must never panic, and must refuse a batch whose records
// carry a kguard.* header.
func FuzzScanReserved(f *testing.F) {
	plain := kmsg.RecordBatch{Magic: 2, NumRecords: 0}
	f.Add(plain.AppendTo(nil))
	f.Add([]byte("kguard.enc"))
	f.Add(bytes.Repeat([]byte{0xff}, 70))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = anyCompressed(b)
		_ = scanReserved(context.Background(), nil, b)
	})
}
