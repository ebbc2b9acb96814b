package compat_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// protectRecords is how many JSON records each client produces.
const protectRecords = 200

// readerUser may read the encrypted topics but is not among the principals
// the rule lets decrypt.
const readerUser = "compat-reader"

// protectedClient is one client that produces JSON through kguard into a
// topic whose rule encrypts $.card (AES-GCM) and $.name (AES-SIV) and signs
// every batch.
type protectedClient struct {
	name  string
	codec uint8 // the compression the client uses (kgo.FetchBatchMetrics codes)
	// produce writes the lines of payloads to topic through kguard; aborted
	// lines (if the client is transactional) go to an aborted transaction.
	produce func(ctx context.Context, t *testing.T, s *stack, topic, payloads, aborted string) error
	// random: the client picks values from the file at random (Kafka's
	// ProducerPerformance), so values repeat and the count is what matters.
	random bool
	// transactional: the topic also holds transaction markers.
	transactional bool
}

var codecNames = map[uint8]string{0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

// TestDataProtectionRealClients: four clients nobody here wrote produce JSON
// records through kguard, each with another codec (kcat/librdkafka zstd,
// Kafka's ProducerPerformance lz4, confluent-kafka transactional gzip,
// franz-go snappy), into topics of the real Apache Kafka cluster whose
// policy encrypts two fields with data keys wrapped by a real OpenBao
// transit engine, and signs every batch. Reading the topics straight from
// the brokers shows ciphertext in those two fields, every other member byte
// for byte as produced, kguard's headers, and batches in the client's codec;
// User:compat (allowed to decrypt) reads the produced bytes back through
// kguard, identical; User:compat-reader (not allowed) reads the stored
// ciphertext; records of the aborted transaction stay invisible to
// read_committed consumers.
func TestDataProtectionRealClients(t *testing.T) {
	bao := testenv.NeedOpenBao(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()

	prot, rule := transitProtection(ctx, t, bao, "enc", crypto.Options{BatchSignatures: true})
	s := startStackWith(t, stackOpts{
		acls: append(harness.GrantPrefix("User:"+readerUser, namePrefix), harness.ACL{
			Principal: "User:" + principalUser, Host: "*", Resource: "TransactionalId", Pattern: "PREFIXED",
			Name: namePrefix, Operation: "All", Permission: "ALLOW"}),
		files:     rule,
		users:     []string{readerUser},
		protector: prot,
	})

	clients := []protectedClient{
		{name: "kcat (librdkafka)", codec: 4, produce: produceKcat},
		{name: "ProducerPerformance (Java)", codec: 3, produce: producePerfTool, random: true},
		{name: "confluent-kafka, transactional", codec: 1, produce: produceConfluentTx, transactional: true},
		{name: "franz-go", codec: 2, produce: produceFranz},
	}
	adm := s.admin(t)
	var (
		mu    sync.Mutex
		lines []string
		wg    sync.WaitGroup
	)
	for i, c := range clients {
		topic := topicName(t, "enc", c.name)
		if res, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil || res.Err != nil {
			t.Fatalf("creating %s: %v %v", topic, err, res.Err)
		}
		payloads, want := writePayloads(t, dir, fmt.Sprintf("c%d", i), protectRecords)
		aborted, _ := writePayloads(t, dir, fmt.Sprintf("c%d-abort", i), 5)
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := checkProtectedClient(ctx, t, s, c, topic, payloads, aborted, want)
			mu.Lock()
			lines = append(lines, line)
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("data protection through kguard, real Kafka 4 cluster, OpenBao transit:\n%-32s | %-6s | %s\n%s",
		"client", "codec", "result", strings.Join(lines, "\n"))
}

// transitProtection is a protector over OpenBao transit (o's KMS set) and
// the protection rule of the topics named compat-<kind>-*: $.card
// AES-GCM, $.name AES-SIV, signed, User:compat may decrypt, others read
// ciphertext, bad signatures marked; as the policy file to add.
func transitProtection(ctx context.Context, t *testing.T, bao testenv.OpenBao, kind string, o crypto.Options) (*crypto.Protector, map[string]string) {
	t.Helper()
	kms, err := crypto.NewTransitKMS(ctx, crypto.TransitConfig{Address: bao.Addr, Token: bao.Token, CreateKeys: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("OpenBao transit: %v", err)
	}
	t.Cleanup(func() { _ = kms.Close() })
	o.KMS = kms
	prot := harness.NewProtector(t, o)
	kek := "kguard-compat-" + kind + "-" + randHex(t, 4)
	rule := fmt.Sprintf(`{"compat-%s": {"prefix": "%s%s-", "priority": 40,
  "fields": [{"path": "$.card", "algorithm": "AES256_GCM"}, {"path": "$.name", "algorithm": "AES256_SIV"}],
  "kek": %q, "sign": true, "decrypt": {"principals": ["User:%s"]},
  "on_denied": "ciphertext", "on_bad_signature": "mark"}}`, kind, namePrefix, kind, kek, principalUser)
	return prot, map[string]string{"protection/compat.json": rule}
}

// writePayloads writes n JSON records, one per line, and returns the file
// and the records by id.
func writePayloads(t *testing.T, dir, tag string, n int) (string, map[string][]byte) {
	t.Helper()
	want := map[string][]byte{}
	var b bytes.Buffer
	for i := range n {
		id := fmt.Sprintf("%s-%d", tag, i)
		v := fmt.Appendf(nil, `{"id":%q,"card":"4111-1111-1111-%04d","name":"Customer %s","amount":%d.%02d,"account_id":"acct-%d","tags":["a","b"],"note":%q}`,
			id, i, id, 10+i, i%100, i%7, strings.Repeat("n", 200+i%50))
		want[id] = v
		b.Write(v)
		b.WriteByte('\n')
	}
	p := filepath.Join(dir, tag+".jsonl")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, want
}

// checkProtectedClient produces with c and checks the three views of the
// topic; it returns the client's table line (and fails t on a mismatch).
func checkProtectedClient(ctx context.Context, t *testing.T, s *stack, c protectedClient, topic, payloads, aborted string, want map[string][]byte) string {
	fail := func(format string, args ...any) string {
		msg := fmt.Sprintf(format, args...)
		t.Errorf("%s: %s", c.name, msg)
		return fmt.Sprintf("%-32s | %-6s | FAIL: %s", c.name, codecNames[c.codec], msg)
	}
	if err := c.produce(ctx, t, s, topic, payloads, aborted); err != nil {
		return fail("produce: %v", err)
	}
	n := protectRecords
	stored, codecs, err := readAll(ctx, topic, n, kgo.SeedBrokers(s.kafka.Plaintext...))
	if err != nil {
		return fail("reading the broker directly: %v", err)
	}
	if c.transactional {
		// commit and abort markers: one uncompressed control batch per
		// partition and transaction (two transactions, three partitions)
		if codecs[0] > 6 {
			return fail("%d uncompressed batches, at most 6 transaction markers expected", codecs[0])
		}
		delete(codecs, 0)
	}
	if codecs[c.codec] == 0 {
		return fail("no stored batch is %s", codecNames[c.codec])
	}
	for cd, cnt := range codecs {
		if cd != c.codec {
			return fail("%d stored batches are %s, the client wrote %s", cnt, codecNames[cd], codecNames[c.codec])
		}
	}
	byOffset := map[string][]byte{}
	for _, r := range stored {
		if err := checkCiphertext(r, want); err != nil {
			return fail("stored record %d/%d: %v", r.Partition, r.Offset, err)
		}
		byOffset[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = r.Value
	}
	// User:compat may decrypt: the produced bytes, identical, no kguard.* headers.
	got, _, err := readAll(ctx, topic, n, s.kgoOpts()...)
	if err != nil {
		return fail("reading through kguard as User:%s: %v", principalUser, err)
	}
	ids := map[string]bool{}
	for _, r := range got {
		id := recordID(r.Value)
		if w, ok := want[id]; !ok || !bytes.Equal(r.Value, w) {
			return fail("User:%s got %.80q at %d/%d, not a produced record", principalUser, r.Value, r.Partition, r.Offset)
		}
		for _, h := range r.Headers {
			if strings.HasPrefix(h.Key, "kguard.") && h.Key != crypto.ProducerHeader {
				return fail("User:%s got header %s", principalUser, h.Key)
			}
		}
		ids[id] = true
	}
	if !c.random && len(ids) != len(want) {
		return fail("User:%s read %d distinct records, %d were produced", principalUser, len(ids), len(want))
	}
	// User:compat-reader may read but not decrypt: the stored bytes.
	reader, _, err := readAll(ctx, topic, n, kgo.SeedBrokers(s.env.Bootstrap()),
		kgo.SASL(scram.Auth{User: readerUser, Pass: s.passwords[readerUser]}.AsSha512Mechanism()))
	if err != nil {
		return fail("reading through kguard as User:%s: %v", readerUser, err)
	}
	for _, r := range reader {
		if v := byOffset[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]; !bytes.Equal(r.Value, v) {
			return fail("User:%s got %.80q at %d/%d, not the stored ciphertext", readerUser, r.Value, r.Partition, r.Offset)
		}
	}
	return fmt.Sprintf("%-32s | %-6s | %d records: stored with card and name encrypted, other members and codec as produced; User:%s reads them back byte for byte, User:%s reads the ciphertext",
		c.name, codecNames[c.codec], len(stored), principalUser, readerUser)
}

// checkCiphertext checks a stored record: $.card and $.name are base64
// ciphertext strings not containing the plaintext, every other member is
// byte for byte the produced one, and kguard.enc and kguard.sig (or kg) are there.
func checkCiphertext(r *kgo.Record, want map[string][]byte) error {
	id := recordID(r.Value)
	orig, ok := want[id]
	if !ok {
		return fmt.Errorf("id %q was not produced (value %.80q)", id, r.Value)
	}
	var sm, om map[string]json.RawMessage
	if err := json.Unmarshal(r.Value, &sm); err != nil {
		return fmt.Errorf("stored value is not JSON: %v", err)
	}
	if err := json.Unmarshal(orig, &om); err != nil {
		return err
	}
	if len(sm) != len(om) {
		return fmt.Errorf("%d members stored, %d produced", len(sm), len(om))
	}
	for k, v := range om {
		switch k {
		case "card", "name":
			var ct string
			if err := json.Unmarshal(sm[k], &ct); err != nil {
				return fmt.Errorf("stored %s is not a string: %s", k, sm[k])
			}
			raw, err := base64.StdEncoding.DecodeString(ct)
			if err != nil || len(raw) < 20 || bytes.Contains(r.Value, bytes.Trim(v, `"`)) {
				return fmt.Errorf("stored %s is not ciphertext: %s", k, sm[k])
			}
		default:
			if !bytes.Equal(sm[k], v) {
				return fmt.Errorf("stored %s = %s, produced %s", k, sm[k], v)
			}
		}
	}
	// format 2: the first record of a batch holds its context and
	// signature, the others their place in it (kg)
	var enc, sig, mark bool
	for _, h := range r.Headers {
		enc = enc || h.Key == crypto.EncHeader
		sig = sig || h.Key == crypto.SigHeader
		mark = mark || h.Key == crypto.MarkHeader
	}
	if !mark && (!enc || !sig) {
		return fmt.Errorf("kguard.enc %v, kguard.sig %v, kg %v", enc, sig, mark)
	}
	return nil
}

func recordID(v []byte) string {
	var m struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(v, &m)
	return m.ID
}

// codecHook counts fetched batches by compression codec.
type codecHook struct {
	mu     sync.Mutex
	codecs map[uint8]int
}

func (h *codecHook) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	h.mu.Lock()
	h.codecs[m.CompressionType]++
	h.mu.Unlock()
}

// readAll reads topic from the start, read_committed, until n records came,
// then a little longer to catch any record too many.
func readAll(ctx context.Context, topic string, n int, opts ...kgo.Opt) ([]*kgo.Record, map[uint8]int, error) {
	h := &codecHook{codecs: map[uint8]int{}}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.WithHooks(h), kgo.FetchMaxWait(500*time.Millisecond))...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	extra := time.Time{}
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) && !errors.Is(e.Err, context.Canceled) {
				return nil, nil, fmt.Errorf("%s/%d: %w", e.Topic, e.Partition, e.Err)
			}
		}
		out = append(out, fs.Records()...)
		switch {
		case len(out) > n:
			return nil, nil, fmt.Errorf("%d records, %d expected (an aborted record visible?)", len(out), n)
		case len(out) == n && extra.IsZero():
			extra = time.Now().Add(time.Second)
		case !extra.IsZero() && time.Now().After(extra):
			h.mu.Lock()
			defer h.mu.Unlock()
			return out, h.codecs, nil
		case time.Now().After(deadline):
			return nil, nil, fmt.Errorf("%d of %d records after 60s", len(out), n)
		}
	}
}

// produceKcat: kcat (Debian's librdkafka) as a PLAIN user, zstd,
// idempotent, acks=all, one record per line of the file.
func produceKcat(ctx context.Context, t *testing.T, s *stack, topic, payloads, _ string) error {
	if _, err := exec.LookPath("kcat"); err != nil {
		return fmt.Errorf("kcat not installed (test/deps.sh): %w", err)
	}
	conf := filepath.Join(t.TempDir(), "kcat.conf")
	body := fmt.Sprintf("bootstrap.servers=%s\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanisms=PLAIN\nsasl.username=%s\nsasl.password=%s\n",
		s.env.Bootstrap(), s.user, s.password)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return err
	}
	return runTool(ctx, s, "kcat", "-F", conf, "-P", "-t", topic, "-z", "zstd",
		"-X", "enable.idempotence=true", "-X", "acks=all", "-l", payloads)
}

// producePerfTool: Kafka's ProducerPerformance (the Java client), SCRAM,
// lz4, idempotent, values picked from the file.
func producePerfTool(ctx context.Context, _ *testing.T, s *stack, topic, payloads, _ string) error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("java not installed (test/deps.sh): %w", err)
	}
	return runTool(ctx, s, "bash", "test/compat/perf.sh", "producer", "--bootstrap", s.env.Bootstrap(), "--topic", topic,
		"--records", fmt.Sprint(protectRecords), "--payload-file", payloads,
		"--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "SCRAM-SHA-512", "--username", s.user,
		"--prop", "compression.type=lz4", "--prop", "enable.idempotence=true")
}

// produceConfluentTx: confluent-kafka (Python), SCRAM, gzip, one committed
// and one aborted transaction.
func produceConfluentTx(ctx context.Context, _ *testing.T, s *stack, topic, payloads, aborted string) error {
	if _, err := exec.LookPath("python3"); err != nil {
		return fmt.Errorf("python3 not installed: %w", err)
	}
	return runTool(ctx, s, "python3", "test/compat/python/protect_confluent.py", "--bootstrap", s.env.Bootstrap(),
		"--topic", topic, "--payload-file", payloads, "--abort-file", aborted, "--username", s.user)
}

// produceFranz: franz-go, SCRAM, snappy, idempotent.
func produceFranz(ctx context.Context, _ *testing.T, s *stack, topic, payloads, _ string) error {
	b, err := os.ReadFile(payloads)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(s.kgoOpts(kgo.ProducerBatchCompression(kgo.SnappyCompression()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		recs = append(recs, &kgo.Record{Topic: topic, Value: l})
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// runTool runs an external client from the repository root with the test
// user's password in the environment.
func runTool(ctx context.Context, s *stack, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), "KGUARD_COMPAT_PASSWORD="+s.password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", name, err, tail(out, 2048))
	}
	return nil
}
