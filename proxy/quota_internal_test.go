package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
)

// TestRateSensorThrottle: within the rate nothing is throttled; over it,
// the throttle is Kafka's (rate - limit) / limit * window, and a client
// that waits it out is back within its quota.
func TestRateSensorThrottle(t *testing.T) {
	s := newRateSensor(time.Second, 5)
	t0 := time.Unix(1000, 0)
	// The first samples' allowance: 4 s worth at 1000 B/s.
	if d := s.record(t0, 4000, 1000); d != 0 {
		t.Fatalf("4000 B at once, limit 1000 B/s over a 4 s minimum window: throttled %s", d)
	}
	d := s.record(t0.Add(100*time.Millisecond), 4000, 1000)
	// 8000 B over the 4 s minimum: rate 2000 B/s, throttle (2000-1000)/1000 * 4 s.
	if d != 4*time.Second {
		t.Fatalf("throttle %s, want 4s", d)
	}
	if d := s.record(t0.Add(8*time.Second), 1, 1000); d != 0 {
		t.Fatalf("after waiting: throttled %s", d)
	}
}

// TestQuotasFirstRuleDecides: rules match by principal, tenant and client
// id; the first match decides; its entity is what it names.
func TestQuotasFirstRuleDecides(t *testing.T) {
	q := newQuotas(config.Quotas{Sample: time.Second, Samples: 2, Rules: []config.QuotaRule{
		{ClientID: "free", ProduceBytesPerSecond: 0},
		{Tenant: "acme", ProduceBytesPerSecond: 100},
		{FetchBytesPerSecond: 100},
	}}, nil, nil)
	now := time.Unix(1000, 0)
	if d := rec(q, produceQuota, "User:a", "acme", "free", 1000, now); d != 0 {
		t.Errorf("client id free (unlimited rule first): throttled %s", d)
	}
	if d := rec(q, produceQuota, "User:a", "acme", "x", 1000, now); d == 0 {
		t.Error("tenant acme over 100 B/s: not throttled")
	}
	// The tenant's sensor is shared by its principals.
	if d := rec(q, produceQuota, "User:b", "acme", "y", 1, now); d == 0 {
		t.Error("another acme principal: not throttled by the tenant's shared rate")
	}
	if d := rec(q, produceQuota, "User:c", "globex", "x", 1000, now); d != 0 {
		t.Errorf("globex has no produce quota: throttled %s", d)
	}
	if d := rec(q, fetchQuota, "User:c", "globex", "x", 1000, now); d == 0 {
		t.Error("default fetch quota: not throttled")
	}
	if d := rec(q, fetchQuota, "User:d", "globex", "x", 1, now); d != 0 {
		t.Errorf("the default rule limits each principal on its own: User:d throttled %s", d)
	}
}

// TestThrottleSetsResponseAndMutes: over the quota the response carries
// the throttle time and the connection is muted for it.
func TestThrottleSetsResponseAndMutes(t *testing.T) {
	p := &Proxy{quotas: newQuotas(config.Quotas{Sample: time.Second, Samples: 2,
		Rules: []config.QuotaRule{{ProduceBytesPerSecond: 10}}}, nil, nil)}
	s := &session{p: p}
	pd := &pending{}
	s.throttle(&pd.hdr, pd, produceQuota, 1000)
	if len(pd.transforms) != 1 || len(s.quotaSensors) != 1 || s.quotaSensors[0].until.Load() <= time.Now().UnixNano() {
		t.Fatalf("not throttled: %d transforms, %d sensors", len(pd.transforms), len(s.quotaSensors))
	}
	resp := kmsg.NewPtrProduceResponse()
	if changed, err := pd.transforms[0](resp); err != nil || !changed || resp.ThrottleMillis <= 0 {
		t.Fatalf("response throttle %d ms (changed %v, %v)", resp.ThrottleMillis, changed, err)
	}
}

func rec(q *quotas, kind quotaKind, principal, tenant, clientID string, n int64, now time.Time) time.Duration {
	d, _ := q.record(kind, principal, tenant, clientID, n, now)
	return d
}

// policyQuotas hands the quotas test a policy rule set.
type policyQuotas struct{ q *config.Quotas }

func (p *policyQuotas) Quotas() *config.Quotas { return p.q }

// TestQuotaRulesPrecedence: the policy's rules replace the configuration's
// when the policy has a quotas document (even an empty one) and only then;
// has reports the kinds the rules in force limit, so that a Fetch is read
// whole only under a fetch quota; a sensor survives a change of limit.
func TestQuotaRulesPrecedence(t *testing.T) {
	src := &policyQuotas{}
	q := newQuotas(config.Quotas{Sample: time.Second, Samples: 2,
		Rules: []config.QuotaRule{{Tenant: "acme", ProduceBytesPerSecond: 100}}}, src, nil)
	now := time.Unix(1000, 0)
	if !q.has(produceQuota) || q.has(fetchQuota) || q.has(requestQuota) {
		t.Fatal("configuration rules: want a produce quota only")
	}
	if d := rec(q, produceQuota, "User:a", "acme", "c", 150, now); d == 0 {
		t.Fatal("configuration rule not enforced")
	}
	src.q = &config.Quotas{Rules: []config.QuotaRule{{Tenant: "acme", ProduceBytesPerSecond: 1000, FetchBytesPerSecond: 10}}}
	if !q.has(fetchQuota) {
		t.Fatal("policy rules not in force")
	}
	// Same sensor (same match), higher limit: 150 B so far is within it.
	if d := rec(q, produceQuota, "User:a", "acme", "c", 1, now); d != 0 {
		t.Fatalf("policy's 1000 B/s: throttled %s", d)
	}
	if d := rec(q, produceQuota, "User:a", "acme", "c", 1000, now); d == 0 {
		t.Fatal("policy's limit not enforced on the kept sensor")
	}
	src.q = &config.Quotas{Rules: []config.QuotaRule{}}
	if q.has(produceQuota) || q.has(fetchQuota) {
		t.Fatal("an empty policy document leaves the configuration's rules in force")
	}
	src.q = nil
	if !q.has(produceQuota) {
		t.Fatal("without a policy document the configuration's rules are not back")
	}
	if newQuotas(config.Quotas{}, nil, nil) != nil {
		t.Fatal("no rules and no policy: quotas built")
	}
}

// TestRequestQuotaUnits: request_percentage 50 is half a second of
// handling time per second.
func TestRequestQuotaUnits(t *testing.T) {
	q := newQuotas(config.Quotas{Sample: time.Second, Samples: 2,
		Rules: []config.QuotaRule{{RequestPercentage: 50}}}, nil, nil)
	now := time.Unix(1000, 0)
	if d := rec(q, requestQuota, "User:a", "", "c", int64(400*time.Millisecond), now); d != 0 {
		t.Fatalf("0.4 s in a 1 s minimum window at 50 %%: throttled %s", d)
	}
	// 1 s in 1 s: rate 100 %, throttle (100-50)/50 * 1 s.
	if d := rec(q, requestQuota, "User:a", "", "c", int64(600*time.Millisecond), now); d != time.Second {
		t.Fatalf("throttle %s, want 1s", d)
	}
}

// BenchmarkQuotaPerRequest is the quota work one Produce costs the reader
// (mute check, byte and request-time charges, the Fetch check): with a
// policy that has no rules, and under a produce rule that never throttles.
// Measure instructions (perf stat), not time, on a shared machine.
func BenchmarkQuotaPerRequest(b *testing.B) {
	for _, c := range []struct {
		name  string
		rules []config.QuotaRule
	}{{"no rules", nil}, {"produce rule", []config.QuotaRule{{Tenant: "acme", ProduceBytesPerSecond: 1 << 40}}}} {
		b.Run(c.name, func(b *testing.B) {
			src := &policyQuotas{q: &config.Quotas{Rules: c.rules}}
			p := &Proxy{quotas: newQuotas(config.Quotas{Sample: time.Second, Samples: 11}, src, nil)}
			s := &session{p: p, principal: &auth.Principal{Name: "a"}, quotaTenant: "acme"}
			hdr := &wire.RequestHeader{APIKey: 0, ClientID: "c"}
			ctx := context.Background()
			for b.Loop() {
				start := s.requestStart()
				s.waitMuted(ctx)
				pd := &pending{}
				s.throttle(hdr, pd, produceQuota, 1000)
				s.requestTime(hdr, pd, start)
				_ = p.quotas.has(fetchQuota)
			}
		})
	}
}
