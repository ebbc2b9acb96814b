package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/proxy"
	"github.com/kguard/kguard/test/harness"
)

// sidecar is one kguard instance started by serve from its config file.
type sidecar struct {
	name, cfgPath, user, pass string
	p                         *proxy.Proxy
	logs                      *observer.ObservedLogs // its warnings
}

func (s *sidecar) client(t *testing.T, o ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.p.BootstrapAddr()),
		kgo.SASL(scram.Auth{User: s.user, Pass: s.pass}.AsSha256Mechanism())}, o...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// startSidecar runs serve (as `kguard serve --config`) until the test ends.
func startSidecar(t *testing.T, s *sidecar) {
	t.Helper()
	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *proxy.Proxy, 1)
	done := make(chan error, 1)
	core, logs := observer.New(zap.WarnLevel)
	s.logs = logs
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel),
		zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, core) }))).Named(s.name)
	go func() { done <- serve(ctx, cfg, log, func(p *proxy.Proxy) { ready <- p }) }()
	select {
	case s.p = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("%s: serve: %v", s.name, err)
	case <-time.After(time.Minute):
		cancel()
		t.Fatalf("%s: not ready within a minute", s.name)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: serve: %v", s.name, err)
		}
	})
}

// TestSidecarsTrustEachOther: two kguard instances (as `kguard serve`) in
// front of the real Apache Kafka cluster, each with its own signing key —
// A a local keyset (instance id app-a), B an OpenBao transit ed25519 key
// (the private half never leaves OpenBao) — and each trusting the other
// through its trust store (`kguard keys trust add`). Records produced
// through A verify when read through B, carrying A's producer principal
// (kguard.producer), and the other way round; a record copied from A's
// with a changed value, written straight to the broker, fails at B; so
// does a copy of A's whole batch with only the principal changed in its
// stored signature header (while an unchanged copy verifies, so it is the
// principal that fails it); after `kguard keys trust remove --at T` of A's
// key on B's store (picked up without a restart), A's records signed from
// T on fail at B — those signed between T and the removal and those
// produced after it — while A's older records still verify.
func TestSidecarsTrustEachOther(t *testing.T) {
	k := testenv.NeedKafka(t)
	bao := testenv.NeedOpenBao(t)
	harness.SharedClusterLock(t, k.Script)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	tag := harness.RandHex(t, 4)
	prefix := "dp2-trust-" + tag + "-"
	topic := prefix + "payments"
	transitKey := "dp2-trust-sign-b-" + tag
	kek := "dp2-trust-kek-" + tag

	// policy: sign (batch signatures) and encrypt $.card on prefix*, mark
	// bad signatures; both users may read and write there
	acls := []harness.ACL{{Principal: "User:*", Host: "*", Resource: "Cluster", Pattern: "LITERAL", Name: "kafka-cluster", Operation: "Describe", Permission: "ALLOW"}}
	users := filepath.Join(dir, "users.yaml")
	sa := &sidecar{name: "A", user: "dp2-trust-app-a", pass: harness.RandHex(t, 12)}
	sb := &sidecar{name: "B", user: "dp2-trust-app-b", pass: harness.RandHex(t, 12)}
	for _, s := range []*sidecar{sa, sb} {
		acls = append(acls, harness.GrantPrefix("User:"+s.user, prefix)...)
		if err := auth.AddUser(users, s.user, s.pass, 4096); err != nil {
			t.Fatal(err)
		}
	}
	pdir := harness.PolicyDir(t, filepath.Join(dir, "policies"), "trust", acls)
	rule := fmt.Sprintf(`{"dp2-trust": {"prefix": %q, "priority": 60, "fields": [{"path": "$.card"}], "kek": %q,
	  "sign": true, "decrypt": {"principals": ["User:*"]}, "on_bad_signature": "mark"}}`, prefix, kek)
	if err := os.WriteFile(filepath.Join(pdir, "protection", "trust.json"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "bao-token")
	if err := os.WriteFile(tokenFile, []byte(bao.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	ports, err := harness.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	writeCfg := func(s *sidecar, port int, signing string) {
		sdir := filepath.Join(dir, s.name)
		if err := os.MkdirAll(filepath.Join(sdir, "trust"), 0o755); err != nil {
			t.Fatal(err)
		}
		yaml := fmt.Sprintf(`listen:
  bootstrap: 127.0.0.1:%d
  broker_port_base: %d
  auth:
    sasl_mechanisms: [SCRAM-SHA-256]
    credentials_file: %s
upstream:
  bootstrap: [%s]
policy:
  dirs: [%s]
crypto:
  kms: vault
  vault:
    address: %s
    token_file: %s
    create_keys: true
  batch_signatures: true
%s
  trust:
    file: %s
log:
  level: warn
`, port, port+1, users, strings.Join(k.Plaintext, ", "), pdir, bao.Addr, tokenFile, signing, filepath.Join(sdir, "trust", "trust.json"))
		s.cfgPath = filepath.Join(sdir, "kguard.yaml")
		if err := os.WriteFile(s.cfgPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(sa, ports[0], "  instance_id: app-a\n  signing_keyset: "+filepath.Join(dir, "A", "signing-keyset.json"))
	writeCfg(sb, ports[1], "  signing_transit_key: "+transitKey)

	// A's keyset (kguard keys init-signing); B's transit key; each trusts
	// the other
	cli := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, "", args...)
		if err != nil {
			t.Fatalf("kguard %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	cli("keys", "init-signing", "--config", sa.cfgPath)
	kms, err := crypto.NewTransitKMS(ctx, crypto.TransitConfig{Address: bao.Addr, Token: bao.Token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range []string{transitKey, kek} {
			_ = kms.DestroyKey(context.Background(), k)
		}
		_ = kms.Close()
	})
	if out := cli("keys", "init-signing", "--config", sb.cfgPath); !strings.Contains(out, "bao:"+transitKey+"/v1") {
		t.Fatalf("init-signing with a transit key: %s", out)
	}
	cli("keys", "trust", "add", "--config", sb.cfgPath, "--keyset", filepath.Join(dir, "A", "signing-keyset.pub.json"), "app-a")
	cli("keys", "trust", "add", "--config", sa.cfgPath, "--transit", transitKey)
	if out := cli("keys", "trust", "list", "--config", sa.cfgPath); !strings.Contains(out, "bao:"+transitKey+"/v1") {
		t.Fatalf("A's trust list lacks B's key:\n%s", out)
	}

	startSidecar(t, sa)
	startSidecar(t, sb)

	direct, err := kgo.NewClient(kgo.SeedBrokers(k.Plaintext...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if _, err := kadm.NewClient(direct).CreateTopic(ctx, 1, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = kadm.NewClient(direct).DeleteTopics(context.Background(), topic) })

	// batch writes rs as one Kafka batch through cl (manual flushing: the
	// records are buffered, then sent together).
	batch := func(cl *kgo.Client, rs []*kgo.Record, via string) {
		t.Helper()
		errs := make(chan error, len(rs))
		for _, r := range rs {
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) { errs <- err })
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("produce through %s: %v", via, err)
		}
		for range rs {
			if err := <-errs; err != nil {
				t.Fatalf("produce through %s: %v", via, err)
			}
		}
	}
	produce := func(s *sidecar, from, n int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%s-%d", s.name, i),
				Value: fmt.Appendf(nil, `{"id":%d,"from":%q,"card":"4111-%04d"}`, i, s.name, i)})
		}
		batch(s.client(t, kgo.ManualFlushing()), rs, s.name)
	}
	// consume reads the first n records of the topic through s (or
	// straight from the brokers when s is nil).
	consume := func(s *sidecar, n int) []*kgo.Record {
		t.Helper()
		opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
		var cl *kgo.Client
		if s == nil {
			cl, err = kgo.NewClient(append(opts, kgo.SeedBrokers(k.Plaintext...))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
		} else {
			cl = s.client(t, opts...)
			defer cl.Close()
		}
		var out []*kgo.Record
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		for len(out) < n {
			f := cl.PollFetches(cctx)
			if err := cctx.Err(); err != nil {
				t.Fatalf("consuming through %v: %d of %d records", s != nil, len(out), n)
			}
			f.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
			out = append(out, f.Records()...)
		}
		return out[:n]
	}
	verdict := func(r *kgo.Record) string {
		for _, h := range r.Headers {
			if h.Key == crypto.VerifyHeader {
				return string(h.Value)
			}
		}
		return "ok"
	}
	// producer is the principal kguard.producer names ("" without one).
	producer := func(r *kgo.Record) string {
		for _, h := range r.Headers {
			if h.Key == crypto.ProducerHeader {
				var p crypto.Producer
				if err := json.Unmarshal(h.Value, &p); err != nil {
					t.Fatalf("record %s: %s: %v", r.Key, h.Value, err)
				}
				return p.Principal
			}
		}
		return ""
	}
	// check says what of(r) must be for records [from, to) of rs
	// (verdict or producer).
	check := func(rs []*kgo.Record, from, to int, of func(*kgo.Record) string, want, what string) {
		t.Helper()
		for _, r := range rs[from:to] {
			if got := of(r); got != want {
				t.Fatalf("%s: record %d %s: %q, want %q", what, r.Offset, r.Key, got, want)
			}
		}
	}
	// copyOf is r as stored, to be written straight to the broker.
	copyOf := func(r *kgo.Record) *kgo.Record {
		c := &kgo.Record{Topic: topic, Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)}
		for _, h := range r.Headers {
			c.Headers = append(c.Headers, kgo.RecordHeader{Key: h.Key, Value: bytes.Clone(h.Value)})
		}
		return c
	}
	principalA, principalB := "User:"+sa.user, "User:"+sb.user

	// 1. A -> B and B -> A, each with its producer
	produce(sa, 0, 5)
	produce(sb, 5, 5)
	atB := consume(sb, 10)
	check(atB, 0, 10, verdict, "ok", "read through B")
	check(atB, 0, 5, producer, principalA, "A's records read through B")
	check(atB, 5, 10, producer, principalB, "B's records read through B")
	if !strings.Contains(string(atB[0].Value), `"card":"4111-0000"`) {
		t.Fatalf("A's record not decrypted at B: %s", atB[0].Value)
	}
	atA := consume(sa, 10)
	check(atA, 0, 10, verdict, "ok", "read through A")
	check(atA, 5, 10, producer, principalB, "B's records read through A")

	// 2. a copy of A's first record with another value, straight to the broker
	stored := consume(nil, 5) // A's first batch as stored
	forged := copyOf(stored[0])
	forged.Value = []byte(strings.Replace(string(stored[0].Value), `"id":0`, `"id":9`, 1))
	if string(forged.Value) == string(stored[0].Value) {
		t.Fatalf("stored value not as expected: %s", stored[0].Value)
	}
	if err := direct.ProduceSync(ctx, forged).FirstErr(); err != nil {
		t.Fatal(err)
	}
	atB = consume(sb, 11)
	check(atB, 10, 11, verdict, "bad", "tampered copy read through B")

	// A's whole first batch copied straight to the broker (offsets 11-15)
	// verifies as A's; the same copy with B's principal in place of A's in
	// the stored signature header (offsets 16-20) fails
	directBatch, err := kgo.NewClient(kgo.SeedBrokers(k.Plaintext...), kgo.ManualFlushing())
	if err != nil {
		t.Fatal(err)
	}
	defer directBatch.Close()
	var replay, renamed []*kgo.Record
	swapped := 0
	for _, r := range stored {
		replay = append(replay, copyOf(r))
		c := copyOf(r)
		for i, h := range c.Headers {
			if h.Key == crypto.SigHeader { // same length: only the name changes
				c.Headers[i].Value = bytes.Replace(h.Value, []byte(principalA), []byte(principalB), 1)
				if !bytes.Equal(c.Headers[i].Value, h.Value) {
					swapped++
				}
			}
		}
		renamed = append(renamed, c)
	}
	if len(principalA) != len(principalB) || swapped != 1 {
		t.Fatalf("A's batch as stored: %d signature headers name %s", swapped, principalA)
	}
	batch(directBatch, replay, "the broker")
	batch(directBatch, renamed, "the broker")
	atB = consume(sb, 21)
	check(atB, 11, 16, verdict, "ok", "unchanged copy of A's batch read through B")
	check(atB, 11, 16, producer, principalA, "unchanged copy of A's batch read through B")
	check(atB, 16, 21, verdict, "bad", "A's batch with B's principal, read through B")
	check(atB, 16, 21, producer, "", "A's batch with B's principal, read through B")

	// 3. B revokes A's key from T on (--at); the store reloads without a
	// restart. A's records signed after T fail at B, whether produced
	// before the removal (offsets 21-23) or after it (24-26)
	listed := cli("keys", "trust", "list", "--config", sb.cfgPath)
	keyA := ""
	for _, line := range strings.Split(listed, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "app-a/") {
			keyA = f[0]
		}
	}
	if keyA == "" {
		t.Fatalf("B's trust list lacks app-a's key:\n%s", listed)
	}
	at := time.Now()
	time.Sleep(20 * time.Millisecond) // signing times in ms, strictly after T
	produce(sa, 21, 3)
	out := cli("keys", "trust", "remove", "--config", sb.cfgPath, "--at", at.UTC().Format(time.RFC3339Nano), keyA)
	if !strings.Contains(out, "revoked "+keyA) {
		t.Fatalf("remove: %s", out)
	}
	listed = cli("keys", "trust", "list", "--config", sb.cfgPath)
	for _, line := range strings.Split(listed, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == keyA && f[len(f)-1] == "-" {
			t.Fatalf("B's trust list after remove shows %s unrevoked:\n%s", keyA, listed)
		}
	}
	time.Sleep(time.Second) // fsnotify + debounce
	produce(sa, 24, 3)
	atB = consume(sb, 27)
	check(atB, 0, 10, verdict, "ok", "records from before A's revocation time, read through B")
	check(atB, 0, 5, producer, principalA, "A's records from before its revocation time, read through B")
	check(atB, 11, 16, verdict, "ok", "copy of A's batch from before its revocation time, read through B")
	check(atB, 21, 27, verdict, "bad", "A's records signed after its revocation time, read through B")
	check(atB, 21, 27, producer, "", "A's records signed after its revocation time, read through B")
	atA = consume(sa, 27)
	check(atA, 21, 27, verdict, "ok", "A's records after its revocation at B, read through A (A still trusts itself)")
	check(atA, 21, 27, producer, principalA, "A's records read through A")
	// B's log says why each failed (what the data.protection audit event
	// carries too)
	var reasons []string
	for _, e := range sb.logs.FilterMessage("fetched records failed signature verification").All() {
		for _, f := range e.Context {
			if f.Key == "reasons" {
				reasons = append(reasons, fmt.Sprint(f.Interface))
			}
		}
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"incomplete or not as produced", keyA + " does not verify (a signed byte or the producer changed)",
		"signing key " + keyA + ": crypto: signing key revoked at"} {
		if !strings.Contains(all, want) {
			t.Fatalf("B's log lacks the reason %q:\n%s", want, all)
		}
	}
	t.Logf("TRUST sidecars: A (keyset app-a) and B (transit %s) verify each other, with producers %s and %s; at B: value-tampered copy bad, "+
		"A's batch with B's principal bad (unchanged copy ok); after `keys trust remove --at T %s` at B: 3 A records signed between T and the removal "+
		"and 3 after it bad, 10 older ok", transitKey, principalA, principalB, keyA)
}
