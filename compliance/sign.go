package compliance

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kguard/kguard/audit"
)

// SignatureFile is the signature of a report directory.
const SignatureFile = "report.sig"

const signContext = "kguard-compliance-report/v1\n"

// Signature is the content of report.sig: the SHA-256 of each file of the
// report and an Ed25519 signature (the audit checkpoint key) over
// signContext followed by "<hex sha256>  <file>\n" per file in name order.
type Signature struct {
	KeyID string            `json:"key_id"`
	Files map[string]string `json:"files"`
	Sig   []byte            `json:"sig"`
}

func signedBody(files map[string]string) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString(signContext)
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", files[n], n)
	}
	return b.Bytes()
}

// Write renders r into dir (report.json and each of formats), then signs
// the files with key into report.sig. It returns the paths written.
func Write(dir string, r *Report, formats []string, key ed25519.PrivateKey) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("compliance: %w", err)
	}
	want := map[string]bool{FormatJSON: true}
	for _, f := range formats {
		if _, ok := formatFiles[f]; !ok {
			return nil, fmt.Errorf("compliance: unknown format %q (json, html, md)", f)
		}
		want[f] = true
	}
	sig := Signature{KeyID: audit.KeyID(key.Public().(ed25519.PublicKey)), Files: map[string]string{}}
	var paths []string
	for _, f := range []string{FormatJSON, FormatHTML, FormatMD} {
		if !want[f] {
			continue
		}
		b, err := Render(r, f)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, formatFiles[f])
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, fmt.Errorf("compliance: %w", err)
		}
		h := sha256.Sum256(b)
		sig.Files[formatFiles[f]] = hex.EncodeToString(h[:])
		paths = append(paths, p)
	}
	sig.Sig = ed25519.Sign(key, signedBody(sig.Files))
	b, err := json.MarshalIndent(sig, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("compliance: encode signature: %w", err)
	}
	p := filepath.Join(dir, SignatureFile)
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("compliance: %w", err)
	}
	return append(paths, p), nil
}

// ErrVerify is wrapped by Verify's error when the report is not genuine
// or its figures do not re-derive.
var ErrVerify = errors.New("compliance: report verification failed")

// Verify checks a report directory: the signature over the files' hashes
// (with one of keys), each file's hash, then re-derives from report.json
// what it can: the controls (Evaluate), the renderings, and the figures
// that must agree with each other (event counts per type and in total,
// per-instance ranges, decisions, checkpoints, gaps, shreds). It returns
// the report and the lines of what it checked.
func Verify(dir string, keys []ed25519.PublicKey) (*Report, []string, error) {
	var done []string
	raw, err := os.ReadFile(filepath.Join(dir, SignatureFile))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	var sig Signature
	if err := json.Unmarshal(raw, &sig); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrVerify, SignatureFile, err)
	}
	var key ed25519.PublicKey
	for _, k := range keys {
		if audit.KeyID(k) == sig.KeyID {
			key = k
		}
	}
	if key == nil {
		return nil, nil, fmt.Errorf("%w: signed with key %s, not one of the keys given", ErrVerify, sig.KeyID)
	}
	if !ed25519.Verify(key, signedBody(sig.Files), sig.Sig) {
		return nil, nil, fmt.Errorf("%w: signature does not verify", ErrVerify)
	}
	done = append(done, "signature by audit checkpoint key "+sig.KeyID+" verifies")
	if _, ok := sig.Files[formatFiles[FormatJSON]]; !ok {
		return nil, nil, fmt.Errorf("%w: report.json is not signed", ErrVerify)
	}
	files := map[string][]byte{}
	for _, n := range sortedKeys(sig.Files) {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrVerify, err)
		}
		h := sha256.Sum256(b)
		if hex.EncodeToString(h[:]) != sig.Files[n] {
			return nil, nil, fmt.Errorf("%w: %s was changed after signing", ErrVerify, n)
		}
		files[n] = b
		done = append(done, n+" matches its signed hash")
	}
	var r Report
	dec := json.NewDecoder(bytes.NewReader(files[formatFiles[FormatJSON]]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, nil, fmt.Errorf("%w: report.json: %v", ErrVerify, err)
	}
	if r.Version != FormatVersion {
		return nil, nil, fmt.Errorf("%w: report format version %d, want %d", ErrVerify, r.Version, FormatVersion)
	}
	var problems []string
	got, _ := json.Marshal(r.Controls)
	want, _ := json.Marshal(Evaluate(&r.Evidence))
	if !bytes.Equal(got, want) {
		problems = append(problems, "the controls do not follow from the evidence")
	} else {
		done = append(done, fmt.Sprintf("%d controls re-derived from the evidence", len(r.Controls)))
	}
	for f, name := range formatFiles {
		b, ok := files[name]
		if !ok {
			continue
		}
		re, err := Render(&r, f)
		if err != nil {
			return nil, nil, err
		}
		if !bytes.Equal(re, b) {
			problems = append(problems, name+" is not the rendering of report.json")
		} else {
			done = append(done, name+" re-rendered from report.json")
		}
	}
	p, d := consistency(&r.Evidence)
	problems, done = append(problems, p...), append(done, d...)
	sort.Strings(done)
	if len(problems) > 0 {
		return &r, done, fmt.Errorf("%w: %s", ErrVerify, strings.Join(problems, "; "))
	}
	return &r, done, nil
}

// consistency re-derives the figures that must agree with each other.
func consistency(ev *Evidence) (problems, done []string) {
	check := func(what string, a, b int) {
		if a != b {
			problems = append(problems, fmt.Sprintf("%s: %d != %d", what, a, b))
		} else {
			done = append(done, fmt.Sprintf("%s: %d", what, a))
		}
	}
	sum := 0
	for _, n := range ev.Counts {
		sum += n
	}
	check("events in the period = sum of the counts per type", ev.Total, sum)
	sum = 0
	for _, r := range ev.Ranges {
		sum += r.Events
	}
	check("events in the period = sum over the instances' ranges", ev.Total, sum)
	check("authz.decision events = allowed + denied", ev.Counts["authz.decision"], ev.Decisions.Allowed+ev.Decisions.Denied)
	sum = 0
	for _, n := range ev.Decisions.Revisions {
		sum += n
	}
	check("authz.decision events = decisions per policy revision", ev.Counts["authz.decision"], sum)
	sum = 0
	for _, c := range ev.Checkpoints {
		sum += c.Count
		if c.Failed > c.Count {
			problems = append(problems, fmt.Sprintf("checkpoints of %s: %d failed of %d", c.Instance, c.Failed, c.Count))
		}
	}
	check("audit.checkpoint events = checkpoints per instance", ev.Counts["audit.checkpoint"], sum)
	check("audit.gap events = gaps listed", ev.Counts["audit.gap"], len(ev.Gaps))
	check("key.operation events = key operations listed", ev.Counts["key.operation"], len(ev.KeyOps))
	shreds := 0
	for _, op := range ev.KeyOps {
		if op.Operation == "SHRED" {
			shreds++
		}
	}
	check("shreds = erasures listed", shreds, len(ev.Erasure))
	for _, r := range ev.Ranges {
		if r.LastSeq < r.FirstSeq || uint64(r.Events) > r.LastSeq-r.FirstSeq+1 {
			problems = append(problems, fmt.Sprintf("range of %s: %d events in seq %d..%d", r.Instance, r.Events, r.FirstSeq, r.LastSeq))
		}
	}
	return problems, done
}
