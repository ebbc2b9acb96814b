// Package audit writes kguard's tamper-evident audit trail.
//
// Every kguard instance chains its events: each event carries a sequence
// number and the SHA-256 hash of the previous event's canonical encoding.
// Events go first to a bounded on-disk spool (so the proxy's hot path never
// waits on Kafka) and are shipped in order by a background shipper to an
// append-only Kafka topic. Periodically the recorder appends a checkpoint
// event signed with Ed25519 over the root of an RFC 6962 Merkle tree of all
// event hashes of the instance. The verifier reads the topic back and checks
// sequence continuity, the hash chain, checkpoint signatures and roots.
//
// The event schema is documented in docs/audit.md.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SchemaVersion is the version of the event schema written by this package.
// It is stored in every event as "v".
const SchemaVersion = 1

// EventType names what happened.
type EventType string

// Event types. The string values are part of the schema.
const (
	EventConnectionOpen  EventType = "connection.open"
	EventConnectionClose EventType = "connection.close"
	EventAuthnSuccess    EventType = "authn.success"
	EventAuthnFailure    EventType = "authn.failure"
	EventAuthzDecision   EventType = "authz.decision"
	EventAdminOperation  EventType = "admin.operation"
	EventKeyOperation    EventType = "key.operation"
	EventPolicyReload    EventType = "policy.reload"
	// EventDataProtection records what data protection found or refused:
	// produced partitions that could not be encrypted and signed (or
	// carried a forged kguard.* header), and fetched records whose
	// signature was bad or missing or that could not be decrypted.
	EventDataProtection EventType = "data.protection"
	EventAuditStart     EventType = "audit.start"
	EventAuditStop      EventType = "audit.stop"
	EventGap            EventType = "audit.gap"
	EventCheckpoint     EventType = "audit.checkpoint"
)

var knownTypes = map[EventType]bool{
	EventConnectionOpen: true, EventConnectionClose: true, EventAuthnSuccess: true,
	EventAuthnFailure: true, EventAuthzDecision: true, EventAdminOperation: true,
	EventKeyOperation: true, EventPolicyReload: true, EventDataProtection: true, EventAuditStart: true,
	EventAuditStop: true, EventGap: true, EventCheckpoint: true,
}

// Decision values for Outcome.Decision.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// HashSize is the size of an event hash (SHA-256).
const HashSize = sha256.Size

// Hash is the SHA-256 hash of an event's canonical encoding.
type Hash [HashSize]byte

// String returns the lower-case hex form used in the schema.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash as lower-case hex.
func (h Hash) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(HashSize))
	hex.Encode(out, h[:])
	return out, nil
}

// UnmarshalText decodes a lower-case hex hash.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != hex.EncodedLen(HashSize) {
		return fmt.Errorf("audit: hash must be %d hex characters, got %d", hex.EncodedLen(HashSize), len(b))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("audit: bad hash: %w", err)
	}
	return nil
}

// HashEvent returns the chain hash of an encoded event: SHA-256 over the
// exact bytes of its canonical encoding (the Kafka record value).
func HashEvent(encoded []byte) Hash { return sha256.Sum256(encoded) }

// Event is one audit event (schema version 1). The proxy fills Type, Who,
// What, Where (client, listener) and Outcome; the Recorder fills Version,
// Seq, Prev, Time (when zero), Where.Instance and Where.Cluster.
type Event struct {
	Version int       `json:"v"`
	Type    EventType `json:"type"`
	// Seq is the per-instance sequence number, starting at 1.
	Seq uint64 `json:"seq"`
	// Prev is the hash of the instance's previous event (zero for seq 1).
	Prev Hash `json:"prev"`
	// Time is the UTC time the event was recorded.
	Time time.Time `json:"time"`

	Who        *Who              `json:"who,omitempty"`
	What       *What             `json:"what,omitempty"`
	Where      Where             `json:"where"`
	Outcome    *Outcome          `json:"outcome,omitempty"`
	Gap        *Gap              `json:"gap,omitempty"`
	Checkpoint *Checkpoint       `json:"checkpoint,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
}

// Who identifies the client principal.
type Who struct {
	Principal       string `json:"principal,omitempty"`
	Mechanism       string `json:"mechanism,omitempty"`
	CertFingerprint string `json:"cert_fp,omitempty"`
	ClientID        string `json:"client_id,omitempty"`
}

// What describes the request or operation.
type What struct {
	APIKey       int16  `json:"api_key"`
	APIName      string `json:"api_name,omitempty"`
	APIVersion   int16  `json:"api_version"`
	Operation    string `json:"operation,omitempty"`
	ResourceType string `json:"resource_type,omitempty"`
	ResourceName string `json:"resource_name,omitempty"`
	// Produce and Fetch summarize data requests per topic and partition.
	// They never contain record keys, values or headers.
	Produce []TopicSummary `json:"produce,omitempty"`
	Fetch   []TopicSummary `json:"fetch,omitempty"`
}

// TopicSummary counts records and bytes of one topic in a request.
type TopicSummary struct {
	Topic      string             `json:"topic"`
	Partitions []PartitionSummary `json:"partitions"`
}

// PartitionSummary counts records and bytes of one partition in a request.
type PartitionSummary struct {
	Partition int32 `json:"p"`
	Records   int64 `json:"records"`
	Bytes     int64 `json:"bytes"`
}

// Where says where the event happened.
type Where struct {
	Client   string `json:"client,omitempty"` // ip:port of the client
	Listener string `json:"listener,omitempty"`
	Instance string `json:"instance"`
	Cluster  string `json:"cluster,omitempty"`
}

// Outcome is the result of the operation.
type Outcome struct {
	Decision   string   `json:"decision,omitempty"` // DecisionAllow or DecisionDeny
	ErrorCode  int16    `json:"error_code"`
	Reasons    []string `json:"reasons,omitempty"`
	PolicyRev  string   `json:"policy_rev,omitempty"`
	DecisionID string   `json:"decision_id,omitempty"`
}

// Gap declares events that were dropped because the spool was full
// (continue-with-alarm mode).
type Gap struct {
	Dropped uint64    `json:"dropped"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
}

// Checkpoint is the signed head of the instance's Merkle tree. It covers
// the events with seq 1..Size (the checkpoint event itself is seq Size+1).
type Checkpoint struct {
	Origin    string `json:"origin"`
	Size      uint64 `json:"size"`
	Root      []byte `json:"root"` // RFC 6962 root hash (base64 in JSON)
	KeyID     string `json:"key_id"`
	Signature []byte `json:"sig"` // Ed25519 over CheckpointBody (base64 in JSON)
	// Range is the compact range of the tree [0, Size): the hashes of its
	// perfect subtrees, largest first (base64 in JSON). It hashes to Root,
	// so it is covered by the signature; a verifier that lacks the events
	// before this checkpoint (expired by retention) continues the tree
	// from here.
	Range [][]byte `json:"range,omitempty"`
}

// Encode returns the canonical encoding of e: compact JSON with the fields
// in schema order and map keys sorted, without a trailing newline.
func (e *Event) Encode() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("audit: encode event: %w", err)
	}
	return b, nil
}

// Limits: decoders accept events up to maxEventSize; Record refuses events
// larger than MaxRecordSize so one event always fits a Kafka produce batch
// (franz-go's default batch limit and the broker's message.max.bytes are
// about 1 MB).
const (
	maxEventSize  = 1 << 20
	MaxRecordSize = 512 << 10
)

// ErrMalformed is returned (wrapped) for undecodable events and spool records.
var ErrMalformed = errors.New("audit: malformed")

// DecodeEvent decodes and validates an encoded event. Unknown fields are
// rejected for the schema versions this package knows.
func DecodeEvent(b []byte) (Event, error) {
	var e Event
	if len(b) > maxEventSize {
		return e, fmt.Errorf("%w event: %d bytes exceeds %d", ErrMalformed, len(b), maxEventSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("%w event: %v", ErrMalformed, err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w event: trailing data", ErrMalformed)
	}
	if err := e.validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

func (e *Event) validate() error {
	switch {
	case e.Version != SchemaVersion:
		return fmt.Errorf("%w event: unsupported schema version %d", ErrMalformed, e.Version)
	case !knownTypes[e.Type]:
		return fmt.Errorf("%w event: unknown type %q", ErrMalformed, e.Type)
	case e.Seq == 0:
		return fmt.Errorf("%w event: seq must be >= 1", ErrMalformed)
	case e.Where.Instance == "":
		return fmt.Errorf("%w event: where.instance is empty", ErrMalformed)
	case e.Type == EventCheckpoint && e.Checkpoint == nil:
		return fmt.Errorf("%w event: checkpoint event without checkpoint", ErrMalformed)
	case e.Checkpoint != nil && len(e.Checkpoint.Range) > 64:
		return fmt.Errorf("%w event: checkpoint range of %d hashes", ErrMalformed, len(e.Checkpoint.Range))
	case e.Type == EventGap && e.Gap == nil:
		return fmt.Errorf("%w event: gap event without gap", ErrMalformed)
	}
	return nil
}
