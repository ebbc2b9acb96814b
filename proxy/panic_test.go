package proxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

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
