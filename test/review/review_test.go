// Package review_test shows `kguard policy diff` on real traffic: three
// principals use the real Apache Kafka 4.x cluster through kguard (in
// process, upstream SASL_SSL as its own identity, the audit trail on in a
// topic of that cluster), then the decisions recorded in the audit topic
// are replayed under the example head policy of examples/policy-review,
// which revokes one grant, adds another and stops encrypting one field.
package review_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/policy/review"
	"github.com/kguard/kguard/test/harness"
)

var (
	update        = flag.Bool("update", false, "rewrite testdata/report.golden.md")
	updateExample = flag.Bool("update-example", false, "rewrite examples/policy-review/events.jsonl (then regenerate its expected report: go test ./policy/review -run TestExampleReport -update)")
)

// Traffic the test sends through kguard (each request counted by a hook).
const (
	aliceProduces = 40 // Produce to review-orders-*: revoked by the head
	bobProduces   = 30 // Produce to review-payments-*: $.ssn no longer encrypted in the head
	carolDescribe = 7  // DescribeConfigs of review-orders-*: granted by the head
)

// counter counts the requests of one API key a client wrote.
type counter struct {
	key int16
	n   atomic.Int64
}

func (c *counter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == c.key && err == nil {
		c.n.Add(1)
	}
}

func TestPolicyDiffRealTraffic(t *testing.T) {
	k := testenv.NeedKafka(t)
	harness.SharedClusterLock(t, k.Script)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root := harness.RepoRoot(t)
	base := []string{filepath.Join(root, "policies"), filepath.Join(root, "examples", "policy-review", "base")}
	head := []string{filepath.Join(root, "policies"), filepath.Join(root, "examples", "policy-review", "head")}
	sfx := harness.RandHex(t, 4)
	orders, payments := "review-orders-"+sfx, "review-payments-"+sfx
	auditTopic := "__kguard_audit_review_" + sfx
	dir := t.TempDir()

	plain, err := audit.KafkaOptions{Brokers: k.Plaintext}.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	admCl, err := kgo.NewClient(plain...)
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	for _, tp := range []string{orders, payments} {
		if res, err := adm.CreateTopic(ctx, 3, 3, nil, tp); err != nil || res.Err != nil {
			t.Fatalf("creating %s: %v %v", tp, err, res.Err)
		}
	}
	t.Cleanup(func() {
		_, _ = adm.DeleteTopics(context.Background(), orders, payments, auditTopic)
	})

	// kguard with the base policy, data protection (local key store) and
	// the audit trail in a topic of the real cluster.
	eng, err := policy.NewEngine(ctx, policy.Config{Dirs: base})
	if err != nil {
		t.Fatal(err)
	}
	kpath := filepath.Join(dir, "keks.json")
	if err := crypto.CreateLocalKeyStore(kpath); err != nil {
		t.Fatal(err)
	}
	kms, err := crypto.OpenLocalKMS(kpath, crypto.LocalKMSOptions{AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	prot := harness.NewProtector(t, crypto.Options{KMS: kms})
	keyFile := filepath.Join(dir, "audit.pem")
	if _, err := audit.GenerateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	priv, err := audit.LoadPrivateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	sink, err := audit.NewKafkaSink(ctx, plain, audit.TopicConfig{Name: auditTopic, Partitions: 1, ReplicationFactor: 3, Retention: time.Hour}, true, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	rec, err := audit.New(audit.Config{InstanceID: "kg-review-" + sfx, ClusterID: "review", SpoolDir: filepath.Join(dir, "spool"),
		Signer: signer, Sink: sink, Logger: log, Fsync: audit.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users.yaml")
	pass := map[string]string{}
	for _, u := range []string{"review-alice", "review-bob", "review-carol"} {
		pass[u] = harness.RandHex(t, 16)
		if err := auth.AddUser(users, u, pass[u], 4096); err != nil {
			t.Fatal(err)
		}
	}
	env, err := harness.StartProxy(k.SASLSSL, harness.Options{Logger: log, Authorizer: eng, Protector: prot, Auditor: rec, NoAnonymous: true,
		Mutate: func(c *config.Config) {
			c.Upstream.TLS = &config.ClientTLS{CAFile: k.CAFile}
			c.Upstream.SASL = &config.ClientSASL{Mechanism: "SCRAM-SHA-512", Username: k.User, Password: k.Password}
			c.Listen.Auth.SASLMechanisms = []string{"SCRAM-SHA-512"}
			c.Listen.Auth.CredentialsFile = users
		}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = env.Proxy.Shutdown(sctx)
		if err := rec.Close(sctx); err != nil {
			t.Errorf("closing the audit recorder: %v", err)
		}
	}
	defer stop()

	client := func(user string, c *counter, extra ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(env.Bootstrap()),
			kgo.SASL(scram.Auth{User: user, Pass: pass[user]}.AsSha512Mechanism()),
			kgo.ClientID("review-" + user), kgo.DisableIdempotentWrite(), kgo.WithHooks(c),
			kgo.RequestRetries(0)}, extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	alice, bob, carol := &counter{key: 0}, &counter{key: 0}, &counter{key: 32}
	produce := func(user, topic string, c *counter, n int, value func(i int) string) {
		cl := client(user, c)
		for i := 0; i < n; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value(i))}).FirstErr(); err != nil {
				t.Fatalf("%s producing to %s: %v", user, topic, err)
			}
		}
	}
	produce("review-alice", orders, alice, aliceProduces, func(i int) string { return fmt.Sprintf(`{"order":%d}`, i) })
	produce("review-bob", payments, bob, bobProduces, func(i int) string {
		return fmt.Sprintf(`{"card":{"number":"4111111111111%03d"},"ssn":"078-05-%04d","amount":%d}`, i, i, i)
	})
	// Carol reads the orders (allowed by both policies) and asks for their
	// configs (denied by the base, allowed by the head).
	ccl := client("review-carol", carol, kgo.ConsumeTopics(orders), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < aliceProduces {
		fs := ccl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("carol read %d of %d records: %v", got, aliceProduces, err)
		}
		got += fs.NumRecords()
	}
	cadm := kadm.NewClient(ccl)
	for i := 0; i < carolDescribe; i++ {
		rc, err := cadm.DescribeTopicConfigs(ctx, orders)
		if err == nil {
			r, _ := rc.On(orders, nil)
			err = r.Err
		}
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("carol DescribeConfigs of %s under the base policy: %v, want TOPIC_AUTHORIZATION_FAILED", orders, err)
		}
	}
	stop()
	t.Logf("REVIEW traffic sent through kguard: alice %d Produce, bob %d Produce, carol %d DescribeConfigs (and reads)",
		alice.n.Load(), bob.n.Load(), carol.n.Load())
	if alice.n.Load() < aliceProduces || bob.n.Load() < bobProduces || carol.n.Load() < carolDescribe {
		t.Fatalf("the clients wrote fewer requests than the test sent")
	}

	// kguard policy diff over the audit topic.
	var md, progress bytes.Buffer
	opts := review.DiffOptions{Base: base, Head: head, Replay: review.SourceTopic, Format: "markdown",
		Topic: audit.VerifyOptions{Kafka: audit.KafkaOptions{Brokers: k.Plaintext}, Topic: auditTopic,
			PublicKeyFiles: []string{keyFile + ".pub"}}}
	start := time.Now()
	rep, err := review.RunDiff(ctx, opts, &md, &progress)
	t.Logf("REVIEW policy diff over %s: %d decisions (%d distinct inputs), %d changes in %v",
		auditTopic, rep.Stats.Decisions, rep.Stats.Distinct, len(rep.Changes), time.Since(start).Round(time.Millisecond))
	if !errors.Is(err, review.ErrBreaking) {
		t.Fatalf("policy diff: %v, want ErrBreaking (exit code 3)\n%s", err, md.String())
	}
	if rep.Stats.NoInput != 0 {
		t.Errorf("%d decisions recorded without their input", rep.Stats.NoInput)
	}
	js, _ := json.MarshalIndent(rep.Changes, "", "  ")

	// Exactly the three changes, with the request counts of the traffic.
	type want struct {
		kind, principal, name, op, field, base, head, sev string
		requests, records                                 int64
	}
	wants := []want{
		{review.KindProtection, "", payments, "produce", "$.ssn", "encrypted (AES256_SIV)", "plaintext", review.SeverityBreaking, bob.n.Load(), bobProduces},
		{review.KindAccess, "User:review-alice", orders, "Write", "", "allow", "deny", review.SeverityBreaking, alice.n.Load(), 0},
		{review.KindAccess, "User:review-carol", orders, "DescribeConfigs", "", "deny", "allow", review.SeverityLoosening, carol.n.Load(), 0},
	}
	if len(rep.Changes) != len(wants) {
		t.Fatalf("%d changes, want %d:\n%s", len(rep.Changes), len(wants), js)
	}
	for i, w := range wants {
		c := rep.Changes[i]
		g := want{c.Kind, c.Principal, c.Name, c.Operation, c.Field, c.Base, c.Head, c.Severity, c.Requests, c.Records}
		if g != w {
			t.Errorf("change %d: %+v, want %+v\n%s", i, g, w, js)
		}
	}

	// Acknowledging both breaking changes passes the review.
	var acks []review.Ack
	for _, c := range rep.Changes {
		if c.Severity == review.SeverityBreaking {
			acks = append(acks, review.Ack{Change: c.Key, Reason: "test"})
		}
	}
	opts.Acks, opts.Format = acks, "text"
	var txt bytes.Buffer
	if _, err := review.RunDiff(ctx, opts, &txt, &progress); err != nil {
		t.Fatalf("policy diff with both breaking changes acknowledged: %v\n%s", err, txt.String())
	}

	// kguard audit export of the same topic, verified while reading, and
	// the same review over the exported file.
	exp := filepath.Join(dir, "export.jsonl")
	h, err := audit.RunExport(ctx, audit.ExportOptions{Verify: opts.Topic, Out: exp}, &progress)
	if err != nil || !h.Verified || !h.ChainVerified || !h.CheckpointsVerified || h.Events != h.Records || h.Checkpoints == 0 {
		t.Fatalf("audit export: %+v, %v", h, err)
	}
	t.Logf("REVIEW audit export: %d of %d events, chain verified %t, %d checkpoints verified %t",
		h.Events, h.Records, h.ChainVerified, h.Checkpoints, h.CheckpointsVerified)
	// The trail holds the decisions' inputs, never the payloads.
	if b, err := os.ReadFile(exp); err != nil || bytes.Contains(b, []byte("4111111111111")) || bytes.Contains(b, []byte("078-05-")) ||
		bytes.Contains(b, []byte(`"order":`)) {
		t.Fatalf("the audit trail holds record payloads (or cannot be read: %v)", err)
	}
	fopts := opts
	fopts.Replay, fopts.Acks, fopts.Format = exp, nil, "json"
	var fjs bytes.Buffer
	frep, err := review.RunDiff(ctx, fopts, &fjs, &progress)
	if !errors.Is(err, review.ErrBreaking) {
		t.Fatalf("policy diff over the export: %v", err)
	}
	if a, b := fmt.Sprint(frep.Changes), fmt.Sprint(rep.Changes); a != b || frep.Stats.Decisions != rep.Stats.Decisions {
		t.Fatalf("the export replays differently from the topic:\n%s\n%s", a, b)
	}
	if *updateExample {
		writeExampleEvents(t, exp, sfx, filepath.Join(root, "examples", "policy-review", "events.jsonl"))
	}

	// The markdown report as a golden file, names and counts that vary
	// between runs normalized.
	norm := normalize(md.String(), sfx, root)
	golden := filepath.Join("testdata", "report.golden.md")
	if *update {
		if err := os.WriteFile(golden, []byte(norm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantMD, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if norm != string(wantMD) {
		t.Errorf("markdown report differs from %s (go test ./test/review -update rewrites it):\n%s", golden, norm)
	}
}

var (
	replayedLine = regexp.MustCompile(`Replayed \d+ authorization decisions \(\d+ distinct inputs\) and the data-protection rules of \d+ produce/fetch requests from .*\n`)
	revision     = regexp.MustCompile("revision `[0-9a-f]{16}`")
)

// writeExampleEvents writes the exported events without the export
// header, the random suffix replaced by "example", as the example's
// recorded events (docs/policy-review.md).
func writeExampleEvents(t *testing.T, exp, sfx, dst string) {
	t.Helper()
	b, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := bytes.Cut(b, []byte("\n"))
	if err := os.WriteFile(dst, bytes.ReplaceAll(body, []byte(sfx), []byte("example")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// normalize replaces what differs between runs: the random name suffix,
// the repository path, the totals of all recorded traffic (client
// metadata and fetch requests vary) and the record count of the topic.
func normalize(s, sfx, root string) string {
	s = strings.ReplaceAll(s, sfx, "SFX")
	s = strings.ReplaceAll(s, root+string(filepath.Separator), "")
	s = revision.ReplaceAllString(s, "revision `REV`")
	return replayedLine.ReplaceAllString(s, "Replayed N authorization decisions (D distinct inputs) and the data-protection rules of P produce/fetch requests from `topic __kguard_audit_review_SFX` (R records, chain and C checkpoints verified while reading).\n")
}
