// Package compliance builds kguard's compliance report: for a period, the
// PCI DSS v4.0, SOX change-control and GDPR Art. 17 controls kguard takes
// part in, each with a status derived from evidence read live from the
// running system (the audit topic, the policies, the listener
// configuration, the key service, the cluster's topic configuration).
//
// The report is one JSON document (Report: the Evidence and the Controls
// evaluated from it) with HTML and Markdown renderings, signed with the
// audit checkpoint key. Evaluate and the renderers are deterministic, so
// Verify re-derives the controls and the renderings from the signed
// evidence. It never contains record payloads or secrets: audit events
// have none, and the evidence keeps no event details except the ones
// listed in docs/compliance.md.
package compliance

import (
	"time"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/crypto"
)

// FormatVersion is the version of the report's JSON layout.
const FormatVersion = 1

// Report is the signed document.
type Report struct {
	Version  int       `json:"version"`
	Evidence Evidence  `json:"evidence"`
	Controls []Control `json:"controls"`
}

// Status of a control.
type Status string

// Statuses.
const (
	Pass          Status = "PASS"
	Fail          Status = "FAIL"
	NotApplicable Status = "NOT APPLICABLE"
)

// Control is one requirement with its status and the evidence behind it
// (human-readable lines drawn from Evidence).
type Control struct {
	ID        string   `json:"id"`
	Framework string   `json:"framework"`
	Title     string   `json:"title"`
	Status    Status   `json:"status"`
	Summary   string   `json:"summary"`
	Evidence  []string `json:"evidence"`
}

// Evidence is every input a report is derived from.
type Evidence struct {
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	Generated time.Time `json:"generated"`
	Generator string    `json:"generator"` // kguard version
	// ConfigSHA256 is the hash of the configuration file read.
	ConfigSHA256 string `json:"config_sha256"`
	// Cryptoperiod is the longest a key version may stay current.
	Cryptoperiod time.Duration `json:"cryptoperiod"`
	// RequiredRetention is the audit retention PCI DSS 10.5.1 asks for.
	RequiredRetention time.Duration `json:"required_retention"`

	Audit               AuditEvidence       `json:"audit"`
	Policy              PolicyEvidence      `json:"policy"`
	Listener            ListenerEvidence    `json:"listener"`
	Keys                KeyEvidence         `json:"keys"`
	AuditTopic          TopicEvidence       `json:"audit_topic"`
	Erasure             []ErasureEvidence   `json:"erasure"`
	Revisions           []PolicyRevision    `json:"policy_revisions"`
	Protection          []ProtectionRule    `json:"protection_rules"`
	Inputs              map[string]string   `json:"inputs"` // free-form: what was read from where
	Notes               []string            `json:"notes,omitempty"`
	Grants              []PrincipalGrants   `json:"grants"`
	AuditTopicWriters   []string            `json:"audit_topic_writers"`
	ProbePrincipal      string              `json:"unlisted_probe_principal"`
	ProbeGrants         []string            `json:"unlisted_probe_grants"`
	Ranges              []InstanceRange     `json:"audit_ranges"`
	KeyOps              []KeyOperation      `json:"key_operations"`
	Gaps                []GapEvidence       `json:"gaps"`
	UncleanStarts       []UncleanStart      `json:"unclean_starts"`
	Canary              *CanaryEvidence     `json:"kms_canary,omitempty"`
	Samples             map[string]Sample   `json:"samples"`
	Checkpoints         []CheckpointSummary `json:"checkpoints"`
	Decisions           DecisionEvidence    `json:"decisions"`
	UnrecordedRevisions []string            `json:"unrecorded_policy_revisions"`
	Verify              VerifyEvidence      `json:"verify"`
	Counts              map[string]int      `json:"event_counts"`
	Total               int                 `json:"events_in_period"`
	KMS                 string              `json:"kms"`
	KMSDescription      string              `json:"kms_description"`
	KeyInfo             []crypto.KeyInfo    `json:"key_info"`
	KeysNotFound        []string            `json:"keys_not_found"`
	Findings            []audit.Finding     `json:"verify_findings"`
}

// AuditEvidence names the audit topic and its verification key.
type AuditEvidence struct {
	Topic string   `json:"topic"`
	KeyID []string `json:"checkpoint_key_ids"`
}

// VerifyEvidence is the `audit verify` result over the whole topic.
type VerifyEvidence struct {
	OK        bool                   `json:"ok"`
	Records   int64                  `json:"records"`
	Errors    int                    `json:"errors"`
	Warnings  int                    `json:"warnings"`
	Instances []audit.InstanceReport `json:"instances"`
}

// InstanceRange is the part of an instance's chain that falls in the period.
type InstanceRange struct {
	Instance string    `json:"instance"`
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	Events   int       `json:"events"`
}

// CheckpointSummary is an instance's signed checkpoints in the period:
// how many, how many failed to verify, and the first and the last (whose
// root pins every event of the instance up to it).
type CheckpointSummary struct {
	Instance string        `json:"instance"`
	Count    int           `json:"count"`
	Failed   int           `json:"failed"`
	First    CheckpointRef `json:"first"`
	Last     CheckpointRef `json:"last"`
}

// CheckpointRef is a signed checkpoint recorded in the period.
type CheckpointRef struct {
	Instance string    `json:"instance"`
	Seq      uint64    `json:"seq"`
	Size     uint64    `json:"size"`
	Root     string    `json:"root"` // base64
	KeyID    string    `json:"key_id"`
	Time     time.Time `json:"time"`
	Verified bool      `json:"verified"`
}

// Sample is one event of a type, without details or payloads.
type Sample struct {
	Instance  string    `json:"instance"`
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Principal string    `json:"principal,omitempty"`
	Mechanism string    `json:"mechanism,omitempty"`
	Client    string    `json:"client,omitempty"`
	Operation string    `json:"operation,omitempty"`
	Resource  string    `json:"resource,omitempty"`
	Decision  string    `json:"decision,omitempty"`
	ErrorCode int16     `json:"error_code,omitempty"`
}

// DecisionEvidence counts authorization decisions in the period.
type DecisionEvidence struct {
	Allowed int `json:"allowed"`
	Denied  int `json:"denied"`
	// DeniedSamples are up to 5 denials (principal, operation, resource, reason).
	DeniedSamples []string `json:"denied_samples"`
	// Revisions are the policy revisions that decided, with counts.
	Revisions map[string]int `json:"revisions"`
	// Refused counts data.protection refusals (records not forwarded).
	ProtectionRefusals int `json:"protection_refusals"`
}

// GapEvidence is an audit.gap event: events dropped while the spool was full.
type GapEvidence struct {
	Instance string    `json:"instance"`
	Seq      uint64    `json:"seq"`
	Dropped  uint64    `json:"dropped"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
}

// UncleanStart is an audit.start not preceded by its instance's audit.stop
// (the previous run crashed or was killed).
type UncleanStart struct {
	Instance string    `json:"instance"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
}

// KeyOperation is a key.operation event.
type KeyOperation struct {
	Time      time.Time         `json:"time"`
	Instance  string            `json:"instance"`
	Principal string            `json:"principal"`
	Operation string            `json:"operation"`
	Key       string            `json:"key"`
	Decision  string            `json:"decision"`
	Details   map[string]string `json:"details,omitempty"`
}

// PolicyRevision is a policy revision that was in force during the period.
type PolicyRevision struct {
	Revision string            `json:"revision"`
	Loaded   time.Time         `json:"loaded"`
	Instance string            `json:"instance"`
	Reason   string            `json:"reason"`
	Files    map[string]string `json:"files"` // name -> sha256
	// Diff against the previous revision in this list (empty for the first).
	Diff string `json:"diff,omitempty"`
}

// PolicyEvidence is the policy in force when the report was made.
type PolicyEvidence struct {
	Dirs                 []string `json:"dirs"`
	Revision             string   `json:"revision"`
	SuperUsers           []string `json:"super_users"`
	KguardPrincipal      string   `json:"kguard_principal"`
	PolicyAuditTopic     string   `json:"policy_audit_topic"`
	AllowEveryoneNoACL   bool     `json:"allow_everyone_if_no_acl_found"`
	ACLEntries           int      `json:"acl_entries"`
	WildcardAllGrantedTo []string `json:"wildcard_all_granted_to"`
}

// PrincipalGrants are the topic operations the policy allows a principal.
type PrincipalGrants struct {
	Principal string              `json:"principal"`
	Super     bool                `json:"super_user"`
	Topics    map[string][]string `json:"topics"` // topic -> allowed operations
}

// ListenerEvidence is the client-facing authentication configuration.
type ListenerEvidence struct {
	Bootstrap       string   `json:"bootstrap"`
	TLS             bool     `json:"tls"`
	ClientCerts     string   `json:"client_certs"` // none, optional, required
	SASLMechanisms  []string `json:"sasl_mechanisms"`
	OAuth           bool     `json:"oauth"`
	AllowAnonymous  bool     `json:"allow_anonymous"`
	UpstreamTLS     bool     `json:"upstream_tls"`
	UpstreamSASL    string   `json:"upstream_sasl"`
	MaxSessionLimit string   `json:"max_session_lifetime"`
	// AuthnSuccess/AuthnFailure count authn events by mechanism in the period.
	AuthnSuccess map[string]int `json:"authn_success"`
	AuthnFailure map[string]int `json:"authn_failure"`
}

// KeyEvidence: which keys are in scope.
type KeyEvidence struct {
	InScope []string `json:"in_scope"`
	// Why names where each key came from (protection rule, rotation event, flag).
	Why map[string]string `json:"why"`
}

// TopicEvidence is the audit topic's configuration read from the cluster.
type TopicEvidence struct {
	Name              string `json:"name"`
	RetentionMs       int64  `json:"retention_ms"`
	CleanupPolicy     string `json:"cleanup_policy"`
	MinInsyncReplicas string `json:"min_insync_replicas"`
	ReplicationFactor int    `json:"replication_factor"`
	Partitions        int    `json:"partitions"`
	Error             string `json:"error,omitempty"`
}

// ErasureEvidence is one shred in the period and the KMS's answer now.
type ErasureEvidence struct {
	SubjectKey string    `json:"subject_key"`
	Time       time.Time `json:"time"`
	Principal  string    `json:"principal"`
	Decision   string    `json:"decision"`
	// KMSAnswer is what the key service answered for the key: "not found"
	// proves it is gone.
	KMSAnswer string `json:"kms_answer"`
	Gone      bool   `json:"gone"`
}

// CanaryEvidence: a fresh key wrapped and unwrapped a data key after the
// shreds (the key service still serves other keys).
type CanaryEvidence struct {
	Key string `json:"key"`
	OK  bool   `json:"ok"`
	Err string `json:"error,omitempty"`
}

// ProtectionRule summarizes a data-protection rule of the policy.
type ProtectionRule struct {
	Name    string   `json:"name"`
	Match   string   `json:"match"`
	Fields  []string `json:"fields"`
	KEK     string   `json:"kek"`
	Sign    bool     `json:"sign"`
	Readers []string `json:"readers"`
}
