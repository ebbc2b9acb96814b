package review

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

// eventPool encodes n distinct authz.decision events as the proxy records
// them: 20 principals (the example's three among them), 50 topics,
// Produce / Fetch / Metadata / OffsetCommit, a client port per event (so
// every event of the pool is a distinct input). Each carries its recorded
// input.
func eventPool(tb testing.TB, n int) [][]byte {
	tb.Helper()
	pool := make([][]byte, 0, n)
	prev := audit.Hash{}
	for i := 0; i < n; i++ {
		principal := fmt.Sprintf("User:review-app-%d", (i/4)%20)
		switch (i / 4) % 20 {
		case 0, 1, 2:
			principal = []string{"User:review-alice", "User:review-bob", "User:review-carol"}[(i/4)%20]
		}
		topic := fmt.Sprintf("review-%s-%d", []string{"orders", "payments"}[(i/80)%2], (i/160)%25)
		var actions []policy.Action
		var details map[string]any
		what := &audit.What{APIVersion: 11}
		switch i % 4 {
		case 0:
			what.APIKey, what.APIName = 0, "Produce"
			actions = []policy.Action{{Resource: policy.Topic, Name: topic, Operation: policy.Write}}
			details = map[string]any{"acks": -1, "idempotent": true, "transactional": false, "topics": []string{topic}}
			what.Produce = []audit.TopicSummary{{Topic: topic, Partitions: []audit.PartitionSummary{{Partition: 0, Records: 10, Bytes: 1000}}}}
		case 1:
			what.APIKey, what.APIName = 1, "Fetch"
			actions = []policy.Action{{Resource: policy.Topic, Name: topic, Operation: policy.Read}}
			what.Fetch = []audit.TopicSummary{{Topic: topic, Partitions: []audit.PartitionSummary{{Partition: 0}}}}
		case 2:
			what.APIKey, what.APIName = 3, "Metadata"
			actions = []policy.Action{{Resource: policy.Topic, Name: topic, Operation: policy.Describe}}
			details = map[string]any{"auto_create": false}
		case 3:
			what.APIKey, what.APIName = 8, "OffsetCommit"
			actions = []policy.Action{{Resource: policy.Group, Name: "review-g-" + principal, Operation: policy.Read},
				{Resource: policy.Topic, Name: topic, Operation: policy.Read}}
		}
		ev := audit.Event{Version: audit.SchemaVersion, Type: audit.EventAuthzDecision, Seq: uint64(i + 1), Prev: prev,
			Time:    time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
			Who:     &audit.Who{Principal: principal, Mechanism: "SCRAM-SHA-512", ClientID: "app"},
			What:    what,
			Where:   audit.Where{Client: fmt.Sprintf("10.0.%d.%d:%d", i%7, (i/4)%20, 40000+i%10000), Listener: "external", Instance: "kg-1"},
			Outcome: &audit.Outcome{Decision: audit.DecisionAllow, PolicyRev: "0123456789abcdef", DecisionID: "x"},
			Details: map[string]string{}}
		if err := policy.RecordInput(ev.Details, actions, details); err != nil {
			tb.Fatal(err)
		}
		b, err := ev.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		prev = audit.HashEvent(b)
		pool = append(pool, append(b, '\n'))
	}
	return pool
}

// cycleReader yields n lines cycling through pool, without materializing
// them (a million events are ~700 MB).
type cycleReader struct {
	pool [][]byte
	n, i int
	cur  []byte
}

func (r *cycleReader) Read(p []byte) (int, error) {
	w := 0
	for w < len(p) {
		if len(r.cur) == 0 {
			if r.i == r.n {
				if w == 0 {
					return 0, io.EOF
				}
				return w, nil
			}
			r.cur = r.pool[r.i%len(r.pool)]
			r.i++
		}
		c := copy(p[w:], r.cur)
		r.cur = r.cur[c:]
		w += c
	}
	return w, nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkReplayMillion replays 1,000,000 recorded decisions (read and
// decoded as from an export file, as ReplayFile does, deduplicated, 10,000 distinct inputs each
// evaluated under the example's base and head policies) and prints
// decisions per second by wall time and by CPU time of the process (CPU
// seconds survive a shared, loaded machine). `make bench-policy`.
func BenchmarkReplayMillion(b *testing.B) {
	const decisions = 1_000_000
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	ctx := context.Background()
	base, err := LoadEngine(ctx, filepath.Join(root, "policies"), filepath.Join(root, "examples", "policy-review", "base"))
	if err != nil {
		b.Fatal(err)
	}
	head, err := LoadEngine(ctx, filepath.Join(root, "policies"), filepath.Join(root, "examples", "policy-review", "head"))
	if err != nil {
		b.Fatal(err)
	}
	pool := eventPool(b, 10_000)
	b.ResetTimer()
	for b.Loop() {
		start, cpu0 := time.Now(), cpuSeconds()
		r := NewReplayer(base, head, time.Time{}, time.Time{})
		if _, err := audit.ReadEventsConcurrently(&cycleReader{pool: pool, n: decisions}, runtime.GOMAXPROCS(0), r.Add); err != nil {
			b.Fatal(err)
		}
		read, cpuRead := time.Since(start), cpuSeconds()-cpu0
		rep, err := r.Run(ctx)
		if err != nil {
			b.Fatal(err)
		}
		wall, cpu := time.Since(start), cpuSeconds()-cpu0
		if rep.Stats.Decisions != decisions {
			b.Fatalf("%d decisions replayed", rep.Stats.Decisions)
		}
		b.ReportMetric(float64(decisions)/wall.Seconds(), "decisions/s")
		b.ReportMetric(float64(decisions)/cpu, "decisions/cpu-s")
		fmt.Printf("REPLAY %d decisions (%d distinct inputs, %d changes): %.1f s wall (read+decode %.1f s), %.1f CPU s (read+decode %.1f); %.0f decisions/s, %.0f decisions per CPU second\n",
			decisions, rep.Stats.Distinct, len(rep.Changes), wall.Seconds(), read.Seconds(), cpu, cpuRead,
			float64(decisions)/wall.Seconds(), float64(decisions)/cpu)
	}
}

// TestCycleReaderLines: the benchmark's reader yields exactly n lines.
func TestCycleReaderLines(t *testing.T) {
	pool := [][]byte{[]byte("a\n"), []byte("bb\n")}
	b, _ := io.ReadAll(&cycleReader{pool: pool, n: 5})
	if string(b) != "a\nbb\na\nbb\na\n" || bytes.Count(b, []byte("\n")) != 5 {
		t.Fatalf("%q", b)
	}
}
