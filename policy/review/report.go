package review

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Change kinds.
const (
	KindProtection = "protection" // a data-protection rule of a topic with recorded traffic
	KindAccess     = "access"     // an action's allow/deny
	KindSafeguard  = "safeguard"  // a safeguard violation (POLICY_VIOLATION)
	KindTenant     = "tenant"     // the head's principal-to-tenant mapping assigns another tenant
)

// Severities. Breaking changes fail the review unless acknowledged.
const (
	// SeverityBreaking: the head denies what the base allowed, or stops
	// protecting something (a field no longer encrypted, records no
	// longer signed, a principal now or no longer reading plaintext).
	SeverityBreaking = "breaking"
	// SeverityLoosening: the head allows what the base denied.
	SeverityLoosening = "loosening"
	// SeverityInfo: stricter protection or a changed key or algorithm.
	SeverityInfo = "info"
)

// Change is one changed decision or rule, with how many recorded requests
// (and, for data protection, records) it concerns.
type Change struct {
	Kind      string `json:"kind"`
	Severity  string `json:"severity"`
	Principal string `json:"principal,omitempty"`
	Tenant    string `json:"tenant,omitempty"`
	API       string `json:"api,omitempty"`
	Resource  string `json:"resource"`
	Name      string `json:"name"`
	// Operation is the ACL operation (access), or the stage, produce or
	// fetch (protection).
	Operation string `json:"operation,omitempty"`
	// Field is what of a protection rule changed: a field path,
	// "signature", "decrypt", "kek", "on_denied", "on_bad_signature" or
	// "rule".
	Field    string `json:"field,omitempty"`
	Base     string `json:"base"`
	Head     string `json:"head"`
	BaseRule string `json:"base_rule,omitempty"`
	HeadRule string `json:"head_rule,omitempty"`
	Requests int64  `json:"requests"`
	Records  int64  `json:"records,omitempty"`
	// Key identifies the change in an ack file.
	Key          string `json:"key"`
	Acknowledged string `json:"acknowledged,omitempty"` // the ack's reason
	perPrincipal bool
}

// Report is the result of a replay.
type Report struct {
	Base         string   `json:"base"`
	Head         string   `json:"head"`
	BaseRevision string   `json:"base_revision"`
	HeadRevision string   `json:"head_revision"`
	Source       string   `json:"source"`
	Verified     string   `json:"source_verified"`
	Stats        Stats    `json:"stats"`
	Changes      []Change `json:"changes"`
	StaleAcks    []string `json:"stale_acks,omitempty"`
	// Quotas are the client quota rules of the policy data that changed
	// (informational, quotas.go).
	Quotas []QuotaChange `json:"quota_changes,omitempty"`
}

// Unacknowledged counts breaking changes without an acknowledgement.
func (r *Report) Unacknowledged() int {
	n := 0
	for _, c := range r.Changes {
		if c.Severity == SeverityBreaking && c.Acknowledged == "" {
			n++
		}
	}
	return n
}

// ErrBreaking is returned (wrapped) by Check when breaking changes are not
// acknowledged.
var ErrBreaking = errors.New("policy change denies or unprotects recorded traffic")

// Check returns an error wrapping ErrBreaking when a breaking change is
// not acknowledged.
func (r *Report) Check() error {
	if n := r.Unacknowledged(); n > 0 {
		return fmt.Errorf("%w: %d unacknowledged breaking change(s)", ErrBreaking, n)
	}
	return nil
}

// Ack is one acknowledged change in an ack file.
type Ack struct {
	Change string `yaml:"change" json:"change"`
	Reason string `yaml:"reason" json:"reason"`
}

// AckFile is the file a reviewer commits next to a policy change.
type AckFile struct {
	Acknowledged []Ack `yaml:"acknowledged" json:"acknowledged"`
}

// LoadAcks reads an ack file (YAML). Every entry needs a change key and a
// reason.
func LoadAcks(path string) ([]Ack, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("review: ack file: %w", err)
	}
	var f AckFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("review: ack file %s: %w", path, err)
	}
	for i, a := range f.Acknowledged {
		if strings.TrimSpace(a.Change) == "" || strings.TrimSpace(a.Reason) == "" {
			return nil, fmt.Errorf("review: ack file %s: entry %d needs both change and reason", path, i+1)
		}
	}
	return f.Acknowledged, nil
}

// Acknowledge marks the changes acks name; acks naming no change are
// listed as stale.
func (r *Report) Acknowledge(acks []Ack) {
	used := make([]bool, len(acks))
	for i := range r.Changes {
		for j, a := range acks {
			if strings.TrimSpace(a.Change) == r.Changes[i].Key {
				r.Changes[i].Acknowledged = strings.TrimSpace(a.Reason)
				used[j] = true
			}
		}
	}
	for j, a := range acks {
		if !used[j] {
			r.StaleAcks = append(r.StaleAcks, a.Change)
		}
	}
	sort.Strings(r.StaleAcks)
}

// Write renders the report: "markdown" (a pull-request comment), "json"
// or "text".
func (r *Report) Write(w io.Writer, format string) error {
	var err error
	switch format {
	case "markdown", "md", "":
		_, err = io.WriteString(w, r.markdown())
	case "text":
		_, err = io.WriteString(w, r.text())
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	default:
		return fmt.Errorf("review: unknown format %q (markdown, json, text)", format)
	}
	if err != nil {
		return fmt.Errorf("review: write report: %w", err)
	}
	return nil
}

// mdCell escapes a markdown table cell.
func mdCell(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "`", "'") + "`"
}

func (c *Change) mark() string {
	switch {
	case c.Severity == SeverityBreaking && c.Acknowledged != "":
		return "acknowledged"
	case c.Severity == SeverityBreaking:
		return "**BREAKING**"
	}
	return c.Severity
}

func ackNote(c Change) string {
	if c.Acknowledged != "" {
		return ", acknowledged"
	}
	return ""
}

func (r *Report) markdown() string {
	var b strings.Builder
	n := r.Unacknowledged()
	verdict := "passes"
	if n > 0 {
		verdict = fmt.Sprintf("**fails: %d unacknowledged breaking change(s)**", n)
	}
	fmt.Fprintf(&b, "## kguard policy review\n\n")
	fmt.Fprintf(&b, "Base %s (revision `%s`) → head %s (revision `%s`).\n", code(r.Base), r.BaseRevision, code(r.Head), r.HeadRevision)
	fmt.Fprintf(&b, "Replayed %d authorization decisions (%d distinct inputs) and the data-protection rules of %d produce/fetch requests from %s (%s).\n\n",
		r.Stats.Decisions, r.Stats.Distinct, r.Stats.DataRequests, code(r.Source), r.Verified)
	if r.Stats.NoInput > 0 {
		fmt.Fprintf(&b, "> %d recorded decisions carry no input and were not replayed (recorded by an older kguard or refused before the policy decided).\n\n", r.Stats.NoInput)
	}
	for _, c := range r.Changes {
		if c.Kind == KindProtection && c.Severity == SeverityBreaking {
			fmt.Fprintf(&b, "> **Data protection: %s of topic %s: %s → %s** (%d %s requests, %d records)%s\n\n",
				code(c.Field), code(c.Name), c.Base, c.Head, c.Requests, c.Operation, c.Records, ackNote(c))
		}
	}
	counts := map[string]int{}
	for _, c := range r.Changes {
		counts[c.Severity]++
	}
	fmt.Fprintf(&b, "Result: %s. %d breaking, %d loosening, %d informational change(s).\n",
		verdict, counts[SeverityBreaking], counts[SeverityLoosening], counts[SeverityInfo])
	if len(r.Changes) == 0 {
		b.WriteString("\nNo recorded decision or data-protection rule changes.\n")
	}
	var prot, acc []Change
	for _, c := range r.Changes {
		if c.Kind == KindProtection {
			prot = append(prot, c)
		} else {
			acc = append(acc, c)
		}
	}
	if len(prot) > 0 {
		b.WriteString("\n### Data protection\n\n| | topic | stage | what | base → head | principal | tenant | requests | records |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, c := range prot {
			what := c.Field
			if strings.HasPrefix(what, "$") || what == "key" || strings.HasPrefix(what, "header:") {
				what = "field " + code(what)
			}
			head := c.Head
			if c.Severity == SeverityBreaking {
				head = "**" + head + "**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s → %s | %s | %s | %d | %d |\n", c.mark(), code(c.Name), c.Operation, what,
				mdCell(c.Base), mdCell(head), code(c.Principal), mdCell(c.Tenant), c.Requests, c.Records)
		}
	}
	if len(acc) > 0 {
		b.WriteString("\n### Access\n\n")
		b.WriteString(r.summaryByPrincipal(acc))
		b.WriteString("\n| | principal | tenant | API | resource | operation | base → head | requests | base rule | head rule |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, c := range acc {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s → %s | %d | %s | %s |\n", c.mark(), code(c.Principal), mdCell(c.Tenant),
				c.API, code(c.Resource+":"+c.Name), c.Operation, c.Base, c.Head, c.Requests, mdCell(c.BaseRule), mdCell(c.HeadRule))
		}
	}
	if len(r.Quotas) > 0 {
		b.WriteString("\n### Client quotas (informational)\n\n| rule | base | head |\n|---|---|---|\n")
		for _, q := range r.Quotas {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", code(q.Rule), mdCell(q.Base), mdCell(q.Head))
		}
	}
	var acked []Change
	for _, c := range r.Changes {
		if c.Acknowledged != "" {
			acked = append(acked, c)
		}
	}
	if len(acked) > 0 {
		b.WriteString("\n### Acknowledged\n\n")
		for _, c := range acked {
			fmt.Fprintf(&b, "- %s: %s\n", code(c.Key), mdCell(c.Acknowledged))
		}
	}
	if len(r.StaleAcks) > 0 {
		b.WriteString("\nAcknowledgements that match no change (remove them):\n\n")
		for _, s := range r.StaleAcks {
			fmt.Fprintf(&b, "- %s\n", code(s))
		}
	}
	if n > 0 {
		b.WriteString("\n<details><summary>To acknowledge the breaking changes, commit an ack file</summary>\n\n```yaml\nacknowledged:\n")
		for _, c := range r.Changes {
			if c.Severity == SeverityBreaking && c.Acknowledged == "" {
				fmt.Fprintf(&b, "  - change: %q\n    reason: \"...\"\n", c.Key)
			}
		}
		b.WriteString("```\n\n</details>\n")
	}
	return b.String()
}

// summaryByPrincipal is one line per principal: requests that would now
// be denied and now be allowed.
func (r *Report) summaryByPrincipal(cs []Change) string {
	type tally struct{ denied, allowed int64 }
	m := map[string]*tally{}
	for _, c := range cs {
		t := m[c.Principal]
		if t == nil {
			t = &tally{}
			m[c.Principal] = t
		}
		if c.Severity == SeverityBreaking {
			t.denied += c.Requests
		} else if c.Severity == SeverityLoosening {
			t.allowed += c.Requests
		}
	}
	ps := make([]string, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	var b strings.Builder
	b.WriteString("| principal | requests now denied | requests now allowed |\n|---|---|---|\n")
	for _, p := range ps {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", code(p), m[p].denied, m[p].allowed)
	}
	return b.String()
}

func (r *Report) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy review: base %s (%s) -> head %s (%s)\n", r.Base, r.BaseRevision, r.Head, r.HeadRevision)
	fmt.Fprintf(&b, "source %s (%s): %d decisions, %d distinct inputs, %d not replayable, %d data requests\n",
		r.Source, r.Verified, r.Stats.Decisions, r.Stats.Distinct, r.Stats.NoInput, r.Stats.DataRequests)
	for _, c := range r.Changes {
		status := c.Severity
		if c.Acknowledged != "" {
			status += " (acknowledged)"
		}
		fmt.Fprintf(&b, "%-26s %s  requests=%d", status, c.Key, c.Requests)
		if c.Records > 0 {
			fmt.Fprintf(&b, " records=%d", c.Records)
		}
		if c.BaseRule != "" || c.HeadRule != "" {
			fmt.Fprintf(&b, "  base: %s; head: %s", orNone(c.BaseRule, "-"), orNone(c.HeadRule, "-"))
		}
		b.WriteByte('\n')
	}
	for _, q := range r.Quotas {
		fmt.Fprintf(&b, "quota %s  base: %s; head: %s\n", q.Rule, q.Base, q.Head)
	}
	for _, s := range r.StaleAcks {
		fmt.Fprintf(&b, "stale ack: %s\n", s)
	}
	if n := r.Unacknowledged(); n > 0 {
		fmt.Fprintf(&b, "FAIL: %d unacknowledged breaking change(s)\n", n)
	} else {
		fmt.Fprintf(&b, "OK: no unacknowledged breaking change (%d change(s))\n", len(r.Changes))
	}
	return b.String()
}
