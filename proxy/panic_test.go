package proxy_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/test/harness"
)

// panickyAuthorizer allows everything, and panics for one client id: a
// fault injector standing in for a bug reached by one client's input.
type panickyAuthorizer struct{}

func (panickyAuthorizer) Authorize(_ context.Context, r *policy.Request) (*policy.Decision, error) {
	if r.ClientID == "boom" {
		panic("injected fault")
	}
	d := &policy.Decision{Revision: "test", DecisionID: "d"}
	for range r.Actions {
		d.Results = append(d.Results, policy.Result{Allowed: true})
	}
	return d, nil
}

// A panic while serving one connection closes that connection only; the
// process and every other client keep working.
func TestPanicClosesOnlyThatConnection(t *testing.T) {
	env := harness.Start(t, harness.Options{Authorizer: panickyAuthorizer{}, Kfake: []kfake.Opt{kfake.SeedTopics(1, "t")}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	boom, err := kgo.NewClient(kgo.SeedBrokers(env.Bootstrap()), kgo.ClientID("boom"), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer boom.Close()
	bctx, bcancel := context.WithTimeout(ctx, 2*time.Second)
	if err := boom.ProduceSync(bctx, &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("the faulting client's produce succeeded")
	}
	bcancel()
	good, err := kgo.NewClient(kgo.SeedBrokers(env.Bootstrap()), kgo.ClientID("fine"))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	for i := 0; i < 20; i++ {
		if err := good.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("ok")}).FirstErr(); err != nil {
			t.Fatalf("another client after the panic: %v", err)
		}
	}
}

// panickyKMS is a local key store that panics when asked for a data key
// under the KEK "boom": a fault reached inside data protection.
type panickyKMS struct{ crypto.KMS }

func (k panickyKMS) GenerateDataKey(ctx context.Context, kek string, size int) ([]byte, string, error) {
	if kek == "boom" {
		panic("injected fault in the key service")
	}
	return k.KMS.GenerateDataKey(ctx, kek, size)
}

// A panic while protecting the partitions of a large produce request on
// several goroutines at once is re-raised on that connection's reader and
// closes only that connection: the process survives, and the same client
// type keeps producing to another protected topic.
func TestPanicInParallelProtectionClosesOnlyThatConnection(t *testing.T) {
	ks := filepath.Join(t.TempDir(), "keystore.json")
	if err := crypto.CreateLocalKeyStore(ks); err != nil {
		t.Fatal(err)
	}
	local, err := crypto.OpenLocalKMS(ks, crypto.LocalKMSOptions{AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	e := startProtEnv(t, protOpts{kms: panickyKMS{local},
		extraRule: `"boom": {"topic": "pay.boom", "priority": 60, "fields": [{"path": "$.card"}], "kek": "boom", "decrypt": {"principals": ["User:alice"]}}`})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(e.direct(t)).CreateTopic(ctx, 4, 1, nil, "pay.boom"); err != nil {
		t.Fatal(err)
	}
	// four partitions, 120 KiB in one request: the parallel path
	large := func(topic string) []*kgo.Record {
		var recs []*kgo.Record
		for i := range 120 {
			r := pr(topic, i)
			r.Partition = int32(i % 4)
			recs = append(recs, r)
		}
		return recs
	}
	boom := e.client(t, "alice", kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(200*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordRetries(0), kgo.RequestRetries(0),
		kgo.DisableIdempotentWrite()) // so that its records can fail instead of waiting forever
	bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
	if err := boom.ProduceSync(bctx, large("pay.boom")...).FirstErr(); err == nil {
		t.Fatal("produce through the faulting key service succeeded")
	}
	bcancel()
	direct := func(o ...kgo.Opt) *kgo.Client { return e.direct(t, o...) }
	if n := len(consume(t, direct, "pay.boom", 0, kgo.FetchMaxWait(200*time.Millisecond))); n != 0 {
		t.Fatalf("%d records reached pay.boom", n)
	}
	if _, err := kadm.NewClient(e.direct(t)).CreateTopic(ctx, 4, 1, nil, "pay.after"); err != nil {
		t.Fatal(err)
	}
	good := e.client(t, "alice", kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(200*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceAll(t, good, large("pay.after")...)
	got := consume(t, func(o ...kgo.Opt) *kgo.Client { return e.client(t, "alice", o...) }, "pay.after", 120)
	if len(got) != 120 {
		t.Fatalf("%d records after the panic, want 120", len(got))
	}
}
