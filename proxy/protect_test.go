package proxy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy"
	"github.com/kguard/kguard/test/harness"
)

// protACLs: alice (may decrypt) and bob (may not) may do everything.
const protACLs = `{"prot_test": [
 {"principal": "User:alice", "resource": "Topic", "name": "*", "operation": "All"},
 {"principal": "User:alice", "resource": "Group", "name": "*", "operation": "All"},
 {"principal": "User:alice", "resource": "TransactionalId", "name": "*", "operation": "All"},
 {"principal": "User:alice", "resource": "Cluster", "name": "kafka-cluster", "operation": "All"},
 {"principal": "User:bob", "resource": "Topic", "name": "*", "operation": "All"},
 {"principal": "User:bob", "resource": "Group", "name": "*", "operation": "All"},
 {"principal": "User:bob", "resource": "Cluster", "name": "kafka-cluster", "operation": "All"}
]}`

// protRules: the data-protection rules of the tests (docs/policy.md
// section 8).
const protRules = `{
 "pay": {"pattern": "^pay(\\.|$)",
   "fields": [{"path": "$.card", "algorithm": "AES256_GCM"}, {"path": "$.name", "algorithm": "AES256_SIV"}],
   "kek": "kguard-{tenant}-payments", "sign": true,
   "decrypt": {"principals": ["User:alice"]}, "on_denied": "ciphertext", "on_bad_signature": "mark"},
 "drop": {"topic": "paydrop", "fields": [{"path": "$.card"}], "kek": "kguard-{tenant}-payments", "sign": true,
   "decrypt": {"principals": ["User:alice"]}, "on_denied": "mask", "on_bad_signature": "drop"},
 "fail": {"topic": "payfail", "fields": [{"path": "$.card"}], "kek": "kguard-{tenant}-payments", "sign": true,
   "decrypt": {"principals": ["User:alice"]}, "on_bad_signature": "fail"},
 "subj": {"topic": "subj", "fields": [{"path": "$.name"}, {"path": "$.card"}], "kek": "kguard-{tenant}-subj",
   "subject_field": "$.account_id", "decrypt": {"principals": ["User:alice"]}}
}`

var protTopics = []string{"pay", "pay.codec", "pay.tx", "pay.sarama", "pay.tamper", "pay.vault", "pay.cold", "pay.bench", "paydrop", "payfail", "subj", "plain"}

type protEnv struct {
	*harness.Env
	prot   *crypto.Protector
	events *eventLog // the audit events kguard recorded
}

type protOpts struct {
	noProtector bool
	kms         crypto.KMS // default: a local key store
	keys        crypto.KeyOptions
	extraRule   string // one more member of the protection rules object
	batchSig    bool   // crypto.Options.BatchSignatures
}

func startProtEnv(t testing.TB, o protOpts) *protEnv {
	t.Helper()
	dir := t.TempDir()
	pdir := filepath.Join(dir, "policies")
	writePolicyDirTB(t, pdir, protACLs)
	rules := protRules
	if o.extraRule != "" {
		rules = strings.TrimSuffix(strings.TrimSpace(rules), "}") + ",\n " + o.extraRule + "\n}"
	}
	writeFileTB(t, filepath.Join(pdir, "protection", "test.json"), rules)
	eng, err := policy.NewEngine(context.Background(), policy.Config{Dirs: []string{pdir}})
	if err != nil {
		t.Fatalf("policy engine: %v", err)
	}
	creds := filepath.Join(dir, "users.yaml")
	for _, u := range []string{"alice", "bob"} {
		if err := auth.AddUser(creds, u, u+"-pw", auth.MinIterations); err != nil {
			t.Fatal(err)
		}
	}
	var p *crypto.Protector
	if !o.noProtector {
		p = newTestProtector(t, dir, o.kms, o.keys, o.batchSig)
	}
	events := &eventLog{mu: make(chan struct{}, 1)}
	env := startWithProtector(t, eng, p, creds, events)
	return &protEnv{Env: env, prot: p, events: events}
}

// startWithProtector starts a one-broker kfake cluster and kguard with the
// engine and protector (harness.Options has no protector).
func startWithProtector(t testing.TB, eng *policy.Engine, p *crypto.Protector, creds string, events *eventLog) *harness.Env {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, protTopics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ports, err := harness.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(fmt.Appendf(nil, "listen:\n  bootstrap: 127.0.0.1:%d\n  broker_port_base: %d\n  auth:\n    sasl_mechanisms: [PLAIN]\n    credentials_file: %q\nupstream:\n  bootstrap: [%s]\n",
		ports[0], ports[0]+1, creds, c.ListenAddrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	px, err := proxy.New(cfg, proxy.Options{Authorizer: eng, Protector: p, Auditor: events})
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = px.Shutdown(ctx)
	})
	return &harness.Env{Cluster: c, Proxy: px, Config: cfg}
}

// writePolicyDirTB copies the shipped Rego modules (not their tests) and
// writes the test's ACL data.
func writePolicyDirTB(t testing.TB, dir, acls string) {
	t.Helper()
	mods, err := filepath.Glob("../policies/*.rego")
	if err != nil || len(mods) == 0 {
		t.Fatalf("shipped policies: %v (%d modules)", err, len(mods))
	}
	for _, m := range mods {
		if strings.HasSuffix(m, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		writeFileTB(t, filepath.Join(dir, filepath.Base(m)), string(b))
	}
	writeFileTB(t, filepath.Join(dir, "config", "acl.json"),
		`{"acl": {"super_users": [], "allow_everyone_if_no_acl_found": false}, "kguard": {"principal": "User:kguard"}}`)
	writeFileTB(t, filepath.Join(dir, "acls", "test.json"), acls)
}

func writeFileTB(t testing.TB, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newTestProtector builds a real protector: a local Tink key store (or the
// given KMS), an Ed25519 signing keyset and a subject pepper.
func newTestProtector(t testing.TB, dir string, kms crypto.KMS, keys crypto.KeyOptions, batchSig bool) *crypto.Protector {
	t.Helper()
	if kms == nil {
		ks := filepath.Join(dir, "keystore.json")
		if err := crypto.CreateLocalKeyStore(ks); err != nil {
			t.Fatal(err)
		}
		k, err := crypto.OpenLocalKMS(ks, crypto.LocalKMSOptions{AutoCreate: true})
		if err != nil {
			t.Fatal(err)
		}
		kms = k
	}
	return harness.NewProtector(t, crypto.Options{KMS: kms,
		SubjectPepper: []byte("test pepper, 32 bytes long......"), Keys: keys, BatchSignatures: batchSig})
}

// loginRaw opens a raw connection to kguard authenticated as user.
func loginRaw(t *testing.T, e *protEnv, user string) *raw {
	t.Helper()
	r := dialRaw(t, e.Bootstrap())
	if _, ar := saslRaw(t, r, "PLAIN", []byte("\x00"+user+"\x00"+user+"-pw")); ar == nil || ar.ErrorCode != 0 {
		t.Fatalf("login as %s failed: %+v", user, ar)
	}
	return r
}

func (e *protEnv) client(t testing.TB, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(e.Bootstrap()),
		kgo.SASL(plain.Auth{User: user, Pass: user + "-pw"}.AsMechanism()),
		kgo.RetryTimeout(5 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// direct is a client of the kfake cluster itself, bypassing kguard: what
// the brokers store.
func (e *protEnv) direct(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.Cluster.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consume reads want records of topic from the start with cl's options.
func consume(t testing.TB, mk func(...kgo.Opt) *kgo.Client, topic string, want int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := mk(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: got %d of %d records before the deadline", topic, len(out), want)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("%s: fetch error: %v", topic, fe.Err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// payment is a ~1 KiB JSON record; card and name are encrypted by rule pay.
func payment(i int) []byte {
	return fmt.Appendf(nil, `{"id": %d, "card": "4111-1111-1111-%04d", "name": "Customer %d", "amount": 12.50, "account_id": "acct-%d", "tags": ["a", "b"], "note": %q}`,
		i, i, i, i%3, string(bytes.Repeat([]byte("x"), 800)))
}

func pr(topic string, i int) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: payment(i),
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-" + fmt.Sprint(i))}}}
}

func produceAll(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func header(r *kgo.Record, k string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == k {
			return h.Value, true
		}
	}
	return nil, false
}

// checkStored asserts what the broker holds: card and name are base64
// ciphertext strings, every other member byte-identical, and the record
// carries kguard.enc and kguard.sig.
func checkStored(t *testing.T, stored *kgo.Record, orig []byte) {
	t.Helper()
	var s, o map[string]json.RawMessage
	if err := json.Unmarshal(stored.Value, &s); err != nil {
		t.Fatalf("stored value is not JSON: %v", err)
	}
	if err := json.Unmarshal(orig, &o); err != nil {
		t.Fatal(err)
	}
	for k, v := range o {
		switch k {
		case "card", "name":
			var ct string
			if err := json.Unmarshal(s[k], &ct); err != nil {
				t.Fatalf("stored %s is not a JSON string: %s", k, s[k])
			}
			raw, err := base64.StdEncoding.DecodeString(ct)
			if err != nil || len(raw) < 20 || bytes.Contains(stored.Value, v) {
				t.Fatalf("stored %s is not ciphertext: %s", k, s[k])
			}
		default:
			if !bytes.Equal(s[k], v) {
				t.Fatalf("stored %s = %s, want the plaintext %s", k, s[k], v)
			}
		}
	}
	// format 2: the first record of a batch holds the batch's context,
	// the others their place in it
	_, enc := header(stored, "kguard.enc")
	_, mark := header(stored, "kg")
	if !enc && !mark {
		t.Fatal("stored record has neither kguard.enc nor kg")
	}
	if _, ok := header(stored, "kguard.sig"); !ok && !mark {
		t.Fatal("stored record has no kguard.sig header")
	}
}

// hasProtectionEvent reports whether kguard recorded a data.protection
// event of stage with the decision, error code and one reason equal to
// reason.
func hasProtectionEvent(l *eventLog, stage, decision string, code int16, reason string) bool {
	for _, ev := range l.of(audit.EventDataProtection) {
		if ev.Details["stage"] != stage || ev.Outcome.Decision != decision || ev.Outcome.ErrorCode != code {
			continue
		}
		if slices.Contains(ev.Outcome.Reasons, reason) {
			return true
		}
	}
	return false
}

// protectionReasons lists the recorded data.protection events for a
// failure message.
func protectionReasons(l *eventLog) []string {
	var out []string
	for _, ev := range l.of(audit.EventDataProtection) {
		out = append(out, fmt.Sprintf("%s %s %d %q", ev.Details["stage"], ev.Outcome.Decision, ev.Outcome.ErrorCode, ev.Outcome.Reasons))
	}
	return out
}

func sameRecord(t *testing.T, got, want *kgo.Record) {
	t.Helper()
	if !bytes.Equal(got.Value, want.Value) || !bytes.Equal(got.Key, want.Key) {
		t.Fatalf("record %s differs:\n got %s\nwant %s", want.Key, got.Value, want.Value)
	}
	// a signed record names its producer, as signed: kguard.producer last
	if n := len(got.Headers); n > 0 && got.Headers[n-1].Key == "kguard.producer" {
		var p crypto.Producer
		if err := json.Unmarshal(got.Headers[n-1].Value, &p); err != nil || !strings.HasPrefix(p.Principal, "User:") {
			t.Fatalf("record %s: kguard.producer %s", want.Key, got.Headers[n-1].Value)
		}
		got = &kgo.Record{Key: got.Key, Value: got.Value, Headers: got.Headers[:n-1]}
	}
	if len(got.Headers) != len(want.Headers) {
		t.Fatalf("record %s headers %v, want %v", want.Key, got.Headers, want.Headers)
	}
	for i := range got.Headers {
		if got.Headers[i].Key != want.Headers[i].Key || !bytes.Equal(got.Headers[i].Value, want.Headers[i].Value) {
			t.Fatalf("record %s headers %v, want %v", want.Key, got.Headers, want.Headers)
		}
	}
}

func TestDataProtection(t *testing.T) {
	e := startProtEnv(t, protOpts{})
	alice := func(o ...kgo.Opt) *kgo.Client { return e.client(t, "alice", o...) }
	bob := func(o ...kgo.Opt) *kgo.Client { return e.client(t, "bob", o...) }
	direct := func(o ...kgo.Opt) *kgo.Client { return e.direct(t, o...) }

	t.Run("RoundTripAndCodecs", func(t *testing.T) {
		codecs := []struct {
			name string
			c    kgo.CompressionCodec
		}{{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()},
			{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}}
		var want []*kgo.Record
		for ci, c := range codecs {
			cl := e.client(t, "alice", kgo.ProducerBatchCompression(c.c), kgo.ProducerLinger(0))
			var batch []*kgo.Record
			for i := range 4 {
				batch = append(batch, pr("pay.codec", ci*10+i))
				want = append(want, pr("pay.codec", ci*10+i))
			}
			produceAll(t, cl, batch...)
		}
		stored := consume(t, direct, "pay.codec", len(want))
		got := consume(t, alice, "pay.codec", len(want))
		denied := consume(t, bob, "pay.codec", len(want))
		for i := range want {
			checkStored(t, stored[i], want[i].Value)
			sameRecord(t, got[i], want[i])
			// bob is not allowed to decrypt: he reads what is stored
			if !bytes.Equal(denied[i].Value, stored[i].Value) {
				t.Fatalf("bob got %s, want the ciphertext", denied[i].Value)
			}
			if _, ok := header(denied[i], "kguard.enc"); !ok && denied[i].Offset == stored[0].Offset {
				t.Fatal("bob's record lost its kguard.enc header")
			}
		}
		// AES-SIV: the same name gives the same ciphertext; AES-GCM does not
		var a, b map[string]json.RawMessage
		_ = json.Unmarshal(stored[0].Value, &a)
		r2 := pr("pay.codec", 0)
		produceAll(t, e.client(t, "alice"), r2)
		again := consume(t, direct, "pay.codec", len(want)+1)
		_ = json.Unmarshal(again[len(want)].Value, &b)
		if !bytes.Equal(a["name"], b["name"]) || bytes.Equal(a["card"], b["card"]) {
			t.Fatalf("SIV name %s/%s should match, GCM card %s/%s should differ", a["name"], b["name"], a["card"], b["card"])
		}
	})

	t.Run("PartitionsOfOneRequest", func(t *testing.T) {
		// Four partitions of one topic in one Produce request (linger
		// gathers them): a small request is protected partition after
		// partition with one scratch, a large one (over 64 KiB) on
		// several goroutines at once. Each partition must keep its own
		// headers and values either way.
		const parts = 4
		adm := kadm.NewClient(e.direct(t))
		for _, perPart := range []int{3, 30} {
			topic := fmt.Sprintf("pay.parts%d", perPart)
			if _, err := adm.CreateTopic(context.Background(), parts, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			cl := e.client(t, "alice", kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(200*time.Millisecond),
				kgo.ProducerBatchCompression(kgo.NoCompression())) // the size decides, not the codec
			var batch []*kgo.Record
			want := map[string]*kgo.Record{}
			for i := range perPart * parts {
				r := pr(topic, 100+i)
				r.Partition = int32(i % parts)
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: "part", Value: fmt.Appendf(nil, "p%d-%d", r.Partition, i)})
				batch = append(batch, r)
				w := *r
				want[string(r.Key)] = &w
			}
			produceAll(t, cl, batch...)
			got := consume(t, alice, topic, len(batch))
			stored := consume(t, direct, topic, len(batch))
			for i, g := range got {
				w := want[string(g.Key)]
				if w == nil || want[string(stored[i].Key)] == nil {
					t.Fatalf("unexpected record %q / %q", g.Key, stored[i].Key)
				}
				sameRecord(t, g, w)
				checkStored(t, stored[i], want[string(stored[i].Key)].Value)
			}
		}
	})

	t.Run("Sarama", func(t *testing.T) {
		cfg := sarama.NewConfig()
		cfg.Version = sarama.V3_0_0_0
		cfg.Net.SASL.Enable, cfg.Net.SASL.Mechanism = true, sarama.SASLTypePlaintext
		cfg.Net.SASL.User, cfg.Net.SASL.Password = "alice", "alice-pw"
		cfg.Producer.Return.Successes = true
		cfg.Producer.Compression = sarama.CompressionSnappy
		prod, err := sarama.NewSyncProducer([]string{e.Bootstrap()}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		for i := range 3 {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "pay.sarama", Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)),
				Value: sarama.ByteEncoder(payment(i)), Headers: []sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("t-" + fmt.Sprint(i))}}}); err != nil {
				t.Fatalf("sarama produce: %v", err)
			}
		}
		stored := consume(t, direct, "pay.sarama", 3)
		got := consume(t, alice, "pay.sarama", 3)
		for i := range 3 {
			checkStored(t, stored[i], payment(i))
			sameRecord(t, got[i], pr("pay.sarama", i))
		}
	})

	t.Run("IdempotentAndTransactional", func(t *testing.T) {
		idem := e.client(t, "alice") // idempotent by default
		for i := range 3 {
			produceAll(t, idem, pr("pay.tx", i), pr("pay.tx", i+10))
		}
		tx := e.client(t, "alice", kgo.TransactionalID("tx-prot"), kgo.TransactionTimeout(10*time.Second))
		ctx := context.Background()
		for round, commit := range []bool{true, false, true} {
			if err := tx.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			produceAll(t, tx, pr("pay.tx", 100+round), pr("pay.tx", 200+round))
			if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatalf("end transaction: %v", err)
			}
		}
		want := []int{0, 10, 1, 11, 2, 12, 100, 200, 102, 202}
		got := consume(t, alice, "pay.tx", len(want), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		for i, n := range want {
			sameRecord(t, got[i], pr("pay.tx", n))
		}
		// exactly these: the aborted pair (101, 201) never shows
		if len(got) != len(want) {
			t.Fatalf("read_committed got %d records, want %d", len(got), len(want))
		}
		stored := consume(t, direct, "pay.tx", 12)
		for _, s := range stored {
			if bytes.Contains(s.Value, []byte("4111-1111")) {
				t.Fatalf("plaintext card reached the broker: %s", s.Value)
			}
		}
	})

	t.Run("InvalidRecordsRefused", func(t *testing.T) {
		cl := e.client(t, "alice", kgo.RecordRetries(0))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cases := []struct {
			topic string
			rec   *kgo.Record
		}{
			{"pay", &kgo.Record{Value: []byte("not json")}},
			{"pay", &kgo.Record{Value: []byte(`{"card": 1, "card": 2}`)}},
			{"pay", &kgo.Record{Value: payment(1), Headers: []kgo.RecordHeader{{Key: "kguard.sig", Value: []byte{1}}}}},
			// a forged kguard header is refused on an unprotected topic too
			{"plain", &kgo.Record{Value: []byte("x"), Headers: []kgo.RecordHeader{{Key: "kguard.enc", Value: []byte{1}}}}},
		}
		for _, c := range cases {
			c.rec.Topic = c.topic
			err := cl.ProduceSync(ctx, c.rec).FirstErr()
			if !errors.Is(err, kerr.InvalidRecord) {
				t.Fatalf("%s %q: want INVALID_RECORD, got %v", c.topic, c.rec.Value, err)
			}
		}
		// compressed, forged header hidden inside: still refused
		cz := e.client(t, "alice", kgo.RecordRetries(0), kgo.ProducerBatchCompression(kgo.GzipCompression()))
		err := cz.ProduceSync(ctx, &kgo.Record{Topic: "plain", Value: []byte("y"), Headers: []kgo.RecordHeader{{Key: "kguard.sig", Value: []byte{2}}}}).FirstErr()
		if !errors.Is(err, kerr.InvalidRecord) {
			t.Fatalf("gzip forged header: want INVALID_RECORD, got %v", err)
		}
		// an unprotected topic passes records through untouched
		produceAll(t, cl, &kgo.Record{Topic: "plain", Value: []byte("plain value"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}})
		stored := consume(t, direct, "plain", 1)
		if len(stored) != 1 || string(stored[0].Value) != "plain value" || len(stored[0].Headers) != 1 {
			t.Fatalf("plain topic: %+v", stored)
		}
		// nothing was written to pay by the refused produces
		if n := len(consume(t, direct, "pay", 0, kgo.FetchMaxWait(200*time.Millisecond))); n != 0 {
			t.Fatalf("%d records reached pay", n)
		}
		// every refusal is in the audit trail: who, which partition, why
		refusals := map[string]int{}
		for _, ev := range e.events.of(audit.EventDataProtection) {
			if ev.Details["stage"] != "produce" || ev.Outcome.Decision != audit.DecisionDeny || ev.Outcome.ErrorCode != 87 ||
				ev.Who.Principal != "User:alice" || len(ev.Outcome.Reasons) != 1 || ev.What.APIName != "Produce" {
				t.Fatalf("produce refusal event: %+v %+v %+v", ev.Who, ev.What, ev.Outcome)
			}
			refusals[ev.What.ResourceName]++
			if ev.What.ResourceName == "pay" && !strings.HasPrefix(ev.Outcome.Reasons[0], "pay/0: refused (87): kguard: ") {
				t.Fatalf("reason %q", ev.Outcome.Reasons[0])
			}
		}
		if refusals["pay"] != 3 || refusals["plain"] != 2 {
			t.Fatalf("refusal events per topic %v, want pay 3, plain 2", refusals)
		}
	})

	t.Run("MixedRequestPartitionErrors", func(t *testing.T) {
		// one request: a good protected topic, a bad protected record and
		// an unprotected topic; each partition gets its own answer
		req := produceTo(9, -1, nil, []string{string(payment(7))}, "pay", "plain")
		bad := produceTo(9, -1, nil, []string{"oops"}, "payfail")
		req.Topics = append(req.Topics, bad.Topics...)
		resp := loginRaw(t, e, "alice").roundTrip(req).(*kmsg.ProduceResponse)
		codes := map[string]int16{}
		for _, tp := range resp.Topics {
			codes[tp.Topic] = tp.Partitions[0].ErrorCode
		}
		if codes["pay"] != 0 || codes["plain"] != 0 || codes["payfail"] != 87 || len(resp.Topics) != 3 || resp.Topics[2].Topic != "payfail" {
			t.Fatalf("codes %v (order %v)", codes, resp.Topics)
		}
		if m := resp.Topics[2].Partitions[0].ErrorMessage; m == nil || *m == "" {
			t.Fatal("refused partition has no message")
		}
	})

	t.Run("MovedCiphertextAndTampering", func(t *testing.T) {
		cl := e.client(t, "alice")
		for _, topic := range []string{"pay.tamper", "pay.vault", "pay.bench", "paydrop", "payfail"} {
			produceAll(t, cl, pr(topic, 1), pr(topic, 2))
		}
		raw := e.direct(t)
		stored := consume(t, direct, "pay.tamper", 2)
		// record 2 with record 1's card ciphertext, headers of record 2
		var s1, s2 map[string]json.RawMessage
		_ = json.Unmarshal(stored[0].Value, &s1)
		_ = json.Unmarshal(stored[1].Value, &s2)
		moved := bytes.Replace(stored[1].Value, s2["card"], s1["card"], 1)
		tampered := bytes.Replace(stored[0].Value, []byte(`"amount": 12.50`), []byte(`"amount": 99.50`), 1)
		if bytes.Equal(moved, stored[1].Value) || bytes.Equal(tampered, stored[0].Value) {
			t.Fatal("test setup: nothing replaced")
		}
		forge := func(topic string, v []byte, from *kgo.Record) *kgo.Record {
			return &kgo.Record{Topic: topic, Key: from.Key, Value: v, Headers: slices.Clone(from.Headers)}
		}
		produceAll(t, raw, forge("pay.tamper", moved, stored[1]), forge("pay.tamper", tampered, stored[0]),
			&kgo.Record{Topic: "pay.tamper", Value: payment(3)}) // bypassing kguard: no signature
		got := consume(t, alice, "pay.tamper", 5)
		if v, _ := header(got[0], "kguard.verify"); v != nil || !bytes.Equal(got[0].Value, payment(1)) {
			t.Fatalf("genuine record: verify=%s value %s", v, got[0].Value)
		}
		if v, _ := header(got[2], "kguard.verify"); string(v) != "bad" || !bytes.Equal(got[2].Value, moved) {
			t.Fatalf("moved ciphertext: verify=%q, decrypted=%v", v, !bytes.Equal(got[2].Value, moved))
		}
		if v, _ := header(got[3], "kguard.verify"); string(v) != "bad" {
			t.Fatalf("tampered record: verify=%q", v)
		}
		// record 4 is in a batch with forged format 2 headers, but has none:
		// unsigned
		if v, _ := header(got[4], "kguard.verify"); string(v) != "missing" {
			t.Fatalf("unsigned record: verify=%q", v)
		}
		// the audit trail names them: two bad signatures (one of them the
		// moved ciphertext, which does not decrypt either) and one
		// missing; marked, so the decision is allow; with their offsets
		if !hasProtectionEvent(e.events, "fetch", audit.DecisionAllow, 0, "pay.tamper/0: 2 with a bad signature (mark), 1 without a signature (mark), 2 could not be decrypted (delivered as stored); offsets 2,3,4"+
			"; signature: format 2 batch without its context (first record); no kguard.sig (signature required)") {
			t.Fatalf("no data.protection event for the tampered records: %+v", protectionReasons(e.events))
		}
		// even without the signature check the moved ciphertext fails:
		// its AAD names another record's nonce
		rec := &crypto.Record{Topic: "pay.tamper", Key: stored[1].Key, Value: moved}
		for _, h := range stored[1].Headers {
			rec.Headers = append(rec.Headers, crypto.Header{Key: h.Key, Value: h.Value})
		}
		res, err := e.prot.UnprotectBatch(context.Background(), []*crypto.Record{rec}, crypto.FetchOptions{Decrypt: true})
		if err != nil || res[0].Err == nil || !errors.Is(res[0].Err, crypto.ErrIntegrity) {
			t.Fatalf("moved ciphertext decrypted: %v / %+v", err, res[0])
		}

		// drop: the tampered record is left out, the others keep their offsets
		sd := consume(t, direct, "paydrop", 2)
		produceAll(t, raw, forge("paydrop", bytes.Replace(sd[0].Value, []byte(`"amount": 12.50`), []byte(`"amount": 1.50`), 1), sd[0]))
		produceAll(t, cl, pr("paydrop", 4))
		gd := consume(t, alice, "paydrop", 3)
		if len(gd) != 3 || gd[2].Offset != 3 || !bytes.Equal(gd[2].Value, payment(4)) || gd[1].Offset != 1 {
			t.Fatalf("drop: got offsets %d,%d,%d", gd[0].Offset, gd[1].Offset, gd[2].Offset)
		}
		if !hasProtectionEvent(e.events, "fetch", audit.DecisionDeny, 0, `paydrop/0: 1 with a bad signature (drop); offsets 2; signature: batch of 2 records holds 1 (incomplete or not as produced); claimed producer "User:alice" (tenant "", client "kgo")`) {
			t.Fatalf("no data.protection event for the dropped record: %+v", protectionReasons(e.events))
		}
		// bob gets the mask on paydrop
		bd := consume(t, bob, "paydrop", 1)
		var m map[string]json.RawMessage
		_ = json.Unmarshal(bd[0].Value, &m)
		if string(m["card"]) != `"****"` {
			t.Fatalf("mask: card %s", m["card"])
		}
		if _, ok := header(bd[0], "kguard.enc"); ok {
			t.Fatal("mask: kguard.enc left in place")
		}

		// fail: the partition answers CORRUPT_MESSAGE once it reaches the
		// tampered record
		sf := consume(t, direct, "payfail", 2)
		produceAll(t, raw, forge("payfail", bytes.Replace(sf[1].Value, []byte(`"amount": 12.50`), []byte(`"amount": 2.50`), 1), sf[1]))
		fp := loginRaw(t, e, "alice").roundTrip(fetchFrom(12, nil, "payfail")).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if fp.ErrorCode != 2 || len(fp.RecordBatches) != 0 {
			t.Fatalf("fail: code %d, %d record bytes", fp.ErrorCode, len(fp.RecordBatches))
		}
		if !hasProtectionEvent(e.events, "fetch", audit.DecisionDeny, 2, "payfail/0: partition withheld (2); signature: crypto: integrity check failed: record 0: signature bad: format 2 batch without its context (first record)") {
			t.Fatalf("no data.protection event for the withheld partition: %+v", protectionReasons(e.events))
		}
	})

	t.Run("ShredOneSubject", func(t *testing.T) {
		cl := e.client(t, "alice")
		var recs []*kgo.Record
		for i := range 6 { // subjects acct-0, acct-1, acct-2
			recs = append(recs, pr("subj", i))
		}
		produceAll(t, cl, recs...)
		before := consume(t, alice, "subj", 6)
		for i := range before {
			sameRecord(t, before[i], pr("subj", i))
		}
		if err := e.prot.Shred(context.Background(), "acct-1"); err != nil {
			t.Fatal(err)
		}
		after := consume(t, alice, "subj", 6)
		for i, r := range after {
			if i%3 == 1 {
				var m map[string]json.RawMessage
				_ = json.Unmarshal(r.Value, &m)
				if bytes.Contains(r.Value, []byte("Customer")) || bytes.Contains(r.Value, []byte("4111")) {
					t.Fatalf("shredded subject still readable: %s", m["name"])
				}
				if !bytes.Contains(r.Value, []byte(`"account_id": "acct-1"`)) {
					t.Fatal("unencrypted fields of the shredded subject should stay")
				}
				continue
			}
			sameRecord(t, r, pr("subj", i))
		}
	})
}

// TestDataProtectionFailsClosedWithoutProtector: the policy protects the
// topic but kguard has no key service: produce is refused with a retriable
// error, nothing reaches the broker in plaintext, unprotected topics work.
func TestDataProtectionFailsClosedWithoutProtector(t *testing.T) {
	e := startProtEnv(t, protOpts{noProtector: true})
	resp := loginRaw(t, e, "alice").roundTrip(produceTo(9, -1, nil, []string{string(payment(1))}, "pay", "plain")).(*kmsg.ProduceResponse)
	p0 := resp.Topics[0].Partitions[0]
	if p0.ErrorCode != 56 || !kerr.IsRetriable(kerr.ErrorForCode(p0.ErrorCode)) || p0.ErrorMessage == nil {
		t.Fatalf("pay: code %d message %v", p0.ErrorCode, p0.ErrorMessage)
	}
	if c := resp.Topics[1].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("plain: code %d", c)
	}
	direct := func(o ...kgo.Opt) *kgo.Client { return e.direct(t, o...) }
	if n := len(consume(t, direct, "pay", 0, kgo.FetchMaxWait(200*time.Millisecond))); n != 0 {
		t.Fatalf("%d records reached pay", n)
	}
	// a produce through a real client retries, then gives up with the error
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := e.client(t, "alice").ProduceSync(ctx, pr("pay", 2)).FirstErr()
	if err == nil {
		t.Fatal("produce to a protected topic succeeded without a protector")
	}
}
