package crypto

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testLocalKMS is a local key store holding the KEK "k" (autoCreate: and
// any other asked for).
func testLocalKMS(t *testing.T, autoCreate bool) *LocalKMS {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := CreateLocalKeyStore(path, "k"); err != nil {
		t.Fatal(err)
	}
	local, err := OpenLocalKMS(path, LocalKMSOptions{AutoCreate: autoCreate})
	if err != nil {
		t.Fatal(err)
	}
	return local
}

// blockingKMS is a real local key store whose GenerateDataKey waits until
// released (or its context ends), as a slow key service.
type blockingKMS struct {
	*LocalKMS
	entered chan struct{} // one value per call that started waiting
	release chan struct{}
	calls   atomic.Int32
}

func (b *blockingKMS) GenerateDataKey(ctx context.Context, kek string, size int) ([]byte, string, error) {
	b.calls.Add(1)
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return b.LocalKMS.GenerateDataKey(ctx, kek, size)
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

// TestSharedKMSCallOutlivesACaller: callers that need the same new data key
// share one KMS call. The first caller giving up (its client went away)
// must answer a retriable error at once and must not fail the others: the
// shared call goes on, and the second caller gets the key when the KMS
// answers. A caller's own deadline bounds only its own wait.
func TestSharedKMSCallOutlivesACaller(t *testing.T) {
	local := testLocalKMS(t, false)
	kms := &blockingKMS{LocalKMS: local, entered: make(chan struct{}, 4), release: make(chan struct{})}
	m := newKeyManager(kms, KeyOptions{})

	type got struct {
		k   *dataKey
		err error
		at  time.Time
	}
	first, second := make(chan got, 1), make(chan got, 1)
	ctx1, cancel1 := context.WithCancel(context.Background())
	go func() {
		k, err := m.activeKey(ctx1, SourceWrapped, AES256GCM, "k", 1)
		first <- got{k, err, time.Now()}
	}()
	<-kms.entered // the shared call is waiting for the KMS
	go func() {
		k, err := m.activeKey(context.Background(), SourceWrapped, AES256GCM, "k", 1)
		second <- got{k, err, time.Now()}
	}()
	time.Sleep(50 * time.Millisecond) // the second caller joins the flight

	cancel1()
	g1 := <-first
	if g1.err == nil || !IsRetriable(g1.err) || !errors.Is(g1.err, context.Canceled) {
		t.Fatalf("first caller after giving up: %v, want a retriable error naming its cancellation", g1.err)
	}
	select {
	case g := <-second:
		t.Fatalf("second caller answered (%v) when the first gave up: the shared call was cancelled with it", g.err)
	case <-time.After(100 * time.Millisecond):
	}

	// A caller with a short deadline of its own waits no longer than it.
	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	start := time.Now()
	if _, err := m.activeKey(dctx, SourceWrapped, AES256GCM, "k", 1); !IsRetriable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller with a 50ms deadline: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("caller with a 50ms deadline waited %v", d)
	}

	close(kms.release)
	g2 := <-second
	if g2.err != nil || g2.k == nil {
		t.Fatalf("second caller: %v", g2.err)
	}
	if n := kms.calls.Load(); n != 1 {
		t.Fatalf("%d KMS calls for one key, want 1 shared", n)
	}
	k, err := m.activeKey(context.Background(), SourceWrapped, AES256GCM, "k", 1)
	if err != nil || k != g2.k {
		t.Fatalf("after the flight: %v, same key %v", err, k == g2.k)
	}
}

// panicKMS panics when asked for a data key or a derived key: a fault
// inside a KMS client.
type panicKMS struct{ *LocalKMS }

func (panicKMS) GenerateDataKey(context.Context, string, int) ([]byte, string, error) {
	panic("injected KMS fault")
}

func (panicKMS) DeriveKey(context.Context, string, string, []byte, int) ([]byte, string, error) {
	panic("injected KMS fault")
}

// TestSharedKMSCallPanicReachesTheCaller: a panic in a shared KMS call runs
// on the flight's own goroutine, where nothing could contain it; it must be
// raised again on the caller's goroutine (the proxy closes only that
// caller's connection), with the fault and its stack, and the next caller
// must meet it the same way.
func TestSharedKMSCallPanicReachesTheCaller(t *testing.T) {
	local := testLocalKMS(t, false)
	m := newKeyManager(panicKMS{local}, KeyOptions{})
	for round, c := range []struct {
		name, frame string
		call        func()
	}{
		{"new data key", "GenerateDataKey", func() { _, _ = m.activeKey(context.Background(), SourceWrapped, AES256GCM, "k", 1) }},
		{"new data key again", "GenerateDataKey", func() { _, _ = m.activeKey(context.Background(), SourceWrapped, AES256GCM, "k", 1) }},
		// keys to decrypt: the derivations run on goroutines of their own
		{"derived keys", "DeriveKey", func() {
			_, _ = m.resolve(context.Background(), []keyRef{{source: SourceDerived, alg: AES256SIV, kek: "k", ref: "1"}, {source: SourceDerived, alg: AES256SIV, kek: "k", ref: "2"}})
		}},
	} {
		got := make(chan any, 1)
		go func() {
			defer func() { got <- recover() }()
			c.call()
		}()
		p := <-got
		fp, ok := p.(*flightPanic)
		if !ok || fp.value != "injected KMS fault" || !strings.Contains(fp.Error(), c.frame) {
			t.Fatalf("round %d (%s): the caller recovered %#v, want the KMS fault with its stack", round, c.name, p)
		}
	}
}

// TestProtectKMSPanicReachesTheCaller: a batch of several data subjects
// fetches their keys on goroutines of its own (errgroup, which does not
// carry panics); a KMS fault there must still reach the caller of
// ProtectBatchWith as a panic on its goroutine, not crash the process.
func TestProtectKMSPanicReachesTheCaller(t *testing.T) {
	local := testLocalKMS(t, true)
	p, err := New(Options{KMS: panicKMS{local}, SubjectPepper: []byte("pepper")})
	if err != nil {
		t.Fatal(err)
	}
	prot := mustCompile(t, Rule{SubjectPath: "$.account_id", Fields: []Field{{Target: "$.name", PerSubject: true}}})
	var recs []*Record
	for i := range 4 { // four subjects: four keys, fetched in parallel
		recs = append(recs, kiloRecord(i))
	}
	got := make(chan any, 1)
	go func() {
		defer func() { got <- recover() }()
		_ = p.ProtectBatchWith(context.Background(), recs, prot, &Scratch{}, ProduceOptions{Batched: true})
	}()
	if v := <-got; v == nil || !strings.Contains(fmt.Sprint(v), "injected KMS fault") {
		t.Fatalf("ProtectBatchWith's caller recovered %#v, want the KMS fault", v)
	}
}
