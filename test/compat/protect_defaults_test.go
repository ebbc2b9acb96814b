package compat_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/internal/testenv"
)

// defaultsRecords is how many 1 KiB JSON records each client produces.
const defaultsRecords = 1000

// TestProtectionDefaultBatches: kcat (librdkafka), the Java client
// (ProducerPerformance), confluent-kafka and franz-go, each with its
// DEFAULT producer settings (batch sizes up to about 1 MB for the
// librdkafka and franz-go ones, 16 KiB for Java; no compression), produce
// 1 KiB JSON records through kguard into topics of the real Kafka 4
// cluster (cleanup.policy=delete, max.message.bytes as the broker's
// default) whose rule encrypts two fields and signs. Nothing is refused;
// read straight from the brokers, kguard's headers cost at most 40 bytes
// per record on average (format 2: the batch context in the first record
// of each batch); the allowed reader gets the produced bytes back and the
// producing principal in kguard.producer.
func TestProtectionDefaultBatches(t *testing.T) {
	bao := testenv.NeedOpenBao(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	prot, rule := transitProtection(ctx, t, bao, "dflt", crypto.Options{})
	s := startStackWith(t, stackOpts{files: rule, protector: prot})

	clients := []struct {
		name    string
		produce func(ctx context.Context, t *testing.T, s *stack, topic, payloads string) error
	}{
		{"kcat (librdkafka)", produceKcatDefaults},
		{"ProducerPerformance (Java)", producePerfDefaults},
		{"confluent-kafka", produceConfluentDefaults},
		{"franz-go", produceFranzDefaults},
	}
	adm := s.admin(t)
	var (
		mu    sync.Mutex
		lines []string
		wg    sync.WaitGroup
	)
	for i, c := range clients {
		topic := topicName(t, "dflt", c.name)
		if res, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil || res.Err != nil {
			t.Fatalf("creating %s: %v %v", topic, err, res.Err)
		}
		payloads, want := writeKiloPayloads(t, dir, fmt.Sprintf("d%d", i), defaultsRecords)
		wg.Add(1)
		go func() {
			defer wg.Done()
			line, err := checkDefaultsClient(ctx, s, c.produce, topic, payloads, want)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				line = "FAIL: " + err.Error()
			}
			mu.Lock()
			lines = append(lines, fmt.Sprintf("PROTECTION %-26s | %s", c.name, line))
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("PROTECTION real Kafka 4 cluster, default producer settings, %d records of 1 KiB JSON, $.card AES-GCM + $.name AES-SIV, signed (codecs as stored: kguard LZ4-compresses an uncompressed batch only when protection would push it over max.message.bytes):\n%s",
		defaultsRecords, strings.Join(lines, "\n"))
}

// writeKiloPayloads writes n JSON records of about 1 KiB.
func writeKiloPayloads(t *testing.T, dir, tag string, n int) (string, map[string][]byte) {
	t.Helper()
	want := map[string][]byte{}
	var b bytes.Buffer
	for i := range n {
		id := fmt.Sprintf("%s-%d", tag, i)
		v := fmt.Appendf(nil, `{"id":%q,"card":"4111-1111-1111-%04d","name":"Customer %s","amount":%d.%02d,"account_id":"acct-%d","tags":["a","b"],"note":%q}`,
			id, i%10000, id, 10+i, i%100, i%7, strings.Repeat("n", 850))
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

func checkDefaultsClient(ctx context.Context, s *stack, produce func(context.Context, *testing.T, *stack, string, string) error, topic, payloads string, want map[string][]byte) (string, error) {
	start := time.Now()
	if err := produce(ctx, nil, s, topic, payloads); err != nil {
		return "", fmt.Errorf("produce (refused?): %w", err)
	}
	took := time.Since(start)
	stored, codecs, err := readAll(ctx, topic, defaultsRecords, kgo.SeedBrokers(s.kafka.Plaintext...))
	if err != nil {
		return "", fmt.Errorf("reading the broker directly: %w", err)
	}
	hdr, grow, heads := 0, 0, 0
	for _, r := range stored {
		for _, h := range r.Headers {
			switch h.Key {
			case crypto.EncHeader, crypto.SigHeader, crypto.MarkHeader:
				hdr += len(binary.AppendVarint(nil, int64(len(h.Key)))) + len(h.Key) + len(binary.AppendVarint(nil, int64(len(h.Value)))) + len(h.Value)
				if h.Key == crypto.EncHeader {
					heads++
				}
			}
		}
		if err := checkCiphertext(r, want); err != nil {
			return "", fmt.Errorf("stored record %d: %w", r.Offset, err)
		}
		grow += len(r.Value) - len(want[recordID(r.Value)])
	}
	per := float64(hdr) / float64(len(stored))
	var cs []string
	for c, n := range codecs {
		cs = append(cs, fmt.Sprintf("%d %s", n, codecNames[c]))
	}
	line := fmt.Sprintf("%d records in %v, %d batches (%s): kguard headers %.1f B/record, value growth %.1f B/record",
		len(stored), took.Round(time.Millisecond), heads, strings.Join(cs, ", "), per, float64(grow)/float64(len(stored)))
	if per > 40 {
		return line, fmt.Errorf("%.1f B of kguard headers per record, want <= 40 (%s)", per, line)
	}
	got, _, err := readAll(ctx, topic, defaultsRecords, s.kgoOpts()...)
	if err != nil {
		return line, fmt.Errorf("reading through kguard: %w", err)
	}
	for _, r := range got {
		if w := want[recordID(r.Value)]; !bytes.Equal(r.Value, w) {
			return line, fmt.Errorf("User:%s got %.80q at %d, not a produced record", principalUser, r.Value, r.Offset)
		}
		var p crypto.Producer
		pv, n := headerValue(r, crypto.ProducerHeader)
		if n != 1 || json.Unmarshal(pv, &p) != nil || p.Principal != "User:"+principalUser {
			return line, fmt.Errorf("record %d: kguard.producer %q", r.Offset, pv)
		}
	}
	return line, nil
}

func headerValue(r *kgo.Record, name string) ([]byte, int) {
	var v []byte
	n := 0
	for _, h := range r.Headers {
		if h.Key == name {
			v, n = h.Value, n+1
		}
	}
	return v, n
}

// produceKcatDefaults: kcat with librdkafka's defaults (only the
// connection configured), one record per line.
func produceKcatDefaults(ctx context.Context, _ *testing.T, s *stack, topic, payloads string) error {
	if _, err := exec.LookPath("kcat"); err != nil {
		return fmt.Errorf("kcat not installed (test/deps.sh): %w", err)
	}
	conf := filepath.Join(filepath.Dir(payloads), "kcat-"+topic+".conf")
	body := fmt.Sprintf("bootstrap.servers=%s\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanisms=PLAIN\nsasl.username=%s\nsasl.password=%s\n",
		s.env.Bootstrap(), s.user, s.password)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return err
	}
	return runTool(ctx, s, "kcat", "-F", conf, "-P", "-t", topic, "-l", payloads)
}

// producePerfDefaults: Kafka's ProducerPerformance with the Java client's
// defaults (batch.size 16384, linger.ms 5, no compression).
func producePerfDefaults(ctx context.Context, _ *testing.T, s *stack, topic, payloads string) error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("java not installed (test/deps.sh): %w", err)
	}
	return runTool(ctx, s, "bash", "test/compat/perf.sh", "producer", "--bootstrap", s.env.Bootstrap(), "--topic", topic,
		"--records", fmt.Sprint(defaultsRecords), "--payload-file", payloads,
		"--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "SCRAM-SHA-512", "--username", s.user)
}

// produceConfluentDefaults: confluent-kafka with librdkafka's defaults.
func produceConfluentDefaults(ctx context.Context, _ *testing.T, s *stack, topic, payloads string) error {
	if _, err := exec.LookPath("python3"); err != nil {
		return fmt.Errorf("python3 not installed: %w", err)
	}
	return runTool(ctx, s, "python3", "test/compat/python/protect_confluent.py", "--defaults", "--bootstrap", s.env.Bootstrap(),
		"--topic", topic, "--payload-file", payloads, "--username", s.user)
}

// produceFranzDefaults: franz-go with its defaults (1 MB batches, no
// compression).
func produceFranzDefaults(ctx context.Context, _ *testing.T, s *stack, topic, payloads string) error {
	b, err := os.ReadFile(payloads)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(s.kgoOpts()...)
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
