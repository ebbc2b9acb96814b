package review

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite examples/policy-review/expected-report.md")

var revisionRE = regexp.MustCompile("revision `[0-9a-f]{16}`")

// TestExampleReport replays examples/policy-review/events.jsonl (events
// recorded by test/review on the real cluster) under the example's base
// and head policies with its ack file: the report is the example's
// expected-report.md (policy revisions aside: they change with policies/),
// and one breaking change is left unacknowledged (exit code 3).
func TestExampleReport(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	ex := filepath.Join("examples", "policy-review")
	acks, err := LoadAcks(filepath.Join(ex, "ack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := RunDiff(t.Context(), DiffOptions{
		Base:   []string{"policies", filepath.Join(ex, "base")},
		Head:   []string{"policies", filepath.Join(ex, "head")},
		Replay: filepath.Join(ex, "events.jsonl"), Acks: acks,
	}, &out, nil)
	if !errors.Is(err, ErrBreaking) {
		t.Fatalf("diff: %v, want ErrBreaking", err)
	}
	if rep.Unacknowledged() != 1 || len(rep.Changes) != 3 || rep.Stats.NoInput != 0 {
		t.Fatalf("%d unacknowledged of %d changes, %d not replayable", rep.Unacknowledged(), len(rep.Changes), rep.Stats.NoInput)
	}
	golden := filepath.Join(ex, "expected-report.md")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	norm := func(b []byte) string { return revisionRE.ReplaceAllString(string(b), "revision `REV`") }
	if norm(out.Bytes()) != norm(want) {
		t.Errorf("report differs from %s (go test ./policy/review -run TestExampleReport -update rewrites it):\n%s", golden, out.String())
	}
}
