package main

import (
	"context"
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
	"go.uber.org/zap/zaptest"

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
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(s.name)
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
// through A verify when read through B and the other way round; a record
// copied from A's with a changed value, written straight to the broker,
// fails at B; after `kguard keys trust remove app-a` on B's store (picked
// up without a restart), records A produces from then on fail at B while
// A's older records still verify.
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

	produce := func(s *sidecar, from, n int) {
		t.Helper()
		cl := s.client(t)
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%s-%d", s.name, i),
				Value: fmt.Appendf(nil, `{"id":%d,"from":%q,"card":"4111-%04d"}`, i, s.name, i)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce through %s: %v", s.name, err)
		}
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
	expect := func(rs []*kgo.Record, from, to int, want, what string) {
		t.Helper()
		for _, r := range rs[from:to] {
			if got := verdict(r); got != want {
				t.Fatalf("%s: record %s: verdict %q, want %q", what, r.Key, got, want)
			}
		}
	}

	// 1. A -> B and B -> A
	produce(sa, 0, 5)
	produce(sb, 5, 5)
	atB := consume(sb, 10)
	expect(atB, 0, 10, "ok", "read through B")
	if !strings.Contains(string(atB[0].Value), `"card":"4111-0000"`) {
		t.Fatalf("A's record not decrypted at B: %s", atB[0].Value)
	}
	expect(consume(sa, 10), 0, 10, "ok", "read through A")

	// 2. a copy of A's first record with another value, straight to the broker
	raw := consume(nil, 1)[0]
	forged := &kgo.Record{Topic: topic, Key: raw.Key, Headers: raw.Headers,
		Value: []byte(strings.Replace(string(raw.Value), `"id":0`, `"id":9`, 1))}
	if string(forged.Value) == string(raw.Value) {
		t.Fatalf("stored value not as expected: %s", raw.Value)
	}
	if err := direct.ProduceSync(ctx, forged).FirstErr(); err != nil {
		t.Fatal(err)
	}
	atB = consume(sb, 11)
	expect(atB, 10, 11, "bad", "tampered copy read through B")

	// 3. B revokes A's instance; the store reloads without a restart
	out := cli("keys", "trust", "remove", "--config", sb.cfgPath, "app-a")
	if !strings.Contains(out, "revoked app-a") {
		t.Fatalf("remove: %s", out)
	}
	listed := cli("keys", "trust", "list", "--config", sb.cfgPath)
	for _, line := range strings.Split(listed, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "app-a/") && f[len(f)-1] == "-" {
			t.Fatalf("B's trust list after remove shows app-a's key unrevoked:\n%s", listed)
		}
	}
	if !strings.Contains(listed, "app-a/") {
		t.Fatalf("B's trust list lacks app-a:\n%s", listed)
	}
	time.Sleep(time.Second) // fsnotify + debounce; signing times must be after the revocation
	produce(sa, 11, 5)
	atB = consume(sb, 16)
	expect(atB, 0, 10, "ok", "records from before A's revocation, read through B")
	expect(atB, 11, 16, "bad", "A's records after its revocation, read through B")
	atA := consume(sa, 16)
	expect(atA, 11, 16, "ok", "A's records after its revocation at B, read through A (A still trusts itself)")
	t.Logf("TRUST sidecars: A (keyset app-a) and B (transit %s) verify each other; tampered copy bad at B; after `keys trust remove app-a` at B: 5 new A records bad at B, 10 older ok", transitKey)
}
