package compliance

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kguard/kguard/crypto"
)

func testEvidence() *Evidence {
	gen := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	return &Evidence{
		Since: gen.Add(-24 * time.Hour), Until: gen, Generated: gen, Generator: "kguard test",
		Cryptoperiod: 365 * 24 * time.Hour, RequiredRetention: 365 * 24 * time.Hour,
		Audit:    AuditEvidence{Topic: "__kguard_audit", KeyID: []string{"k1"}},
		Policy:   PolicyEvidence{Revision: "r2", KguardPrincipal: "User:kguard", PolicyAuditTopic: "__kguard_audit"},
		Listener: ListenerEvidence{SASLMechanisms: []string{"SCRAM-SHA-512"}, ClientCerts: "none"},
		Keys:     KeyEvidence{InScope: []string{"kek"}, Why: map[string]string{"kek": "protection rule p"}},
		AuditTopic: TopicEvidence{Name: "__kguard_audit", RetentionMs: (400 * 24 * time.Hour).Milliseconds(),
			CleanupPolicy: "delete"},
		Erasure:    []ErasureEvidence{{SubjectKey: "kguard-subject-ab", Decision: "allow", KMSAnswer: "not found", Gone: true}},
		Canary:     &CanaryEvidence{Key: "c", OK: true},
		Revisions:  []PolicyRevision{{Revision: "r1"}, {Revision: "r2", Diff: "+x"}},
		Protection: []ProtectionRule{{Name: "p", Match: "topic cards", Fields: []string{"$.card"}, KEK: "kek"}},
		KMS:        "vault", KMSDescription: "OpenBao",
		KeyInfo: []crypto.KeyInfo{{Name: "kek", Provider: "openbao-transit", LatestVersion: 2,
			Versions: []crypto.KeyVersion{{Version: 1, Created: gen.Add(-400 * 24 * time.Hour)}, {Version: 2, Created: gen.Add(-time.Hour)}}}},
		KeyOps: []KeyOperation{{Operation: "ROTATE", Key: "kek", Decision: "allow"},
			{Operation: "SHRED", Key: "kguard-subject-ab", Decision: "allow"}},
		Counts:            map[string]int{"authz.decision": 3, "key.operation": 2, "audit.checkpoint": 1},
		Total:             6,
		Ranges:            []InstanceRange{{Instance: "kg-1", FirstSeq: 1, LastSeq: 6, Events: 6}},
		Decisions:         DecisionEvidence{Allowed: 2, Denied: 1, Revisions: map[string]int{"r2": 3}},
		Checkpoints:       []CheckpointSummary{{Instance: "kg-1", Count: 1, Last: CheckpointRef{Seq: 6, Size: 5, Verified: true}}},
		Verify:            VerifyEvidence{OK: true, Records: 6},
		AuditTopicWriters: []string{"User:kguard"},
		Samples:           map[string]Sample{},
		Inputs:            map[string]string{},
	}
}

func statusOf(cs []Control, id string) Status {
	for _, c := range cs {
		if c.ID == id {
			return c.Status
		}
	}
	return ""
}

func TestEvaluate(t *testing.T) {
	ev := testEvidence()
	for _, c := range Evaluate(ev) {
		if c.Status != Pass {
			t.Errorf("%s: %s (%s), want PASS", c.ID, c.Status, c.Summary)
		}
	}
	for _, tc := range []struct {
		id     string
		change func(*Evidence)
		want   Status
	}{
		{"PCI DSS 10.5", func(e *Evidence) { e.AuditTopic.RetentionMs = (24 * time.Hour).Milliseconds() }, Fail},
		{"PCI DSS 10.5", func(e *Evidence) { e.AuditTopic.RetentionMs = -1 }, Pass},
		{"PCI DSS 10.5", func(e *Evidence) { e.AuditTopic.CleanupPolicy = "compact,delete" }, Fail},
		{"PCI DSS 8.3", func(e *Evidence) { e.Listener.AllowAnonymous = true }, Fail},
		{"PCI DSS 8.3", func(e *Evidence) { e.Listener.SASLMechanisms = []string{"PLAIN"} }, Fail},
		{"PCI DSS 3.7", func(e *Evidence) { e.KeyInfo[0].Versions[1].Created = e.Generated.Add(-400 * 24 * time.Hour) }, Fail},
		{"PCI DSS 3.6", func(e *Evidence) { e.KMS = "local" }, Fail},
		{"PCI DSS 3.5", func(e *Evidence) { e.Protection = nil }, NotApplicable},
		{"PCI DSS 7.2", func(e *Evidence) { e.ProbeGrants = []string{"public:Read"} }, Fail},
		{"PCI DSS 10.3", func(e *Evidence) { e.AuditTopicWriters = append(e.AuditTopicWriters, "User:admin") }, Fail},
		{"PCI DSS 10.3", func(e *Evidence) { e.Checkpoints[0].Failed = 1 }, Fail},
		{"PCI DSS 10.7", func(e *Evidence) { e.Gaps = []GapEvidence{{Dropped: 3}} }, Fail},
		{"SOX change control", func(e *Evidence) { e.UnrecordedRevisions = []string{"rX"} }, Fail},
		{"GDPR Art. 17", func(e *Evidence) { e.Erasure[0].Gone, e.Erasure[0].KMSAnswer = false, "key exists" }, Fail},
		{"GDPR Art. 17", func(e *Evidence) { e.Erasure = nil }, NotApplicable},
	} {
		ev := testEvidence()
		tc.change(ev)
		if got := statusOf(Evaluate(ev), tc.id); got != tc.want {
			t.Errorf("%s after a change: %s, want %s", tc.id, got, tc.want)
		}
	}
}

// A report verifies; an edited file, a status changed and re-signed with
// the right key, inconsistent figures and a foreign key do not.
func TestWriteVerify(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := []ed25519.PublicKey{pub}
	dir := filepath.Join(t.TempDir(), "r")
	if _, err := Write(dir, Build(testEvidence()), []string{FormatHTML, FormatMD}, key); err != nil {
		t.Fatal(err)
	}
	if _, done, err := Verify(dir, keys); err != nil {
		t.Fatalf("verify: %v (%v)", err, done)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if err := os.WriteFile(filepath.Join(dir, "report.md"), append(b, ' '), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify(dir, keys); !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "changed after signing") {
		t.Errorf("edited markdown: %v", err)
	}

	rep := Build(testEvidence())
	rep.Controls[0].Status = Fail
	d2 := filepath.Join(t.TempDir(), "r2")
	if _, err := Write(d2, rep, []string{FormatHTML}, key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify(d2, keys); err == nil || !strings.Contains(err.Error(), "do not follow from the evidence") {
		t.Errorf("re-signed changed status: %v", err)
	}

	ev := testEvidence()
	ev.Counts["authz.decision"]++
	d3 := filepath.Join(t.TempDir(), "r3")
	if _, err := Write(d3, Build(ev), nil, key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify(d3, keys); err == nil || !strings.Contains(err.Error(), "sum of the counts") {
		t.Errorf("inconsistent counts: %v", err)
	}

	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, _, err := Verify(dir, []ed25519.PublicKey{other}); err == nil {
		t.Error("verified with a key that did not sign")
	}
}

func TestPlainDiff(t *testing.T) {
	d := PlainDiff(map[string][]byte{"a.json": []byte("x\ny\n"), "gone.rego": []byte("p\n")},
		map[string][]byte{"a.json": []byte("x\nz\n"), "new.rego": []byte("q\n")})
	for _, s := range []string{"--- a.json", "-y", "+z", "+++ /dev/null", "--- /dev/null", "+q"} {
		if !strings.Contains(d, s) {
			t.Errorf("diff lacks %q:\n%s", s, d)
		}
	}
	if PlainDiff(map[string][]byte{"a": []byte("1")}, map[string][]byte{"a": []byte("1")}) != "(no file changed)" {
		t.Error("equal revisions differ")
	}
}
