package crypto

import "context"

// KMS is the key service crypto needs: it wraps data keys under named
// key-encryption keys (KEKs) and derives deterministic keys from them. It
// is called once per data key, never per record. Implementations must
// wrap failures with ErrUnavailable, and with ErrKeyNotFound as well when
// the KEK does not exist.
type KMS interface {
	// GenerateDataKey returns a fresh random key of size bytes and its
	// wrapped form under the current version of kek.
	GenerateDataKey(ctx context.Context, kek string, size int) (plaintext []byte, wrapped string, err error)
	// UnwrapDataKeys unwraps data keys wrapped under kek in one call.
	// out[i] answers wrapped[i]; a key that cannot be unwrapped on its own
	// (destroyed version, tampered) has a nil Key and an Err.
	UnwrapDataKeys(ctx context.Context, kek string, wrapped []string) ([]Unwrapped, error)
	// DeriveKey returns size bytes derived deterministically (a PRF) from
	// kek at version and label. version "" means the current version; the
	// version used is returned. Equal inputs give equal keys on every
	// instance.
	DeriveKey(ctx context.Context, kek, version string, label []byte, size int) (key []byte, usedVersion string, err error)
}

// Unwrapped is one result of KMS.UnwrapDataKeys.
type Unwrapped struct {
	Key []byte
	Err error
}

// KeyAdmin manages KEKs. Both providers implement it; `kguard keys` uses it.
type KeyAdmin interface {
	// CreateKey creates kek if it does not exist (no error if it does).
	CreateKey(ctx context.Context, kek string) error
	// RotateKey adds a new version to kek and makes it current; old
	// versions keep decrypting.
	RotateKey(ctx context.Context, kek string) error
	// DestroyKey deletes kek and all its versions, irrecoverably.
	DestroyKey(ctx context.Context, kek string) error
}

// KeyService is a KMS that can also manage its keys.
type KeyService interface {
	KMS
	KeyAdmin
}
