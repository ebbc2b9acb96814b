package crypto

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// LocalKMS is the embedded KMS: named KEKs kept as Tink keysets in one JSON
// file (cleartext, mode 0600: protect it like a private key). Each KEK is an
// AES-256-GCM keyset that wraps data keys and an HKDF-SHA256 PRF keyset that
// derives deterministic keys; rotation adds a key to both. Wrapped keys look
// like "local:<base64 Tink ciphertext>". It implements KMS and KeyAdmin.
type LocalKMS struct {
	path       string
	autoCreate bool

	mu   sync.RWMutex
	keks map[string]*localKEK
}

type localKEK struct {
	aeadH *keyset.Handle
	prfH  *keyset.Handle
	aead  tink.AEAD
	prf   *prf.Set
}

type localFile struct {
	Version int                     `json:"version"`
	KEKs    map[string]localFileKEK `json:"keks"`
}

type localFileKEK struct {
	AEAD json.RawMessage `json:"aead"`
	PRF  json.RawMessage `json:"prf"`
}

// LocalKMSOptions configures OpenLocalKMS.
type LocalKMSOptions struct {
	// AutoCreate creates a missing KEK on first use for encryption (data
	// key generation, current-version derivation) and saves the file.
	AutoCreate bool
}

// CreateLocalKeyStore writes a new key store file (which must not exist)
// holding the named KEKs. `kguard keys init` calls it.
func CreateLocalKeyStore(path string, keks ...string) error {
	k := &LocalKMS{path: path, keks: map[string]*localKEK{}}
	for _, name := range keks {
		if err := validKEKName(name); err != nil {
			return err
		}
		nk, err := newLocalKEK()
		if err != nil {
			return err
		}
		k.keks[name] = nk
	}
	b, err := k.encode()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600, true)
}

// OpenLocalKMS loads a key store file.
func OpenLocalKMS(path string, o LocalKMSOptions) (*LocalKMS, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: local KMS: %w", err)
	}
	var f localFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("crypto: local KMS %s: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("crypto: local KMS %s: unsupported version %d", path, f.Version)
	}
	k := &LocalKMS{path: path, autoCreate: o.AutoCreate, keks: map[string]*localKEK{}}
	for name, fk := range f.KEKs {
		ah, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(fk.AEAD)))
		if err != nil {
			return nil, fmt.Errorf("crypto: local KMS: KEK %q: %w", name, err)
		}
		ph, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(fk.PRF)))
		if err != nil {
			return nil, fmt.Errorf("crypto: local KMS: KEK %q: %w", name, err)
		}
		lk, err := localKEKFrom(ah, ph)
		if err != nil {
			return nil, fmt.Errorf("crypto: local KMS: KEK %q: %w", name, err)
		}
		k.keks[name] = lk
	}
	return k, nil
}

func validKEKName(name string) error {
	if name == "" || len(name) > 256 || strings.ContainsAny(name, "\x00\n") {
		return fmt.Errorf("crypto: bad KEK name %q", name)
	}
	return nil
}

func newLocalKEK() (*localKEK, error) {
	ah, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("crypto: new KEK: %w", err)
	}
	ph, err := keyset.NewHandle(prf.HKDFSHA256PRFKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("crypto: new KEK: %w", err)
	}
	return localKEKFrom(ah, ph)
}

func localKEKFrom(ah, ph *keyset.Handle) (*localKEK, error) {
	a, err := aead.New(ah)
	if err != nil {
		return nil, err
	}
	p, err := prf.NewPRFSet(ph)
	if err != nil {
		return nil, err
	}
	return &localKEK{aeadH: ah, prfH: ph, aead: a, prf: p}, nil
}

func (k *LocalKMS) encode() ([]byte, error) {
	f := localFile{Version: 1, KEKs: map[string]localFileKEK{}}
	for name, lk := range k.keks {
		var a, p bytes.Buffer
		if err := insecurecleartextkeyset.Write(lk.aeadH, keyset.NewJSONWriter(&a)); err != nil {
			return nil, err
		}
		if err := insecurecleartextkeyset.Write(lk.prfH, keyset.NewJSONWriter(&p)); err != nil {
			return nil, err
		}
		f.KEKs[name] = localFileKEK{AEAD: a.Bytes(), PRF: p.Bytes()}
	}
	return json.MarshalIndent(f, "", "  ")
}

// saveLocked writes the file; k.mu is held for writing.
func (k *LocalKMS) saveLocked() error {
	b, err := k.encode()
	if err != nil {
		return fmt.Errorf("crypto: local KMS: %w", err)
	}
	return writeFileAtomic(k.path, b, 0o600, false)
}

func notFound(kek string) error {
	return fmt.Errorf("%w: %w: KEK %q", ErrUnavailable, ErrKeyNotFound, kek)
}

func (k *LocalKMS) get(kek string, create bool) (*localKEK, error) {
	k.mu.RLock()
	lk := k.keks[kek]
	k.mu.RUnlock()
	if lk != nil {
		return lk, nil
	}
	if !create || !k.autoCreate {
		return nil, notFound(kek)
	}
	if err := k.CreateKey(context.Background(), kek); err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if lk = k.keks[kek]; lk == nil {
		return nil, notFound(kek)
	}
	return lk, nil
}

func wrapAD(kek string) []byte { return []byte("kguard/v1/dek\x00" + kek) }

// GenerateDataKey implements KMS.
func (k *LocalKMS) GenerateDataKey(_ context.Context, kek string, size int) ([]byte, string, error) {
	lk, err := k.get(kek, true)
	if err != nil {
		return nil, "", err
	}
	if size <= 0 || size > 1024 {
		return nil, "", fmt.Errorf("crypto: local KMS: bad key size %d", size)
	}
	pt := make([]byte, size)
	if _, err := rand.Read(pt); err != nil {
		return nil, "", unavailable("crypto: local KMS", err)
	}
	ct, err := lk.aead.Encrypt(pt, wrapAD(kek))
	if err != nil {
		return nil, "", unavailable("crypto: local KMS", err)
	}
	return pt, "local:" + base64.StdEncoding.EncodeToString(ct), nil
}

// UnwrapDataKeys implements KMS.
func (k *LocalKMS) UnwrapDataKeys(_ context.Context, kek string, wrapped []string) ([]Unwrapped, error) {
	lk, err := k.get(kek, false)
	if err != nil {
		return nil, err
	}
	out := make([]Unwrapped, len(wrapped))
	for i, w := range wrapped {
		b64, ok := strings.CutPrefix(w, "local:")
		if !ok {
			out[i].Err = errors.New("not a local wrapped key")
			continue
		}
		ct, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			out[i].Err = errors.New("wrapped key is not base64")
			continue
		}
		pt, err := lk.aead.Decrypt(ct, wrapAD(kek))
		if err != nil {
			// Tink reports an unknown key id and a bad tag alike.
			out[i].Err = errors.New("wrapped key does not decrypt (tampered, or its KEK version was destroyed)")
			continue
		}
		out[i].Key = pt
	}
	return out, nil
}

// DeriveKey implements KMS. Versions are "p<Tink key id>" of the PRF key.
func (k *LocalKMS) DeriveKey(_ context.Context, kek, version string, label []byte, size int) ([]byte, string, error) {
	lk, err := k.get(kek, version == "")
	if err != nil {
		return nil, "", err
	}
	id := lk.prf.PrimaryID
	if version != "" {
		n, err := strconv.ParseUint(strings.TrimPrefix(version, "p"), 10, 32)
		if err != nil || !strings.HasPrefix(version, "p") {
			return nil, "", fmt.Errorf("%w: bad version %q", ErrKeyNotFound, version)
		}
		id = uint32(n)
	}
	f, ok := lk.prf.PRFs[id]
	if !ok {
		return nil, "", notFound(kek + " version " + version)
	}
	out, err := f.ComputePRF(label, uint32(size))
	if err != nil {
		return nil, "", unavailable("crypto: local KMS", err)
	}
	return out, "p" + strconv.FormatUint(uint64(id), 10), nil
}

// CreateKey implements KeyAdmin.
func (k *LocalKMS) CreateKey(_ context.Context, kek string) error {
	if err := validKEKName(kek); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keks[kek] != nil {
		return nil
	}
	lk, err := newLocalKEK()
	if err != nil {
		return err
	}
	k.keks[kek] = lk
	if err := k.saveLocked(); err != nil {
		delete(k.keks, kek)
		return err
	}
	return nil
}

// RotateKey implements KeyAdmin.
func (k *LocalKMS) RotateKey(_ context.Context, kek string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	lk := k.keks[kek]
	if lk == nil {
		return notFound(kek)
	}
	ah, err := rotateHandle(lk.aeadH, aead.AES256GCMKeyTemplate())
	if err != nil {
		return err
	}
	ph, err := rotateHandle(lk.prfH, prf.HKDFSHA256PRFKeyTemplate())
	if err != nil {
		return err
	}
	nk, err := localKEKFrom(ah, ph)
	if err != nil {
		return err
	}
	k.keks[kek] = nk
	if err := k.saveLocked(); err != nil {
		k.keks[kek] = lk
		return err
	}
	return nil
}

func rotateHandle(h *keyset.Handle, tmpl *tinkpb.KeyTemplate) (*keyset.Handle, error) {
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(tmpl)
	if err != nil {
		return nil, fmt.Errorf("crypto: rotate: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, fmt.Errorf("crypto: rotate: %w", err)
	}
	return m.Handle()
}

// DestroyKey implements KeyAdmin: the KEK is removed from the file.
// (Removing bytes from a file does not scrub old disk blocks; use an
// encrypted filesystem, or OpenBao, when erasure must be physical.)
func (k *LocalKMS) DestroyKey(_ context.Context, kek string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	lk := k.keks[kek]
	if lk == nil {
		return notFound(kek)
	}
	delete(k.keks, kek)
	if err := k.saveLocked(); err != nil {
		k.keks[kek] = lk
		return err
	}
	return nil
}

// KEKs lists the KEK names in the store.
func (k *LocalKMS) KEKs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]string, 0, len(k.keks))
	for n := range k.keks {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var _ KeyService = (*LocalKMS)(nil)
