// Package crypto is kguard's data protection: field-level envelope encryption
// of Kafka records (AES-256-GCM, or deterministic AES-SIV), data-key
// management over a KMS (OpenBao/Vault transit, or a local Tink keyset file),
// per-data-subject keys for crypto-shredding, and Ed25519 record signatures.
//
// The package knows nothing of Kafka wire bytes: the proxy decodes record
// batches and hands it [Record] values. On produce it calls
// [Protector.ProtectBatch] with the topic's compiled [Protection]; on fetch it
// calls [Protector.UnprotectBatch] with the principal's [FetchOptions]. The
// byte formats are specified in docs/crypto.md.
package crypto

import (
	"errors"
	"fmt"
)

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is the part of a Kafka record that crypto reads and rewrites. A nil
// Key or Value is a Kafka null (a nil Value is a tombstone and is never
// encrypted).
type Record struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []Header
}

// Algorithm is a field encryption algorithm.
type Algorithm uint8

const (
	// AES256GCM is randomized AES-256-GCM (Tink, 12-byte nonce, 16-byte tag).
	AES256GCM Algorithm = 1
	// AES256SIV is deterministic AES-SIV (Tink, RFC 5297, 512-bit key): equal
	// plaintexts under the same key, topic and field give equal ciphertexts,
	// for equality joins and compacted keys.
	AES256SIV Algorithm = 2
)

// String returns the algorithm's name as used in configuration.
func (a Algorithm) String() string {
	switch a {
	case AES256GCM:
		return "AES256_GCM"
	case AES256SIV:
		return "AES256_SIV"
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// ParseAlgorithm reads an algorithm name ("AES256_GCM", "AES256_SIV"; also
// "aes-256-gcm", "aes-siv" and similar spellings).
func ParseAlgorithm(s string) (Algorithm, error) {
	switch normalizeName(s) {
	case "aes256gcm", "aesgcm", "gcm", "":
		return AES256GCM, nil
	case "aes256siv", "aessiv", "siv", "deterministic":
		return AES256SIV, nil
	}
	return 0, fmt.Errorf("crypto: unknown algorithm %q", s)
}

func normalizeName(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c == '-' || c == '_' || c == ' ':
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// Errors. Every error returned by this package wraps exactly one of
// ErrUnavailable, ErrInvalidRecord or ErrIntegrity (test with errors.Is), so
// the proxy can choose the Kafka error code.
var (
	// ErrUnavailable: a key could not be obtained now (KMS down, key missing,
	// permission denied, data key expired during an outage). Retriable:
	// answer the partition with a retriable Kafka error; nothing was
	// forwarded.
	ErrUnavailable = errors.New("crypto: key service unavailable")
	// ErrInvalidRecord: the record cannot be protected as the rule demands
	// (field of the wrong type, value not JSON, duplicate key on the path,
	// reserved header present). Permanent: answer INVALID_RECORD.
	ErrInvalidRecord = errors.New("crypto: invalid record")
	// ErrIntegrity: a protected record failed to decrypt or to verify
	// (tampered, moved ciphertext, malformed kguard header). Permanent.
	ErrIntegrity = errors.New("crypto: integrity check failed")
	// ErrKeyNotFound is wrapped (with ErrUnavailable) by KMS providers when
	// the named key does not exist (never created, or destroyed by Shred).
	ErrKeyNotFound = errors.New("crypto: key not found")
)

// IsRetriable reports whether err is temporary (a KMS problem) rather than a
// property of the record.
func IsRetriable(err error) bool { return errors.Is(err, ErrUnavailable) }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRecord, fmt.Sprintf(format, args...))
}

func integrityf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrIntegrity, fmt.Sprintf(format, args...))
}

// unavailable wraps a KMS failure as retriable (keeping ErrKeyNotFound etc.).
func unavailable(what string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
}
