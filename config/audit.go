package config

import "time"

// Audit configures the tamper-evident audit trail. The proxy itself
// only calls an Auditor; kguard serve builds the recorder from this.
type Audit struct {
	Enabled bool `yaml:"enabled"`
	// InstanceID names this instance's hash chain; it must stay the same
	// across restarts over one spool. Default: the host name.
	InstanceID string `yaml:"instance_id"`
	// SpoolDir is the on-disk spool between the hot path and Kafka.
	SpoolDir      string `yaml:"spool_dir"`
	SpoolMaxBytes int64  `yaml:"spool_max_bytes"`
	// OnFull is fail-closed (new requests are refused) or
	// continue-with-alarm (a gap marker is chained, a metric counts).
	OnFull string `yaml:"on_full"`
	// Fsync is always, interval (default) or never.
	Fsync string `yaml:"fsync"`
	// SigningKeyFile is the Ed25519 key (PEM) that signs checkpoints;
	// created by `kguard audit keygen`.
	SigningKeyFile     string        `yaml:"signing_key_file"`
	CheckpointEvery    int           `yaml:"checkpoint_every"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	Topic              AuditTopic    `yaml:"topic"`
	// Brokers overrides where the audit topic lives; default: the upstream
	// cluster, reached with kguard's upstream TLS and SASL identity.
	Brokers []string `yaml:"brokers"`
}

// AuditTopic is the append-only audit topic kguard creates when missing.
type AuditTopic struct {
	Name              string        `yaml:"name"`
	Partitions        int32         `yaml:"partitions"`
	ReplicationFactor int16         `yaml:"replication_factor"`
	MinInsyncReplicas int           `yaml:"min_insync_replicas"`
	Retention         time.Duration `yaml:"retention"`
}
