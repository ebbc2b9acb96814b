package crypto

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// switchableKMS is a real local key store whose answers can be turned
// into outages (ErrUnavailable), as a key service that went away.
type switchableKMS struct {
	*LocalKMS
	down bool
}

func (s *switchableKMS) GenerateDataKey(ctx context.Context, kek string, size int) ([]byte, string, error) {
	if s.down {
		return nil, "", fmt.Errorf("transit datakey: %w", ErrUnavailable)
	}
	return s.LocalKMS.GenerateDataKey(ctx, kek, size)
}

func (s *switchableKMS) Ping(context.Context) error {
	if s.down {
		return ErrUnavailable
	}
	return nil
}

// TestObservedKMS checks what readiness and the metrics see: a failing
// call makes the KMS not ready and down, a missing key is an answer, a
// probe brings it back.
func TestObservedKMS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := CreateLocalKeyStore(path, "kek-a"); err != nil {
		t.Fatal(err)
	}
	local, err := OpenLocalKMS(path, LocalKMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sw := &switchableKMS{LocalKMS: local}
	k := NewObservedKMS(sw, ObserveOptions{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(k)
	ctx := context.Background()

	if _, _, err := k.GenerateDataKey(ctx, "kek-a", 32); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.GenerateDataKey(ctx, "no-such-kek", 32); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("missing KEK: %v", err)
	}
	if err := k.Ready(); err != nil {
		t.Fatalf("a missing key made the KMS not ready: %v", err)
	}
	sw.down = true
	if _, _, err := k.GenerateDataKey(ctx, "kek-a", 32); err == nil {
		t.Fatal("outage not passed through")
	}
	if err := k.Ready(); err == nil || !strings.Contains(err.Error(), "key service failing") {
		t.Fatalf("Ready during the outage: %v", err)
	}
	if v := testutil.ToFloat64(k.up); v != 0 {
		t.Fatalf("kguard_kms_up = %v during the outage", v)
	}
	sw.down = false
	k.Probe(ctx)
	if err := k.Ready(); err != nil {
		t.Fatalf("Ready after a good probe: %v", err)
	}
	for _, c := range []struct {
		op, outcome string
		want        float64
	}{{"generate_data_key", "success", 1}, {"generate_data_key", "key_not_found", 1}, {"generate_data_key", "error", 1}, {"ping", "success", 1}} {
		if v := testutil.ToFloat64(k.calls.WithLabelValues(c.op, c.outcome)); v != c.want {
			t.Errorf("kguard_kms_requests_total{%s,%s} = %v, want %v", c.op, c.outcome, v, c.want)
		}
	}
	// The observed KMS still manages keys when the wrapped one does.
	if err := k.CreateKey(ctx, "kek-b"); err != nil {
		t.Fatalf("CreateKey through the wrapper: %v", err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Fatalf("gather: %d %v", n, err)
	}
}
