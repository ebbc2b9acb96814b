package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// TestDemoDefaultProducers: on `make run`'s setup (kguard demo: kfake
// and the demo policy, whose topic payments has $.card encrypted and every
// record signed), kcat and franz-go with their default producer settings
// (about 1 MB uncompressed batches) produce 2,000 records of about 1 KiB
// JSON each: nothing is refused (the first report), and read
// straight from the in-process Kafka the records carry at most 40 bytes of
// kguard headers on average.
func TestDemoDefaultProducers(t *testing.T) {
	ports, err := harness.FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- cmdDemo(ctx, []string{"-bootstrap", fmt.Sprintf("127.0.0.1:%d", ports[0]), "-broker-port-base", fmt.Sprint(ports[1]),
			"-tenants-bootstrap", fmt.Sprintf("127.0.0.1:%d", ports[2]), "-tenants-broker-port-base", fmt.Sprint(ports[3]),
			"-metrics", "", "-log-level", "warn", "-policies", filepath.Join("..", "..", "policies")}, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("demo: %v", err)
		}
	})
	upstream, bootstrap := "", fmt.Sprintf("127.0.0.1:%d", ports[0])
	sc := bufio.NewScanner(pr)
	re := regexp.MustCompile(`-> upstream (\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil && upstream == "" {
			upstream = m[1]
		}
		if strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if upstream == "" {
		t.Fatal("the demo did not start")
	}
	var lines bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&lines, `{"id":%d,"card":"4111111111111111","amount":42,"name":"Customer %d","note":%q}`+"\n", i, i, strings.Repeat("x", 900))
	}
	size := bytes.IndexByte(lines.Bytes(), '\n')
	payloads := filepath.Join(t.TempDir(), "payloads.jsonl")
	if err := os.WriteFile(payloads, lines.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer pcancel()
	produced := 0
	if _, err := exec.LookPath("kcat"); err == nil {
		if out, err := exec.CommandContext(pctx, "kcat", "-b", bootstrap, "-P", "-t", "payments", "-l", payloads).CombinedOutput(); err != nil {
			t.Fatalf("kcat with its defaults refused: %v\n%s", err, out)
		}
		produced += 2000
		measureDemo(t, "kcat (librdkafka)", upstream, produced, size)
	} else if testenv.Required() {
		t.Fatal("kcat not installed (test/deps.sh)")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, l := range bytes.Split(bytes.TrimSpace(lines.Bytes()), []byte("\n")) {
		recs = append(recs, &kgo.Record{Topic: "payments", Value: l})
	}
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		t.Fatalf("franz-go with its defaults refused: %v", err)
	}
	produced += 2000
	measureDemo(t, "franz-go", upstream, produced, size)
}

// measureDemo reads the n records of payments so far straight from the
// in-process Kafka (produced with values of size bytes) and prints and
// checks kguard's bytes per record.
func measureDemo(t *testing.T, client, upstream string, n, size int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(upstream), kgo.ConsumeTopics("payments"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []*kgo.Record
	for len(all) < n && ctx.Err() == nil {
		all = append(all, cl.PollFetches(ctx).Records()...)
	}
	if len(all) != n {
		t.Fatalf("%d of %d records stored", len(all), n)
	}
	hdr, heads, val := 0, 0, 0
	recent := all[:0:0] // every record with its card encrypted
	for _, r := range all {
		if !bytes.Contains(r.Value, []byte(`"card":"4111`)) {
			recent = append(recent, r)
		}
	}
	for _, r := range recent {
		val += len(r.Value)
		for _, h := range r.Headers {
			if h.Key == crypto.EncHeader || h.Key == crypto.SigHeader || h.Key == crypto.MarkHeader {
				hdr += len(binary.AppendVarint(nil, int64(len(h.Key)))) + len(h.Key) + len(binary.AppendVarint(nil, int64(len(h.Value)))) + len(h.Value)
				if h.Key == crypto.EncHeader {
					heads++
				}
			}
		}
	}
	per := float64(hdr) / float64(len(recent))
	t.Logf("PROTECTION make run (kguard demo, kfake), %s defaults, %d records stored so far: %d batch contexts, kguard headers %.1f B/record, stored value %.0f B/record (produced %d B)",
		client, len(recent), heads, per, float64(val)/float64(len(recent)), size)
	if len(recent) != n || per > 40 {
		t.Fatalf("%d records encrypted of %d, %.1f B of kguard headers per record (want <= 40)", len(recent), n, per)
	}
}
