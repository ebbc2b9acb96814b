package config

import "time"

// Crypto configures field encryption and record signing. Which topics
// and fields are protected is the policy's decision (docs/policy.md); this
// says where the keys are. kguard serve builds the protector from it.
type Crypto struct {
	// KMS is "local" (a Tink key store file) or "vault" (OpenBao/Vault
	// transit). Empty: no data protection; kguard then refuses to forward
	// records to a topic whose policy says encrypt (fail closed).
	KMS   string     `yaml:"kms"`
	Local *LocalKMS  `yaml:"local"`
	Vault *VaultKMS  `yaml:"vault"`
	Keys  CryptoKeys `yaml:"keys"`
	// SigningKeyset is the Ed25519 Tink keyset that signs records
	// (`kguard keys init` creates it).
	SigningKeyset string `yaml:"signing_keyset"`
	// SigningKeysetKEK names an OpenBao/Vault transit key (kms: vault) that
	// encrypts the signing keyset file: the private key is then never on
	// disk in clear, and reading it takes OpenBao (`kguard keys
	// init-signing` creates such a file). Empty: a cleartext keyset file.
	SigningKeysetKEK string `yaml:"signing_keyset_kek"`
	// SubjectPepperFile holds the secret that turns data-subject ids into
	// key names (per-subject keys, crypto-shredding).
	SubjectPepperFile string `yaml:"subject_pepper_file"`
	// BatchSignatures signs a produce batch with one signature over a
	// Merkle root instead of one per record (docs/crypto.md; format
	// version 1 only: format 2 always signs once per batch).
	BatchSignatures bool `yaml:"batch_signatures"`
	// FormatVersion is the record format written: 2 (default: the batch
	// context once per batch on delete-policy topics, the producer's
	// identity signed) or 1 (kguard.enc and kguard.sig on every record).
	// Both are always read.
	FormatVersion int `yaml:"format_version"`
}

// LocalKMS is the embedded key store.
type LocalKMS struct {
	KeystoreFile string `yaml:"keystore_file"`
	// AutoCreate creates a missing key-encryption key on first use.
	AutoCreate bool `yaml:"auto_create"`
}

// VaultKMS is OpenBao/Vault transit.
type VaultKMS struct {
	Address   string `yaml:"address"`
	Namespace string `yaml:"namespace"`
	Mount     string `yaml:"mount"`
	// TokenFile holds a token; or AppRole below. The VAULT_TOKEN
	// environment variable is used when neither is set.
	TokenFile      string        `yaml:"token_file"`
	AppRoleID      string        `yaml:"approle_role_id"`
	AppSecretFile  string        `yaml:"approle_secret_id_file"`
	CAFile         string        `yaml:"ca_file"`
	ClientCertFile string        `yaml:"client_cert_file"`
	ClientKeyFile  string        `yaml:"client_key_file"`
	Timeout        time.Duration `yaml:"timeout"`
	CreateKeys     bool          `yaml:"create_keys"`
}

// CryptoKeys tunes data keys.
type CryptoKeys struct {
	// ActiveLifetime: a data key is replaced after this long (rotation
	// reaches new records within it; KMS outages are bridged for it).
	ActiveLifetime time.Duration `yaml:"active_lifetime"`
	MaxUses        uint64        `yaml:"max_uses"`
	// CacheTTL bounds how long an unwrapped key is reused for decryption
	// (and how long a shredded subject stays readable on other instances).
	CacheTTL  time.Duration `yaml:"cache_ttl"`
	CacheSize int           `yaml:"cache_size"`
}
