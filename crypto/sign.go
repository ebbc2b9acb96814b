package crypto

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Signer signs records with the primary key of an Ed25519 Tink keyset.
type Signer struct {
	s     tink.Signer
	keyID string
}

// NewSigner returns a Signer for a private Tink signature keyset (Ed25519).
func NewSigner(h *keyset.Handle) (*Signer, error) {
	s, err := signature.NewSigner(h)
	if err != nil {
		return nil, fmt.Errorf("crypto: signer: %w", err)
	}
	pe, err := h.Primary()
	if err != nil {
		return nil, fmt.Errorf("crypto: signer: %w", err)
	}
	return &Signer{s: s, keyID: strconv.FormatUint(uint64(pe.KeyID()), 10)}, nil
}

// KeyID is the id written into kguard.sig (the Tink id of the primary key).
func (s *Signer) KeyID() string { return s.keyID }

func (s *Signer) sign(ts int64, rec *Record) ([]byte, error) {
	msg := signedBytes(make([]byte, 0, 256+len(rec.Key)+len(rec.Value)), FormatVersion, ts, s.keyID, rec)
	sig, err := s.s.Sign(msg)
	if err != nil {
		return nil, err
	}
	h := sigHeader{version: FormatVersion, timestamp: ts, keyID: s.keyID, sig: sig}
	return h.marshal(), nil
}

// Sign appends a kguard.sig header to rec, signed at t. Records already
// carrying kguard.sig are refused (ErrInvalidRecord).
func (s *Signer) Sign(rec *Record, t time.Time) error {
	if _, n := findHeader(rec.Headers, SigHeader); n > 0 {
		return invalidf("record already has %s", SigHeader)
	}
	v, err := s.sign(t.UnixMilli(), rec)
	if err != nil {
		return unavailable("crypto: sign", err)
	}
	rec.Headers = append(rec.Headers, Header{Key: SigHeader, Value: v})
	return nil
}

// SignatureKeys finds the public key a signature names. A Verifier asks it
// once per signature (per batch root for batch signatures).
type SignatureKeys interface {
	// VerifierFor returns the verifier for the key keyID names, for a
	// signature made at signedAt. It fails when the key is unknown, or was
	// revoked at or before signedAt.
	VerifierFor(keyID string, signedAt time.Time) (tink.Verifier, error)
}

// keysetKeys is one Tink public keyset (every key in it, old and new after
// a rotation); the key id in the header is not consulted: Tink's output
// prefix in the signature picks the key.
type keysetKeys struct{ v tink.Verifier }

func (k keysetKeys) VerifierFor(string, time.Time) (tink.Verifier, error) { return k.v, nil }

// Verifier checks kguard.sig headers against the public keys of a
// SignatureKeys (by default one keyset that may hold several keys).
type Verifier struct {
	keys  SignatureKeys
	roots rootCache // batch signature roots that verified
}

// NewVerifier returns a Verifier for a Tink signature keyset (public, or
// private: its public part is used).
func NewVerifier(h *keyset.Handle) (*Verifier, error) {
	if pub, err := h.Public(); err == nil {
		h = pub
	}
	v, err := signature.NewVerifier(h)
	if err != nil {
		return nil, fmt.Errorf("crypto: verifier: %w", err)
	}
	return &Verifier{keys: keysetKeys{v: v}}, nil
}

// NewVerifierWithKeys returns a Verifier that looks each signature's key up
// in keys (a trust store of several instances' public keys).
func NewVerifierWithKeys(keys SignatureKeys) *Verifier { return &Verifier{keys: keys} }

// check verifies sig over msg with the key keyID names at signedAt (ms).
func (v *Verifier) check(keyID string, signedAt int64, sig, msg []byte) error {
	tv, err := v.keys.VerifierFor(keyID, time.UnixMilli(signedAt))
	if err != nil {
		return fmt.Errorf("signing key %s: %w", keyID, err)
	}
	if err := tv.Verify(sig, msg); err != nil {
		return fmt.Errorf("signature of key %s does not verify (a signed byte or the producer changed)", keyID)
	}
	return nil
}

func (v *Verifier) verify(rec *Record, hv []byte) error {
	var s verifyScratch
	return v.verifyWith(&s, rec, hv)
}

// verifyScratch is reused across the records of one batch.
type verifyScratch struct {
	buf []byte
	sh  batchSigHeader
	in  interner // key ids (nil: not shared)
	// last batch root (message hash) verified in this batch, so a batch's
	// records skip even the shared cache
	last    [32]byte
	hasLast bool
	// verifyComplete's working memory
	hs     []batchSigHeader
	leaves [][32]byte
	tree   merkleBatch
	// version 3
	s3 sig3Header
	dg digester
}

// grow makes buf large enough for rec's signed bytes.
func (s *verifyScratch) grow(rec *Record) {
	n := 64 + len(rec.Topic) + len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
	}
	if cap(s.buf) < n {
		s.buf = make([]byte, 0, n+n/4)
	}
}

func (v *Verifier) verifyWith(s *verifyScratch, rec *Record, hv []byte) error {
	if len(hv) > 0 && hv[0] == sigVersionBatch {
		return v.verifyBatch(s, rec, hv)
	}
	if len(hv) > 0 && hv[0] == sigVersion3 {
		if err := parseSig3(&s.s3, hv, s.in); err != nil {
			return err
		}
		return v.verifyTree3(s, &s.s3, rec)
	}
	sh, err := parseSigHeader(hv)
	if err != nil {
		return err
	}
	s.grow(rec)
	s.buf = signedBytes(s.buf[:0], sh.version, sh.timestamp, sh.keyID, rec)
	return v.check(sh.keyID, sh.timestamp, sh.sig, s.buf)
}

// Verify checks rec's kguard.sig: SigOK, SigBad (wrong, malformed or
// repeated header) or SigMissing.
func (v *Verifier) Verify(rec *Record) SigStatus {
	hv, n := findHeader(rec.Headers, SigHeader)
	switch {
	case n == 0:
		return SigMissing
	case n > 1:
		return SigBad
	}
	if v.verify(rec, hv) != nil {
		return SigBad
	}
	return SigOK
}

// SignedAt returns the signing time recorded in rec's kguard.sig header.
func SignedAt(rec *Record) (time.Time, error) {
	hv, n := findHeader(rec.Headers, SigHeader)
	if n != 1 {
		return time.Time{}, fmt.Errorf("crypto: %d %s headers", n, SigHeader)
	}
	if len(hv) > 0 && hv[0] == sigVersion3 {
		var sh sig3Header
		if err := parseSig3(&sh, hv, nil); err != nil {
			return time.Time{}, err
		}
		return time.UnixMilli(sh.timestamp).UTC(), nil
	}
	if len(hv) > 0 && hv[0] == sigVersionBatch {
		bh, err := parseBatchSigHeader(hv)
		if err != nil {
			return time.Time{}, err
		}
		return time.UnixMilli(bh.timestamp).UTC(), nil
	}
	sh, err := parseSigHeader(hv)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(sh.timestamp).UTC(), nil
}

// CreateSigningKeyset writes a new Ed25519 Tink keyset, as cleartext JSON
// with mode 0600, to path (which must not exist) and returns its key id.
// The file is a secret: protect it like a private key.
func CreateSigningKeyset(path string) (string, error) { return CreateSigningKeysetWith(path, nil) }

// CreateSigningKeysetWith is CreateSigningKeyset with the keyset encrypted
// under kek (Tink's encrypted keyset JSON; nil: cleartext). With a kek from
// TransitKMS.KeysetAEAD the private key is never on disk in clear.
func CreateSigningKeysetWith(path string, kek tink.AEAD) (string, error) {
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	if err != nil {
		return "", fmt.Errorf("crypto: new signing key: %w", err)
	}
	if err := writeKeysetFile(path, h, kek, true); err != nil {
		return "", err
	}
	pe, _ := h.Primary()
	return strconv.FormatUint(uint64(pe.KeyID()), 10), nil
}

// RotateSigningKeyset adds a new Ed25519 key to the keyset file and makes it
// primary; old signatures still verify. It returns the new key id.
func RotateSigningKeyset(path string) (string, error) { return RotateSigningKeysetWith(path, nil) }

// RotateSigningKeysetWith is RotateSigningKeyset for a keyset encrypted
// under kek (nil: cleartext); the file stays encrypted.
func RotateSigningKeysetWith(path string, kek tink.AEAD) (string, error) {
	h, err := readKeysetFile(path, kek)
	if err != nil {
		return "", err
	}
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(signature.ED25519KeyTemplate())
	if err != nil {
		return "", fmt.Errorf("crypto: rotate signing key: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return "", fmt.Errorf("crypto: rotate signing key: %w", err)
	}
	nh, err := m.Handle()
	if err != nil {
		return "", fmt.Errorf("crypto: rotate signing key: %w", err)
	}
	if err := writeKeysetFile(path, nh, kek, false); err != nil {
		return "", err
	}
	return strconv.FormatUint(uint64(id), 10), nil
}

// LoadSigner reads a signing keyset file written by CreateSigningKeyset.
func LoadSigner(path string) (*Signer, error) { return LoadSignerWith(path, nil) }

// LoadSignerWith reads a signing keyset file encrypted under kek (nil:
// cleartext).
func LoadSignerWith(path string, kek tink.AEAD) (*Signer, error) {
	h, err := readKeysetFile(path, kek)
	if err != nil {
		return nil, err
	}
	return NewSigner(h)
}

// LoadVerifier reads a signing keyset file (private or public) and returns a
// Verifier for its public keys.
func LoadVerifier(path string) (*Verifier, error) { return LoadVerifierWith(path, nil) }

// LoadVerifierWith is LoadVerifier for a keyset file encrypted under kek
// (nil: a cleartext private keyset or a public keyset).
func LoadVerifierWith(path string, kek tink.AEAD) (*Verifier, error) {
	if kek != nil {
		h, err := readKeysetFile(path, kek)
		if err != nil {
			return nil, err
		}
		return NewVerifier(h)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: read keyset: %w", err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		h, err = keyset.ReadWithNoSecrets(keyset.NewJSONReader(bytes.NewReader(b)))
		if err != nil {
			return nil, fmt.Errorf("crypto: parse keyset %s: %w", path, err)
		}
	}
	return NewVerifier(h)
}

// WritePublicKeyset writes the public part of a signing keyset file to
// out, for verifiers that must not hold the private key.
func WritePublicKeyset(path, out string) error { return WritePublicKeysetWith(path, nil, out) }

// WritePublicKeysetWith is WritePublicKeyset for a keyset file encrypted
// under kek (nil: cleartext). The public keyset is written in clear.
func WritePublicKeysetWith(path string, kek tink.AEAD, out string) error {
	h, err := readKeysetFile(path, kek)
	if err != nil {
		return err
	}
	pub, err := h.Public()
	if err != nil {
		return fmt.Errorf("crypto: public keyset: %w", err)
	}
	var buf bytes.Buffer
	if err := pub.WriteWithNoSecrets(keyset.NewJSONWriter(&buf)); err != nil {
		return fmt.Errorf("crypto: public keyset: %w", err)
	}
	return writeFileAtomic(out, buf.Bytes(), 0o644, true)
}

// keysetAD binds an encrypted signing keyset to its purpose (Tink's
// associated data for the keyset encryption).
var keysetAD = []byte("kguard record-signing keyset")

func readKeysetFile(path string, kek tink.AEAD) (*keyset.Handle, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: read keyset: %w", err)
	}
	var h *keyset.Handle
	if kek != nil {
		h, err = keyset.ReadWithAssociatedData(keyset.NewJSONReader(bytes.NewReader(b)), kek, keysetAD)
		if err != nil {
			return nil, unavailable("crypto: decrypt keyset "+path, err)
		}
		return h, nil
	}
	h, err = insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return nil, fmt.Errorf("crypto: parse keyset %s: %w", path, err)
	}
	return h, nil
}

func writeKeysetFile(path string, h *keyset.Handle, kek tink.AEAD, create bool) error {
	var buf bytes.Buffer
	if kek != nil {
		if err := h.WriteWithAssociatedData(keyset.NewJSONWriter(&buf), kek, keysetAD); err != nil {
			return unavailable("crypto: encrypt keyset "+path, err)
		}
	} else if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return fmt.Errorf("crypto: encode keyset: %w", err)
	}
	return writeFileAtomic(path, buf.Bytes(), 0o600, create)
}

// writeFileAtomic writes through a temporary file and a rename. With
// create, an existing path is an error.
func writeFileAtomic(path string, data []byte, mode os.FileMode, create bool) error {
	if create {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("crypto: %s already exists", path)
		}
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("crypto: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("crypto: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("crypto: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("crypto: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("crypto: write %s: %w", path, err)
	}
	return nil
}
