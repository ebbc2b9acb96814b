package config

import (
	"fmt"
	"time"
)

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
	// InstanceID names this instance in the key ids of its signatures
	// (<instance_id>/<Tink key id>), so many instances' keys never clash
	// in a trust store. Empty: the bare Tink key id (single instance).
	InstanceID string `yaml:"instance_id"`
	// SigningTransitKey signs through OpenBao/Vault transit (kms: vault)
	// with this ed25519 transit key: the private key never leaves OpenBao
	// (key ids bao:<key>/v<version>). Excludes signing_keyset.
	SigningTransitKey string `yaml:"signing_transit_key"`
	// Trust is the store of other instances' public keys that signatures
	// are verified against besides this instance's own.
	Trust Trust `yaml:"trust"`
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
	// BatchDigest is the hash under a format 2 batch signature: blake3
	// (default) or sha256 (only FIPS 140-approved algorithms; about 0.3 µs
	// more CPU per 1 KiB record). Both are always verified.
	BatchDigest string `yaml:"batch_digest"`
	// SealPerField seals every AES-GCM field of a format 2 batch alone
	// (its own IV and tag), as kguard did before sealed batches. The
	// default seals a delete-policy batch's fields once per data key
	// (docs/crypto.md, "Sealed batches"); set this while instances that
	// predate sealed batches still read the topics. Both are always read.
	SealPerField bool `yaml:"seal_per_field"`
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

// Trust is the trust store (docs/crypto.md, "Trust between instances"):
// a JSON file listing trusted instances' public keysets (files next to it)
// and OpenBao transit ed25519 keys, with revocation times. `kguard keys
// trust add|remove|list` edit it; kguard reloads it when it changes.
type Trust struct {
	File string `yaml:"file"`
	// Refresh is how often the store is re-read even without a file change
	// (new versions of transit keys). Default 1m.
	Refresh time.Duration `yaml:"refresh"`
}

// problems checks the signing and trust keys.
func (c *Crypto) problems() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config crypto.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.SigningTransitKey != "" {
		if c.KMS != "vault" {
			bad("signing_transit_key", "needs kms: vault")
		}
		if c.SigningKeyset != "" {
			bad("signing_transit_key", "excludes signing_keyset (one signing key per instance)")
		}
		if c.InstanceID != "" {
			bad("instance_id", "not used with signing_transit_key (the key id is bao:<key>/v<version>)")
		}
	}
	for _, r := range c.InstanceID {
		if !(r == '_' || r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			bad("instance_id", "%q: allowed are letters, digits, . _ -", c.InstanceID)
			break
		}
	}
	if c.Trust.Refresh < 0 {
		bad("trust.refresh", "%s is negative", c.Trust.Refresh)
	}
	if c.Trust.File != "" && c.KMS == "" {
		bad("trust.file", "needs crypto.kms (data protection on)")
	}
	return errs
}
