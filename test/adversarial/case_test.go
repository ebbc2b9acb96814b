package adversarial_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// attackCase is one attack: what was sent, what came back. When the test
// ends it checks that kguard still runs and still serves the canary
// principal, and logs one "ATTACK" line with the verdict.
type attackCase struct {
	t    *testing.T
	s    *stack
	name string
	mu   sync.Mutex
	sent []string
	got  []string
}

// attack starts a case against s.
func attack(t *testing.T, s *stack, name string) *attackCase {
	t.Helper()
	a := &attackCase{t: t, s: s, name: name}
	t.Cleanup(a.finish)
	return a
}

// Sent notes what the attacker sent.
func (a *attackCase) Sent(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = append(a.sent, fmt.Sprintf(format, args...))
}

// Got notes what came back.
func (a *attackCase) Got(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, fmt.Sprintf(format, args...))
}

func (a *attackCase) finish() {
	serving := "yes"
	if err := a.s.canaryRoundTrip(); err != nil {
		serving = "NO: " + err.Error()
		a.t.Errorf("after %q kguard no longer serves other clients: %v\nkguard log:\n%s", a.name, err, a.s.logTail(30))
	}
	verdict := "held"
	if a.t.Failed() {
		verdict = "FAILED"
		a.t.Logf("kguard's log (last lines):\n%s", a.s.logTail(15))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.t.Logf("ATTACK [%s] %s: %s | sent: %s | got: %s | other clients served: %s", a.s.name, a.name, verdict,
		strings.Join(a.sent, "; "), strings.Join(a.got, "; "), serving)
}

// login is a raw connection to addr (kguard's bootstrap when empty) logged
// in as user.
func (s *stack) login(t *testing.T, user, addr string) *rawConn {
	t.Helper()
	if addr == "" {
		addr = s.bootstrap
	}
	rc, err := dialRaw(addr)
	if err != nil {
		t.Fatalf("dialing kguard at %s: %v", addr, err)
	}
	t.Cleanup(rc.close)
	if err := rc.login(user, s.passwords[user]); err != nil {
		t.Fatalf("logging in as %s: %v", user, err)
	}
	return rc
}

// loginCoordinator is a raw connection logged in as user to kguard's
// listener for the coordinator of group (FindCoordinator v4).
func (s *stack) loginCoordinator(t *testing.T, user, group string) *rawConn {
	t.Helper()
	rc := s.login(t, user, "")
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.SetVersion(4)
	fc.CoordinatorKeys = []string{group}
	deadline := time.Now().Add(time.Minute) // a fresh cluster's coordinators may not be up yet
	for {
		resp, err := rc.send(fc)
		if err != nil {
			t.Fatal(err)
		}
		co := resp.(*kmsg.FindCoordinatorResponse).Coordinators
		if len(co) == 1 && co[0].ErrorCode == 0 {
			return s.login(t, user, fmt.Sprintf("%s:%d", co[0].Host, co[0].Port))
		}
		if len(co) != 1 || !kerr.IsRetriable(kerr.ErrorForCode(co[0].ErrorCode)) || time.Now().After(deadline) {
			t.Fatalf("coordinator of %s: %+v", group, co)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// client is a franz-go client through kguard logged in as user (SCRAM).
func (s *stack) client(t *testing.T, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.bootstrap),
		kgo.SASL(scram.Auth{User: user, Pass: s.passwords[user]}.AsSha512Mechanism())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// directClient talks to the cluster itself as a superuser.
func (s *stack) directClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, s.direct...), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// canaryRoundTrip produces one record as the canary principal through
// kguard and reads it back.
func (s *stack) canaryRoundTrip() error {
	if !s.alive() {
		return fmt.Errorf("kguard exited:\n%s", s.logTail(20))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	auth := kgo.SASL(plain.Auth{User: canary, Pass: s.passwords[canary]}.AsMechanism())
	p, err := kgo.NewClient(kgo.SeedBrokers(s.bootstrap), auth, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer p.Close()
	want := "canary-" + randHex(6)
	res := p.ProduceSync(ctx, &kgo.Record{Topic: "canary-t", Partition: 0, Value: []byte(want)})
	r, err := res.First()
	if err != nil {
		return fmt.Errorf("canary produce: %w", err)
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(s.bootstrap), auth,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"canary-t": {0: kgo.NewOffset().At(r.Offset)}}))
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("canary consume: %w", err)
		}
		for _, rec := range fs.Records() {
			if string(rec.Value) == want {
				return nil
			}
		}
	}
}

// auditEvents reads every event in the audit topic now.
func (s *stack) auditEvents(t testing.TB) []audit.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl := s.directClient(t, kgo.ConsumeTopics(s.auditTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	adm := s.directClient(t)
	ends, err := listEnds(ctx, adm, s.auditTopic)
	if err != nil {
		t.Fatalf("audit topic end offsets: %v", err)
	}
	var out []audit.Event
	seen := map[int32]int64{}
	done := func() bool {
		for p, end := range ends {
			if seen[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading the audit topic: %v (read %v of %v)", ctx.Err(), seen, ends)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen[r.Partition] = r.Offset + 1
			if ev, err := audit.DecodeEvent(r.Value); err == nil {
				out = append(out, ev)
			}
		})
	}
	return out
}

// waitAudit waits until an audit event matches and returns it.
func (s *stack) waitAudit(t testing.TB, what string, match func(audit.Event) bool) audit.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := s.auditEvents(t)
		for _, ev := range evs {
			if match(ev) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit event %s among %d events", what, len(evs))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// denial matches a denied authorization (or data-protection) decision of
// principal on api; resource, when set, must appear in the event's
// resource name, its resources detail, or its reasons.
func denial(principal, api, resource string) func(audit.Event) bool {
	return func(ev audit.Event) bool {
		if ev.Outcome == nil || ev.Outcome.Decision != audit.DecisionDeny || ev.Who == nil || ev.What == nil {
			return false
		}
		if ev.Who.Principal != "User:"+principal || ev.What.APIName != api {
			return false
		}
		if resource == "" {
			return true
		}
		hay := ev.What.ResourceName + " " + ev.Details["resources"] + " " + strings.Join(ev.Outcome.Reasons, " ")
		for _, ts := range append(ev.What.Fetch, ev.What.Produce...) {
			hay += " " + ts.Topic
		}
		return strings.Contains(hay, resource)
	}
}

func listEnds(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, offs.Error()
}

// realStack is kguard in front of the real Apache Kafka 4.x cluster
// (SASL_SSL, SCRAM-SHA-512 as kguard's identity), shared by the package.
func realStack(t *testing.T) *stack {
	t.Helper()
	k := testenv.NeedKafka(t)
	harness.SharedClusterLock(t, k.Script)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if realShared == nil && realErr == nil {
		realShared, realErr = startReal(k)
	}
	if realErr != nil {
		t.Fatalf("starting kguard in front of the real cluster: %v", realErr)
	}
	return realShared
}

func startReal(k testenv.Kafka) (*stack, error) { return startRealWith(k, stackOpts{}) }

// startRealWith is startReal with options (a stack of its own: see
// freshReal).
func startRealWith(k testenv.Kafka, o stackOpts) (*stack, error) {
	ca, err := os.ReadFile(k.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", k.CAFile)
	}
	run := randHex(4)
	s := &stack{name: "kafka", auditTopic: "__kguard_audit_adv_" + run, direct: []kgo.Opt{
		kgo.SeedBrokers(k.SASLSSL...),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: k.User, Pass: k.Password}.AsSha512Mechanism()),
	}}
	upstream := fmt.Sprintf("upstream:\n  bootstrap: [%s]\n  tls:\n    ca_file: %q\n  sasl:\n    mechanism: SCRAM-SHA-512\n    username: %q\n    password: %q\n",
		strings.Join(k.SASLSSL, ", "), k.CAFile, k.User, k.Password)
	if err := s.start(upstream, o); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// freshReal starts a stack of its own in front of the real cluster (for a
// test that needs more policy); it stops when the test ends.
func freshReal(t *testing.T, o stackOpts) *stack {
	t.Helper()
	k := testenv.NeedKafka(t)
	harness.SharedClusterLock(t, k.Script)
	s, err := startRealWith(k, o)
	if err != nil {
		t.Fatalf("starting kguard in front of the real cluster: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}
