package crypto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Options configures a Protector.
type Options struct {
	// KMS wraps and derives data keys (required).
	KMS KMS
	// Keys tunes data-key lifetimes and caches.
	Keys KeyOptions
	// Signer signs records of rules with Sign set (nil: such rules fail with
	// ErrUnavailable).
	Signer *Signer
	// Verifier checks kguard.sig on fetch (nil: FetchOptions.Verify fails).
	Verifier *Verifier
	// BatchSignatures signs each ProtectBatch call of more than one record
	// with one Ed25519 signature over a Merkle root (kguard.sig version 2,
	// about 32 bytes per doubling of the batch size more per record), instead
	// of one signature per record (version 1). Verification accepts both.
	BatchSignatures bool
	// FormatVersion is the record format written: 2 (the default) or 1
	// (kguard.enc v1 per record, no producer identity). Every version is
	// read.
	FormatVersion int
	// BatchDigest is the hash a format 2 batch signature is computed over:
	// "blake3" (the default, kguard.sig mode 3) or "sha256" (mode 1: only
	// FIPS 140-approved algorithms). Both are always verified.
	BatchDigest string
	// SealPerField encrypts every AES-GCM field of a format 2 batch with
	// its own AEAD call, IV and tag, as kguard before sealed batches did.
	// The default seals a batch's fields once per data key where the batch
	// context is written once (ProduceOptions.Batched): smaller records and
	// about a quarter less CPU, but only readers that know sealed batches
	// decrypt them (set this until every instance reading the topics runs
	// a kguard that does). Both are always read.
	SealPerField bool
	// SubjectPepper keys the hash that turns a subject id into its KEK name
	// (required for per-subject fields; keep it secret and stable).
	SubjectPepper []byte
	// SubjectKeyPrefix prefixes subject KEK names (default "kguard-subject-").
	SubjectKeyPrefix string
	// Logger (nil: no logs). Payloads and keys are never logged.
	Logger *zap.Logger
	// Now is the clock for signature timestamps (tests).
	Now func() time.Time
}

// Protector encrypts, signs, decrypts and verifies records. It is safe for
// concurrent use; create one per process and share it.
type Protector struct {
	keys      *keyManager
	signer    *Signer
	verify    *Verifier
	batchSig  bool
	format    int
	batchMode uint8 // kguard.sig mode of format 2 batch signatures
	perField  bool  // Options.SealPerField
	pepper    []byte
	sprefix   string
	log       *zap.Logger
	now       func() time.Time
	paths     sync.Map // locator -> []pathSeg
}

// New returns a Protector.
func New(o Options) (*Protector, error) {
	if o.KMS == nil {
		return nil, errors.New("crypto: Options.KMS is required")
	}
	if o.SubjectKeyPrefix == "" {
		o.SubjectKeyPrefix = "kguard-subject-"
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch o.FormatVersion {
	case 0:
		o.FormatVersion = 2
	case 1, 2:
	default:
		return nil, fmt.Errorf("crypto: unknown format version %d", o.FormatVersion)
	}
	var batchMode uint8
	switch o.BatchDigest {
	case "", "blake3":
		batchMode = sigModeBatchB3
	case "sha256":
		batchMode = sigModeBatch
	default:
		return nil, fmt.Errorf("crypto: unknown batch digest %q (blake3 or sha256)", o.BatchDigest)
	}
	return &Protector{
		keys:      newKeyManager(o.KMS, o.Keys),
		signer:    o.Signer,
		verify:    o.Verifier,
		batchSig:  o.BatchSignatures,
		format:    o.FormatVersion,
		batchMode: batchMode,
		perField:  o.SealPerField,
		pepper:    bytes.Clone(o.SubjectPepper),
		sprefix:   o.SubjectKeyPrefix,
		log:       o.Logger,
		now:       o.Now,
	}, nil
}

// sealing reports whether a format 2 batch is sealed per key (sealed.go).
func (p *Protector) sealing(o ProduceOptions, prot *Protection) bool {
	return p.format >= 2 && o.Batched && !p.perField && len(prot.fields) > 0
}

// SubjectKeyName returns the KEK name that holds subject's key.
func (p *Protector) SubjectKeyName(subject string) string {
	return subjectKEK(p.sprefix, p.pepper, subject)
}

// Shred destroys the data subject's key in the KMS (the KMS must implement
// KeyAdmin) and forgets it here. Every field encrypted for the subject
// becomes unreadable; other instances stop reading it when their cached
// copy expires (KeyOptions.CacheTTL).
func (p *Protector) Shred(ctx context.Context, subject string) error {
	if len(p.pepper) == 0 {
		return errors.New("crypto: no subject pepper configured")
	}
	admin, ok := p.keys.kms.(KeyAdmin)
	if !ok {
		return errors.New("crypto: the KMS cannot destroy keys")
	}
	kek := p.SubjectKeyName(subject)
	if err := admin.DestroyKey(ctx, kek); err != nil && !errors.Is(err, ErrKeyNotFound) {
		return unavailable("crypto: shred", err)
	}
	p.keys.forget(kek)
	p.log.Info("subject key destroyed", zap.String("kek", kek))
	return nil
}

// KMSCalls returns how many KMS calls this Protector made (for tests and
// metrics).
func (p *Protector) KMSCalls() uint64 { return p.keys.kmsOps.Load() }

// grown returns s emptied, with room for n elements, reusing its memory
// when it has enough.
func grown[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, 0, n)
	}
	return s[:0]
}

func seal(k *dataKey, pt, aad []byte) ([]byte, error) {
	return k.sealAppend(make([]byte, 0, k.sealedLen(len(pt))), pt, aad, nil)
}

// open returns a new slice, never nil (an empty plaintext stays empty, not
// null).
func open(k *dataKey, ct, aad []byte) ([]byte, error) {
	return k.openAppend(make([]byte, 0, max(len(ct)-tinkPrefixSize-sivSize, 0)), ct, aad)
}

// nthHeader returns the value of the n-th header called name that is not
// null (only those are encrypted).
func nthHeader(hs []Header, name string, n int) []byte {
	for _, h := range hs {
		if h.Key == name && h.Value != nil {
			if n == 0 {
				return h.Value
			}
			n--
		}
	}
	return nil
}

func setNthHeader(hs []Header, name string, n int, v []byte) {
	for i := range hs {
		if hs[i].Key == name && hs[i].Value != nil {
			if n == 0 {
				hs[i].Value = v
				return
			}
			n--
		}
	}
}

func findHeader(hs []Header, name string) ([]byte, int) {
	var v []byte
	n := 0
	for _, h := range hs {
		if h.Key == name {
			if n == 0 {
				v = h.Value
			}
			n++
		}
	}
	return v, n
}
