package adversarial_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// javaQuotaRun is QuotaProducer's report (test/adversarial/java).
type javaQuotaRun struct {
	Records       int64   `json:"records"`
	Acked         int64   `json:"acked"`
	Failed        int64   `json:"failed"`
	WindowBytes   int64   `json:"window_bytes"`
	WindowSeconds float64 `json:"window_seconds"`
	ThrottleAvg   float64 `json:"produce_throttle_time_avg"`
	ThrottleMax   float64 `json:"produce_throttle_time_max"`
}

// TestQuotaJavaProducer: the quota comes from the policy data
// (config/quotas.json: tenant acme 2 MB/s of Produce; the window from the
// configuration). The Apache Kafka Java producer of acme produces flat out
// for 20 s after the window's warm-up and is held within 10% of 2 MB/s,
// its own metrics report produce-throttle-time-avg > 0, and nothing is
// lost; tenant globex, unlimited, produces at 6 MB/s at the same time,
// unthrottled.
func TestQuotaJavaProducer(t *testing.T) {
	if !realConfigured() {
		t.Skip("needs the real Kafka cluster (KGUARD_TEST_KAFKA_SASL_SSL)")
	}
	root := harness.RepoRoot(t)
	jars, _ := filepath.Glob(filepath.Join(root, "test", "kafka", "lib", "kafka-clients-*.jar"))
	if _, err := exec.LookPath("java"); err != nil || len(jars) == 0 {
		if testenv.Required() {
			t.Fatalf("java or test/kafka/lib missing (test/deps.sh): %v", err)
		}
		t.Skip("needs java and test/kafka/lib (test/deps.sh)")
	}
	const quota = 2_000_000
	s := freshReal(t, stackOpts{
		extraYAML: "quotas:\n  sample: 200ms\n  samples: 11\n",
		files: map[string]string{"config/quotas.json": fmt.Sprintf(
			`{"quotas": {"rules": [{"tenant": "acme", "produce_bytes_per_second": %d}]}}`, quota)},
	})
	run := randHex(3)
	topics := map[string]string{acme: "acme.gw-jquota-" + run, globex: "globex.gw-jquota-" + run}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	direct := s.directClient(t)
	if err := createTopics(ctx, direct, topics[acme], topics[globex]); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = kadm.NewClient(direct).DeleteTopics(context.Background(), topics[acme], topics[globex]) }()
	a := attack(t, s, "quotas from the policy data: acme's Java producer limited to 2 MB/s flat out, globex unlimited at 6 MB/s, for 20 s")
	const d = 20 * time.Second

	var wg sync.WaitGroup
	var g quotaRun
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Java compiles its source first: globex starts a little later so
		// that both run together for the whole window.
		time.Sleep(3 * time.Second)
		produceFor(ctx, t, s, globex, topics[globex], d, 3*quota, &g)
	}()
	cmd := exec.CommandContext(ctx, "java", "-cp", filepath.Join(root, "test", "kafka", "lib")+"/*",
		"-Dlog4j2.configurationFile="+filepath.Join(root, "test", "kafka", "log4j2-tools.properties"),
		filepath.Join(root, "test", "adversarial", "java", "QuotaProducer.java"),
		"--bootstrap", s.bootstrap, "--topic", topics[acme], "--username", acme,
		"--warmup", fmt.Sprint(quotaWarmUp.Seconds()), "--seconds", fmt.Sprint(d.Seconds()))
	cmd.Env = append(os.Environ(), "KGUARD_QUOTA_PASSWORD="+s.passwords[acme])
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	wg.Wait()
	if err != nil {
		t.Fatalf("QuotaProducer: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	var j javaQuotaRun
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &j); err != nil {
		t.Fatalf("QuotaProducer output %q: %v\n%s", stdout.String(), err, stderr.String())
	}
	stored := func(topic string) int64 {
		ends, err := listEnds(ctx, direct, topic)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, o := range ends {
			n += o
		}
		return n
	}
	rate := float64(j.WindowBytes) / j.WindowSeconds
	js := stored(topics[acme])
	t.Logf("QUOTA java acme: %.2f MB/s acknowledged over %.0f s (quota 2 MB/s from the policy data, flat out); produce-throttle-time-avg %.1f ms, max %.0f ms; %d records sent, %d acknowledged, %d failed, %d stored",
		rate/1e6, j.WindowSeconds, j.ThrottleAvg, j.ThrottleMax, j.Records, j.Acked, j.Failed, js)
	if rate < 0.9*quota || rate > 1.1*quota {
		t.Errorf("acme's Java producer: %.2f MB/s, want 2 MB/s ±10%%", rate/1e6)
	}
	if !(j.ThrottleAvg > 0) {
		t.Errorf("acme's Java producer reports produce-throttle-time-avg %v, want > 0", j.ThrottleAvg)
	}
	if j.Failed > 0 || j.Acked != j.Records || js != j.Records {
		t.Errorf("acme lost records: %d sent, %d acknowledged, %d failed, %d stored", j.Records, j.Acked, j.Failed, js)
	}
	grate := float64(g.bytes) / d.Seconds()
	gs := stored(topics[globex])
	t.Logf("QUOTA java globex: %.2f MB/s acknowledged over %s (no quota, paced at 6 MB/s); %d throttles seen; %d records produced, %d acknowledged, %d failed, %d stored",
		grate/1e6, d, g.hook.n.Load(), g.records, g.acked, g.failed, gs)
	if g.hook.n.Load() != 0 {
		t.Errorf("globex (no quota) was throttled %d times", g.hook.n.Load())
	}
	if grate < 0.9*3*quota {
		t.Errorf("globex (no quota) produced only %.2f MB/s of its 6 MB/s", grate/1e6)
	}
	if g.failed > 0 || g.acked != g.records || gs != g.records {
		t.Errorf("globex lost records: %d produced, %d acknowledged, %d failed, %d stored", g.records, g.acked, g.failed, gs)
	}
	a.Sent("acme's Java producer (flat out) and globex (6 MB/s) produce 10 KiB records for %s through one kguard", d)
	a.Got("acme %.2f MB/s, throttle avg %.1f ms, %d of %d stored; globex %.2f MB/s, %d throttles", rate/1e6, j.ThrottleAvg, js, j.Records, grate/1e6, g.hook.n.Load())
}
