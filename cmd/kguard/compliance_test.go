package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/compliance"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy"
	"github.com/kguard/kguard/test/harness"
)

// complianceRun is one in-process kguard in front of the real cluster
// with the audit trail, OpenBao transit and a watched policy directory.
type complianceRun struct {
	t          *testing.T
	kafka      testenv.Kafka
	dir        string
	cfgPath    string
	policyDir  string
	id         string
	user       string
	password   string
	auditTopic string
	topics     map[string]string // role -> topic
	kek        string
	port       int
	mport      int
	adm        *kadm.Client // straight to the brokers as kguard's identity
	direct     []kgo.Opt
}

// TestComplianceReport runs kguard with traffic, a denied access, a key
// rotation, a policy reload, an audit outage (the audit topic refuses
// every batch: max.message.bytes=1, with on_full: continue-with-alarm and
// a small spool) and a shred, then makes the compliance report and checks
// that its figures are what the test did, that Chromium renders the HTML
// with the control table, and that `compliance verify` accepts the report
// and rejects edited copies.
func TestComplianceReport(t *testing.T) {
	k := testenv.NeedKafka(t)
	bao := testenv.NeedOpenBao(t)
	harness.SharedClusterLock(t, k.Script)
	t.Setenv("VAULT_TOKEN", bao.Token)
	r := newComplianceRun(t, k, bao)
	start := time.Now().Add(-time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stop := r.serve(ctx)
	cl := r.client()

	// Traffic, and records for two data subjects (separate partitions).
	for i := range 20 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: r.topics["orders"], Value: []byte(`{"n":` + strconv.Itoa(i) + `}`)}).FirstErr(); err != nil {
			t.Fatalf("produce orders: %v", err)
		}
	}
	for p, who := range []string{"bob", "alice"} {
		v := fmt.Sprintf(`{"customer":"%s","card":"4111-%s-card"}`, who, who)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: r.topics["cards"], Partition: int32(p), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce cards for %s: %v", who, err)
		}
	}
	// A denied access.
	dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
	err := cl.ProduceSync(dctx, &kgo.Record{Topic: r.topics["secret"], Value: []byte(`{}`)}).FirstErr()
	dcancel()
	if err == nil {
		t.Fatal("produce to a topic the policy does not grant succeeded")
	}
	t.Logf("denied produce: %v", err)

	// A key rotation.
	ks := r.kms(ctx)
	before := time.Now().Add(-time.Second)
	if out, err := runCLI(t, "", "keys", "rotate", "--config", r.cfgPath, r.kek); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	after := time.Now().Add(time.Second)
	info, err := ks.(keyInfoer).KeyInfo(ctx, r.kek)
	if err != nil || info.LatestVersion != 2 || len(info.Versions) != 2 {
		t.Fatalf("key %s after rotation: %+v %v", r.kek, info, err)
	}
	rotated := info.Versions[1].Created
	if rotated.Before(before.Truncate(time.Second)) || rotated.After(after) {
		t.Fatalf("rotation date %v not within %v..%v", rotated, before, after)
	}

	// A policy reload: grant the "later" topic; the watcher reloads.
	rev1 := r.revision(ctx)
	r.writeACLs(true)
	rev2 := r.revision(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err := cl.ProduceSync(pctx, &kgo.Record{Topic: r.topics["later"], Value: []byte(`{}`)}).FirstErr()
		pcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reloaded policy does not grant %s: %v", r.topics["later"], err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// An audit outage: the audit topic refuses every batch until the spool
	// is full and events are dropped; then it accepts them again.
	base := r.metric("kguard_audit_events_dropped_total")
	r.alterAuditTopic(ctx, "1")
	for r.metric("kguard_audit_events_dropped_total") <= base {
		if ctx.Err() != nil {
			t.Fatal("no audit event dropped during the outage")
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: r.topics["orders"], Value: []byte(`{"outage":true}`)}).FirstErr(); err != nil {
			t.Fatalf("produce during the audit outage (continue-with-alarm must not refuse): %v", err)
		}
	}
	for range 20 { // more drops while the topic still refuses
		_ = cl.ProduceSync(ctx, &kgo.Record{Topic: r.topics["orders"], Value: []byte(`{"outage":true}`)}).FirstErr()
	}
	r.alterAuditTopic(ctx, "")
	for r.metric("kguard_audit_spool_bytes") > 64<<10 && ctx.Err() == nil {
		_ = cl.ProduceSync(ctx, &kgo.Record{Topic: r.topics["orders"], Value: []byte(`{"after":true}`)}).FirstErr()
		time.Sleep(200 * time.Millisecond)
	}

	// A shred: alice's key is destroyed; bob's record still decrypts.
	if out, err := runCLI(t, "", "keys", "shred", "--config", r.cfgPath, "alice"); err != nil {
		t.Fatalf("keys shred: %v\n%s", err, out)
	}
	time.Sleep(2 * time.Second) // crypto.keys.cache_ttl: 1s
	r.checkDecrypt(ctx)

	dropped := r.metric("kguard_audit_events_dropped_total")
	cl.Close()
	stop()
	until := time.Now().Add(time.Second)

	// The report.
	out := filepath.Join(r.dir, "report")
	res, err := runCLI(t, "", "compliance", "report", "--config", r.cfgPath, "--since", start.UTC().Format(time.RFC3339),
		"--until", until.UTC().Format(time.RFC3339), "--format", "html,md", "--out", out)
	if err != nil {
		t.Fatalf("compliance report: %v\n%s", err, res)
	}
	t.Logf("compliance report:\n%s", res)
	var rep compliance.Report
	raw, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	ev := &rep.Evidence
	for _, name := range []string{"report.json", "report.html", "report.md"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{r.password, k.Password, "4111-alice-card", "4111-bob-card", `"alice"`}
		if len(bao.Token) >= 16 { // the dev server's token may be "root"
			secrets = append(secrets, bao.Token)
		}
		for _, secret := range secrets {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s contains a secret, a payload or a subject id: %q", name, secret)
			}
		}
	}
	subjectKey := r.subjectKey(ctx, "alice")
	r.checkFigures(ctx, ev, start, until, dropped, rotated, subjectKey, rev1, rev2)
	status := map[string]compliance.Status{}
	for _, c := range rep.Controls {
		status[c.ID] = c.Status
		t.Logf("COMPLIANCE %-20s %-15s %s", c.ID, c.Status, c.Summary)
	}
	for id, want := range map[string]compliance.Status{
		"PCI DSS 3.5": compliance.Pass, "PCI DSS 3.6": compliance.Pass, "PCI DSS 3.7": compliance.Pass,
		// The shipped example ACLs give User:ops All on every topic.
		"PCI DSS 7.2": compliance.Fail, "PCI DSS 8.3": compliance.Pass, "PCI DSS 10.2": compliance.Pass,
		"PCI DSS 10.3": compliance.Pass, "PCI DSS 10.5": compliance.Pass,
		// Events were dropped during the outage.
		"PCI DSS 10.7": compliance.Fail, "SOX change control": compliance.Pass, "GDPR Art. 17": compliance.Pass,
	} {
		if status[id] != want {
			t.Errorf("%s: %s, want %s", id, status[id], want)
		}
	}

	renderChromium(t, filepath.Join(out, "report.html"), r.dir)
	if keep := os.Getenv("KGUARD_COMPLIANCE_OUT"); keep != "" { // keep the report and its screenshot
		copyDir(t, out, keep)
		if b, err := os.ReadFile(filepath.Join(r.dir, "report.png")); err == nil {
			_ = os.WriteFile(filepath.Join(keep, "report.png"), b, 0o644)
		}
	}

	// compliance verify accepts the report and rejects edited copies.
	pub := filepath.Join(r.dir, "audit-signing.pem.pub")
	if res, err := runCLI(t, "", "compliance", "verify", "--pubkey", pub, out); err != nil {
		t.Fatalf("compliance verify: %v\n%s", err, res)
	} else {
		t.Logf("compliance verify:\n%s", res)
	}
	edits := map[string]func([]byte) []byte{
		"report.html": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`class="fail">FAIL`), []byte(`class="pass">PASS`), 1)
		},
		"report.json": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"status": "FAIL"`), []byte(`"status": "PASS"`), 1)
		},
	}
	for name, edit := range edits {
		cp := filepath.Join(r.dir, "edited-"+name)
		copyDir(t, out, cp)
		p := filepath.Join(cp, name)
		b, _ := os.ReadFile(p)
		e := edit(b)
		if bytes.Equal(b, e) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		if err := os.WriteFile(p, e, 0o644); err != nil {
			t.Fatal(err)
		}
		if res, err := runCLI(t, "", "compliance", "verify", "--pubkey", pub, cp); err == nil {
			t.Errorf("compliance verify accepted an edited %s:\n%s", name, res)
		} else {
			t.Logf("edited %s rejected: %v", name, err)
		}
	}
	// Evidence changed and re-signed with another key: the signature is
	// not the audit key's.
	other := filepath.Join(r.dir, "other.pem")
	if _, err := audit.GenerateKeyFile(other); err != nil {
		t.Fatal(err)
	}
	okey, _ := audit.LoadPrivateKey(other)
	rep.Evidence.Total++
	forged := filepath.Join(r.dir, "forged")
	if _, err := compliance.Write(forged, compliance.Build(&rep.Evidence), []string{"html"}, okey); err != nil {
		t.Fatal(err)
	}
	if res, err := runCLI(t, "", "compliance", "verify", "--pubkey", pub, forged); err == nil {
		t.Errorf("compliance verify accepted a report signed with another key:\n%s", res)
	}
}

func newComplianceRun(t *testing.T, k testenv.Kafka, bao testenv.OpenBao) *complianceRun {
	t.Helper()
	dir := t.TempDir()
	id := harness.RandHex(t, 4)
	prefix := "compliance-" + id
	r := &complianceRun{t: t, kafka: k, dir: dir, id: id, user: prefix, password: harness.RandHex(t, 16),
		auditTopic: prefix + "-audit", kek: prefix + "-kek",
		topics: map[string]string{"orders": prefix + "-orders", "cards": prefix + "-cards", "secret": prefix + "-secret", "later": prefix + "-later"}}
	ports, err := harness.FreePorts(1)
	for try := 0; err != nil && try < 10; try++ { // ranges of 17 free ports can be rare on a busy machine
		time.Sleep(time.Second)
		ports, err = harness.FreePorts(1)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.port = ports[0]
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.mport = ml.Addr().(*net.TCPAddr).Port
	ml.Close()
	direct := audit.KafkaOptions{Brokers: k.SASLSSL, TLS: true, CAFile: k.CAFile, SASLMechanism: "SCRAM-SHA-512", User: k.User, Password: k.Password}
	if r.direct, err = direct.ClientOpts(); err != nil {
		t.Fatal(err)
	}
	dcl, err := kgo.NewClient(r.direct...)
	if err != nil {
		t.Fatal(err)
	}
	r.adm = kadm.NewClient(dcl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for role, topic := range r.topics {
		parts := int32(1)
		if role == "cards" {
			parts = 2
		}
		if _, err := r.adm.CreateTopic(ctx, parts, 3, nil, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		topics := []string{r.auditTopic}
		for _, tp := range r.topics {
			topics = append(topics, tp)
		}
		if _, err := r.adm.DeleteTopics(ctx, topics...); err != nil {
			t.Logf("deleting topics: %v", err)
		}
		dcl.Close()
	})

	r.policyDir = harness.PolicyDir(t, filepath.Join(dir, "policies"), "compliance", nil)
	r.writeACLs(false)
	var settings map[string]any
	sp := filepath.Join(r.policyDir, "config", "acl.json")
	b, err := os.ReadFile(sp)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &settings); err != nil {
		t.Fatal(err)
	}
	settings["kguard"] = map[string]any{"principal": "User:" + k.User, "audit_topic": r.auditTopic}
	writeJSON(t, sp, settings)
	// The deployment's Rego tests name its audit topic.
	tp := filepath.Join(r.policyDir, "kguard_test.rego")
	if b, err = os.ReadFile(tp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tp, bytes.ReplaceAll(b, []byte(`"__kguard_audit"`), []byte(`"`+r.auditTopic+`"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, filepath.Join(r.policyDir, "protection", "compliance.json"), map[string]any{
		"compliance-cards": map[string]any{
			"topic": r.topics["cards"], "fields": []map[string]string{{"path": "$.card"}}, "kek": r.kek,
			"subject_field": "$.customer", "sign": false, "decrypt": map[string]any{"principals": []string{"User:" + r.user}},
			"on_denied": "ciphertext", "on_bad_signature": "mark",
		},
	})

	users := filepath.Join(dir, "users.yaml")
	if err := auth.AddUser(users, r.user, r.password, 4096); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "upstream-password")
	if err := os.WriteFile(pw, []byte(k.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	pepper := filepath.Join(dir, "subject-pepper")
	if err := os.WriteFile(pepper, []byte(harness.RandHex(t, 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "audit-signing.pem")
	if _, err := audit.GenerateKeyFile(key); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`listen:
  bootstrap: 127.0.0.1:%d
  broker_port_base: %d
  auth:
    sasl_mechanisms: [SCRAM-SHA-512]
    credentials_file: %s
upstream:
  bootstrap: [%s]
  tls:
    ca_file: %s
  sasl:
    mechanism: SCRAM-SHA-512
    username: %s
    password_file: %s
policy:
  dirs: [%s]
  watch: true
audit:
  enabled: true
  instance_id: %s
  spool_dir: %s
  spool_max_bytes: 131072
  on_full: continue-with-alarm
  signing_key_file: %s
  checkpoint_every: 200
  checkpoint_interval: 2s
  topic:
    name: %s
    partitions: 1
    replication_factor: 3
    min_insync_replicas: 2
    retention: 9600h
crypto:
  kms: vault
  vault:
    address: %s
  subject_pepper_file: %s
  keys:
    cache_ttl: 1s
limits:
  shutdown_grace: 5s
metrics:
  listen: 127.0.0.1:%d
`, r.port, r.port+1, users, strings.Join(k.SASLSSL, ", "), k.CAFile, k.User, pw, r.policyDir,
		prefix, filepath.Join(dir, "spool"), key, r.auditTopic, bao.Addr, pepper, r.mport)
	r.cfgPath = filepath.Join(dir, "kguard.yaml")
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The KEK exists before the run (version 1); the test rotates it.
	ks := r.kms(ctx)
	if err := ks.CreateKey(ctx, r.kek); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.kms(ctx).DestroyKey(ctx, r.kek)
		// bob's subject key
		if k := r.subjectKey(ctx, "bob"); k != "" {
			_ = r.kms(ctx).DestroyKey(ctx, k)
		}
	})
	return r
}

// writeACLs writes the test principal's ACLs (with the "later" topic
// after the reload).
func (r *complianceRun) writeACLs(later bool) {
	p := "User:" + r.user
	acls := []harness.ACL{
		{Principal: p, Host: "*", Resource: "Topic", Pattern: "LITERAL", Name: r.topics["orders"], Operation: "All", Permission: "ALLOW"},
		{Principal: p, Host: "*", Resource: "Topic", Pattern: "LITERAL", Name: r.topics["cards"], Operation: "All", Permission: "ALLOW"},
		{Principal: "User:" + r.kafka.User, Host: "*", Resource: "Topic", Pattern: "LITERAL", Name: r.auditTopic, Operation: "All", Permission: "ALLOW"},
	}
	if later {
		acls = append(acls, harness.ACL{Principal: p, Host: "*", Resource: "Topic", Pattern: "LITERAL", Name: r.topics["later"], Operation: "All", Permission: "ALLOW"})
	}
	writeJSON(r.t, filepath.Join(r.policyDir, "acls", "compliance.json"), map[string][]harness.ACL{"compliance": acls})
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// revision is the revision the policy directory has now.
func (r *complianceRun) revision(ctx context.Context) string {
	eng, err := policy.NewEngine(ctx, policy.Config{Dirs: []string{r.policyDir}})
	if err != nil {
		r.t.Fatal(err)
	}
	return eng.Revision()
}

func (r *complianceRun) config() *config.Config {
	cfg, err := config.Load(r.cfgPath)
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

func (r *complianceRun) kms(ctx context.Context) keyService {
	ks, closeKMS, err := openKMS(ctx, &r.config().Crypto, zap.NewNop())
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(closeKMS)
	return ks
}

func (r *complianceRun) subjectKey(ctx context.Context, subject string) string {
	p, closeKMS, err := newProtector(ctx, &r.config().Crypto, zap.NewNop())
	if err != nil {
		r.t.Logf("protector: %v", err)
		return ""
	}
	defer closeKMS()
	return p.SubjectKeyName(subject)
}

// serve runs kguard in process until the returned stop is called.
func (r *complianceRun) serve(ctx context.Context) (stop func()) {
	t := r.t
	sctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- serve(sctx, r.config(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), func(*proxy.Proxy) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("kguard serve: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatal("kguard not ready after 2m")
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kguard serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func (r *complianceRun) client(opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", r.port)),
		kgo.SASL(scram.Auth{User: r.user, Pass: r.password}.AsSha512Mechanism()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(10 * time.Second),
		kgo.ClientID("kguard-compliance-test"),
	}, opts...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	return cl
}

// alterAuditTopic sets (or, with "", removes) max.message.bytes on the
// audit topic.
func (r *complianceRun) alterAuditTopic(ctx context.Context, v string) {
	op := kadm.AlterConfig{Name: "max.message.bytes", Value: &v}
	if v == "" {
		op = kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "max.message.bytes"}
	}
	res, err := r.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{op}, r.auditTopic)
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		r.t.Fatalf("alter %s max.message.bytes=%q: %v", r.auditTopic, v, err)
	}
}

// metric reads one kguard metric from its /metrics endpoint.
func (r *complianceRun) metric(name string) float64 {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.mport))
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return f
		}
	}
	return 0
}

// checkDecrypt consumes the cards topic through kguard: bob's card is
// plaintext; alice's (shredded) never is.
func (r *complianceRun) checkDecrypt(ctx context.Context) {
	t := r.t
	cl := r.client(kgo.ConsumeTopics(r.topics["cards"]), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	bob := false
	for !bob && cctx.Err() == nil {
		fs := cl.PollFetches(cctx)
		fs.EachRecord(func(rec *kgo.Record) {
			if bytes.Contains(rec.Value, []byte("4111-alice-card")) {
				t.Errorf("alice's card is readable after the shred: partition %d offset %d", rec.Partition, rec.Offset)
			}
			if bytes.Contains(rec.Value, []byte("4111-bob-card")) {
				bob = true
			}
		})
	}
	if !bob {
		t.Fatal("bob's card did not decrypt after alice's shred")
	}
}

// checkFigures compares the report's figures with what the test did and
// with the audit topic read straight from the brokers.
func (r *complianceRun) checkFigures(ctx context.Context, ev *compliance.Evidence, since, until time.Time, dropped float64,
	rotated time.Time, subjectKey, rev1, rev2 string) {
	t := r.t
	counts := r.readCounts(ctx, since, until)
	t.Logf("COMPLIANCE audit events in the period read from the topic: %v", counts)
	t.Logf("COMPLIANCE report event counts: %v (total %d)", ev.Counts, ev.Total)
	if len(counts) != len(ev.Counts) {
		t.Errorf("report has %d event types, the topic %d", len(ev.Counts), len(counts))
	}
	for typ, n := range counts {
		if ev.Counts[typ] != n {
			t.Errorf("%s: report counts %d, the topic has %d", typ, ev.Counts[typ], n)
		}
	}
	// What the test did.
	want := map[string]int{"key.operation": 2, "policy.reload": 2, "audit.start": 3, "audit.stop": 3}
	for typ, n := range want {
		if ev.Counts[typ] != n {
			t.Errorf("%s: %d events, want %d", typ, ev.Counts[typ], n)
		}
	}
	if ev.Decisions.Denied < 1 || !strings.Contains(strings.Join(ev.Decisions.DeniedSamples, "\n"), r.topics["secret"]) {
		t.Errorf("denied access not in the report: %d denials %q", ev.Decisions.Denied, ev.Decisions.DeniedSamples)
	}
	var gapDropped uint64
	for _, g := range ev.Gaps {
		gapDropped += g.Dropped
	}
	t.Logf("COMPLIANCE outage: %d events dropped (metric %v) in %d gap(s)", gapDropped, dropped, len(ev.Gaps))
	if len(ev.Gaps) == 0 || float64(gapDropped) != dropped {
		t.Errorf("gaps %+v: %d dropped, metric says %v", ev.Gaps, gapDropped, dropped)
	}
	var rot *crypto.KeyInfo
	for i := range ev.KeyInfo {
		if ev.KeyInfo[i].Name == r.kek {
			rot = &ev.KeyInfo[i]
		}
	}
	if rot == nil || rot.LatestVersion != 2 || !rot.Versions[1].Created.Equal(rotated) {
		t.Errorf("key %s in the report: %+v, want version 2 created %v", r.kek, rot, rotated)
	}
	rotations := 0
	for _, op := range ev.KeyOps {
		if op.Operation == "ROTATE" && op.Key == r.kek && op.Decision == "allow" {
			rotations++
		}
	}
	if rotations != 1 {
		t.Errorf("rotation events of %s: %d, want 1 (%+v)", r.kek, rotations, ev.KeyOps)
	}
	if len(ev.Erasure) != 1 || ev.Erasure[0].SubjectKey != subjectKey || !ev.Erasure[0].Gone || ev.Canary == nil || !ev.Canary.OK {
		t.Errorf("erasure %+v canary %+v, want %s gone", ev.Erasure, ev.Canary, subjectKey)
	}
	if len(ev.Revisions) != 2 || ev.Revisions[0].Revision != rev1 || ev.Revisions[1].Revision != rev2 || rev1 == rev2 {
		t.Errorf("policy revisions %+v, want %s then %s", ev.Revisions, rev1, rev2)
	} else if d := ev.Revisions[1].Diff; !strings.Contains(d, "+") || !strings.Contains(d, r.topics["later"]) {
		t.Errorf("diff of the reload does not show the new grant:\n%s", d)
	}
	if ev.AuditTopic.RetentionMs != (9600 * time.Hour).Milliseconds() {
		t.Errorf("audit topic retention %d", ev.AuditTopic.RetentionMs)
	}
}

// readCounts counts the audit events per type in [since, until) read
// straight from the audit topic (each instance's seq once).
func (r *complianceRun) readCounts(ctx context.Context, since, until time.Time) map[string]int {
	t := r.t
	ends, err := r.adm.ListEndOffsets(ctx, r.auditTopic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, r.direct...), kgo.ConsumeTopics(r.auditTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	counts := map[string]int{}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for len(want) > 0 {
		fs := cl.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("reading %s: %v", r.auditTopic, cctx.Err())
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset >= want[rec.Partition]-1 {
				delete(want, rec.Partition)
			}
			e, err := audit.DecodeEvent(rec.Value)
			if err != nil {
				t.Errorf("audit record at %d: %v", rec.Offset, err)
				return
			}
			k := e.Where.Instance + "/" + strconv.FormatUint(e.Seq, 10)
			if seen[k] || e.Time.Before(since.Truncate(time.Second)) || !e.Time.Before(until.Truncate(time.Second)) {
				return
			}
			seen[k] = true
			counts[string(e.Type)]++
		})
	}
	return counts
}

// renderChromium renders the report with headless Chromium (Debian's
// package) to a PNG and checks it is not blank and shows the status
// colours of the control table, and that the DOM Chromium built has the
// table.
func renderChromium(t *testing.T, html, dir string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if testenv.Required() {
			t.Fatal("chromium is not installed (test/deps.sh installs it)")
		}
		t.Skip("chromium is not installed (test/deps.sh installs it)")
	}
	flags := func(extra ...string) []string {
		profile, err := os.MkdirTemp(dir, "chromium-profile-")
		if err != nil {
			t.Fatal(err)
		}
		return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + profile}, extra...)
	}
	run := func(args []string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.Bytes()
	}
	shot := filepath.Join(dir, "report.png")
	run(flags("--screenshot="+shot, "--window-size=1400,2000", "file://"+html))
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	colours := map[[3]uint32]int{}
	nonWhite := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			c := [3]uint32{cr >> 8, cg >> 8, cb >> 8}
			colours[c]++
			if c != [3]uint32{255, 255, 255} {
				nonWhite++
			}
		}
	}
	pass, fail := colours[[3]uint32{0xbf, 0xe8, 0xbf}], colours[[3]uint32{0xf4, 0xb6, 0xb6}]
	t.Logf("COMPLIANCE screenshot %dx%d: %d colours, %d non-white samples, %d PASS-green, %d FAIL-red", b.Dx(), b.Dy(), len(colours), nonWhite, pass, fail)
	if b.Dx() < 1000 || nonWhite < 1000 || pass == 0 || fail == 0 {
		t.Errorf("the screenshot does not show the control table (size %v, %d non-white, green %d, red %d)", b, nonWhite, pass, fail)
	}
	dom := string(run(flags("--dump-dom", "file://"+html)))
	for _, s := range []string{`<table id="controls">`, "PCI DSS 10.7", "GDPR Art. 17", "SOX change control", ">FAIL<", ">PASS<"} {
		if !strings.Contains(dom, s) {
			t.Errorf("Chromium's DOM lacks %q", s)
		}
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
