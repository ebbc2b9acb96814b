package crypto

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinked "github.com/tink-crypto/tink-go/v2/signature/ed25519"
	"github.com/tink-crypto/tink-go/v2/tink"
	"go.uber.org/zap"
)

// Trust between instances (docs/crypto.md, "Trust between instances").
//
// Every kguard instance signs with its own key, named by a globally unique
// key id of the form <entry>/<version>:
//
//   - a local Tink keyset: <instance id>/<Tink key id>, e.g. app-a/1234567
//   - an OpenBao transit ed25519 key: bao:<transit key>/v<version>
//
// A TrustStore holds the public keys of the instances a verifier trusts,
// listed in one JSON file (TrustFile) next to their public keysets, with
// revocation times.

// Errors of signature key look-ups (wrapped in the signature check's error).
var (
	// ErrUnknownSigningKey: no trusted key has the key id a signature names.
	ErrUnknownSigningKey = errors.New("crypto: unknown signing key")
	// ErrSigningKeyRevoked: the key was revoked at or before the signing time.
	ErrSigningKeyRevoked = errors.New("crypto: signing key revoked")
)

// Trust entry sources.
const (
	TrustSourceKeyset  = "keyset"
	TrustSourceTransit = "transit"
)

// transitEntryPrefix starts the entry name (and key ids) of transit keys.
const transitEntryPrefix = "bao:"

// TransitKeyID is the key id of version v of transit key name.
func TransitKeyID(name string, v int) string {
	return transitEntryPrefix + name + "/v" + strconv.Itoa(v)
}

// TrustFile is the trust store document (JSON). Keyset paths are relative
// to the file's directory.
type TrustFile struct {
	Version int          `json:"version"`
	Entries []TrustEntry `json:"entries"`
	// Revoked maps an entry name (all its keys) or one key id to the time
	// it was revoked: signatures made at or after it fail.
	Revoked map[string]time.Time `json:"revoked,omitempty"`
}

// TrustEntry is one trusted instance (or transit key).
type TrustEntry struct {
	// Name: the instance id (keyset), or bao:<transit key> (transit).
	Name       string    `json:"name"`
	Source     string    `json:"source"`
	Keyset     string    `json:"keyset,omitempty"`
	TransitKey string    `json:"transit_key,omitempty"`
	Added      time.Time `json:"added"`
}

// ValidInstanceID checks an instance id (the entry name of a keyset, the
// prefix of its key ids): letters, digits, . _ - only.
func ValidInstanceID(id string) error {
	if id == "" || len(id) > 100 || id == "." || id == ".." || !keyNameChars(id) {
		return fmt.Errorf("crypto: bad instance id %q (allowed: letters, digits, . _ -)", id)
	}
	return nil
}

// keyNameChars reports whether s holds only letters, digits, . _ and -.
func keyNameChars(s string) bool {
	for _, r := range s {
		if !(r == '_' || r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ReadTrustFile reads a trust store file.
func ReadTrustFile(path string) (*TrustFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: trust store: %w", err)
	}
	var f TrustFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("crypto: trust store %s: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("crypto: trust store %s: version %d, want 1", path, f.Version)
	}
	seen := map[string]bool{}
	for _, e := range f.Entries {
		if seen[e.Name] {
			return nil, fmt.Errorf("crypto: trust store %s: entry %q twice", path, e.Name)
		}
		seen[e.Name] = true
		switch e.Source {
		case TrustSourceKeyset:
			if err := ValidInstanceID(e.Name); err != nil {
				return nil, fmt.Errorf("crypto: trust store %s: %w", path, err)
			}
			if e.Keyset == "" || filepath.IsAbs(e.Keyset) || strings.Contains(e.Keyset, "..") {
				return nil, fmt.Errorf("crypto: trust store %s: entry %q: keyset must be a file name in the store's directory", path, e.Name)
			}
		case TrustSourceTransit:
			if err := validTransitName(e.TransitKey); err != nil || e.Name != transitEntryPrefix+e.TransitKey {
				return nil, fmt.Errorf("crypto: trust store %s: entry %q: transit_key %q (name must be %s<transit_key>)", path, e.Name, e.TransitKey, transitEntryPrefix)
			}
		default:
			return nil, fmt.Errorf("crypto: trust store %s: entry %q: source %q, want keyset or transit", path, e.Name, e.Source)
		}
	}
	return &f, nil
}

// Write stores f at path atomically (mode 0644: public keys only).
func (f *TrustFile) Write(path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("crypto: trust store: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'), 0o644, false)
}

func (f *TrustFile) entry(name string) *TrustEntry {
	for i := range f.Entries {
		if f.Entries[i].Name == name {
			return &f.Entries[i]
		}
	}
	return nil
}

// readTrustFileOrNew is ReadTrustFile, or an empty store when path is
// missing.
func readTrustFileOrNew(path string) (*TrustFile, error) {
	f, err := ReadTrustFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &TrustFile{Version: 1}, nil
	}
	return f, err
}

// TrustAddKeyset adds instance name's public keyset (the file
// `kguard keys init` writes as signing-keyset.pub.json) to the trust store
// at storePath (created if missing): it is copied next to the store as
// <name>.pub.json. A keyset holding private keys is refused.
func TrustAddKeyset(storePath, name, pubKeyset string, now time.Time) error {
	if err := ValidInstanceID(name); err != nil {
		return err
	}
	b, err := os.ReadFile(pubKeyset)
	if err != nil {
		return fmt.Errorf("crypto: trust add: %w", err)
	}
	h, err := keyset.ReadWithNoSecrets(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		if _, perr := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b))); perr == nil {
			return fmt.Errorf("crypto: trust add: %s holds private keys: give its public keyset (kguard keys init writes signing-keyset.pub.json)", pubKeyset)
		}
		return fmt.Errorf("crypto: trust add: %s is not a public Tink keyset: %w", pubKeyset, err)
	}
	if _, err := keysetVerifiers(name, h); err != nil {
		return fmt.Errorf("crypto: trust add: %w", err)
	}
	f, err := readTrustFileOrNew(storePath)
	if err != nil {
		return err
	}
	if f.entry(name) != nil {
		return fmt.Errorf("crypto: trust add: %q is already in the trust store", name)
	}
	file := name + ".pub.json"
	if err := writeFileAtomic(filepath.Join(filepath.Dir(storePath), file), b, 0o644, false); err != nil {
		return err
	}
	f.Entries = append(f.Entries, TrustEntry{Name: name, Source: TrustSourceKeyset, Keyset: file, Added: now.UTC()})
	return f.Write(storePath)
}

// TrustAddTransit adds OpenBao transit key name (type ed25519; every
// version, present and future) to the trust store at storePath.
func TrustAddTransit(storePath, name string, now time.Time) error {
	if err := validTransitName(name); err != nil {
		return err
	}
	f, err := readTrustFileOrNew(storePath)
	if err != nil {
		return err
	}
	if f.entry(transitEntryPrefix+name) != nil {
		return fmt.Errorf("crypto: trust add: %s%s is already in the trust store", transitEntryPrefix, name)
	}
	f.Entries = append(f.Entries, TrustEntry{Name: transitEntryPrefix + name, Source: TrustSourceTransit, TransitKey: name, Added: now.UTC()})
	return f.Write(storePath)
}

// TrustRevoke revokes id (an entry name: all its keys; or one key id
// <entry>/<version>) at time at (truncated to the millisecond, the
// resolution of signing times): signatures made at or after at fail, older
// ones still verify. An earlier revocation of id is kept. It returns the
// revocation time in force.
func TrustRevoke(storePath, id string, at time.Time) (time.Time, error) {
	f, err := ReadTrustFile(storePath)
	if err != nil {
		return time.Time{}, err
	}
	entry, _, _ := strings.Cut(id, "/")
	if f.entry(entry) == nil {
		return time.Time{}, fmt.Errorf("crypto: trust remove: %q is not in the trust store", entry)
	}
	if f.Revoked == nil {
		f.Revoked = map[string]time.Time{}
	}
	at = at.UTC().Truncate(time.Millisecond) // signing times are in ms: round towards revoking
	if old, ok := f.Revoked[id]; ok && !old.After(at) {
		return old, nil
	}
	f.Revoked[id] = at
	return at, f.Write(storePath)
}

// TransitPublicKeys reads the public keys of an OpenBao transit ed25519
// key: version -> 32-byte public key (*TransitKMS implements it).
type TransitPublicKeys interface {
	SigningPublicKeys(ctx context.Context, name string) (map[int][]byte, error)
}

// TrustStoreOptions configure OpenTrustStore.
type TrustStoreOptions struct {
	// File is the trust store document (TrustFile).
	File string
	// Transit reads transit public keys; nil: transit entries fail to load.
	Transit TransitPublicKeys
	// Refresh is how often Run reloads (new transit versions). Default 1m.
	Refresh time.Duration
	// Lenient loads what it can: an entry that fails to load is listed with
	// its error instead of failing the load (for `kguard keys trust list`).
	Lenient bool
	Logger  *zap.Logger
}

// TrustStore is a SignatureKeys over the keys a TrustFile lists. Reload
// builds a new snapshot and swaps it in atomically; a failed reload keeps
// the old one.
type TrustStore struct {
	o   TrustStoreOptions
	cur atomic.Pointer[trustSnapshot]
	// miss asks Run for an early reload: a signature named a version of
	// a trusted transit key the store does not know yet (a rotation).
	miss chan struct{}
}

// missReloadInterval bounds the reloads that unknown transit key versions
// cause (a flood of forged key ids cannot turn into a flood of OpenBao
// requests).
const missReloadInterval = 5 * time.Second

type trustSnapshot struct {
	keys    map[string]*trustedKey // key id ->
	entries map[string]string      // entry name -> source
	list    []TrustedKey
}

type trustedKey struct {
	v         tink.Verifier
	revokedAt time.Time // zero: not revoked
}

// TrustedKey is one key of the trust store, as listed.
type TrustedKey struct {
	KeyID   string
	Source  string // keyset <file> or transit <key>
	Added   time.Time
	Revoked time.Time // zero: not revoked
	Err     error     // Lenient: why the entry's keys could not be loaded
}

// OpenTrustStore loads the trust store. Run keeps it current.
func OpenTrustStore(ctx context.Context, o TrustStoreOptions) (*TrustStore, error) {
	if o.File == "" {
		return nil, errors.New("crypto: trust store: no file")
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Minute
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &TrustStore{o: o, miss: make(chan struct{}, 1)}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the store file, its keysets and the transit keys again and
// swaps the new snapshot in; on error the old one stays.
func (s *TrustStore) Reload(ctx context.Context) error {
	snap, err := s.load(ctx)
	if err != nil {
		return err
	}
	s.cur.Store(snap)
	return nil
}

func (s *TrustStore) load(ctx context.Context) (*trustSnapshot, error) {
	f, err := ReadTrustFile(s.o.File)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(s.o.File)
	snap := &trustSnapshot{keys: map[string]*trustedKey{}, entries: map[string]string{}}
	for _, e := range f.Entries {
		var vs map[string]tink.Verifier
		var src string
		switch e.Source {
		case TrustSourceKeyset:
			src = "keyset " + e.Keyset
			vs, err = loadPublicKeyset(e.Name, filepath.Join(dir, e.Keyset))
		case TrustSourceTransit:
			src = "transit " + e.TransitKey
			vs, err = transitVerifiers(ctx, s.o.Transit, e.TransitKey)
		}
		if err != nil {
			if !s.o.Lenient {
				return nil, fmt.Errorf("crypto: trust store entry %q: %w", e.Name, err)
			}
			snap.list = append(snap.list, TrustedKey{KeyID: e.Name, Source: src, Added: e.Added, Revoked: f.Revoked[e.Name], Err: err})
			continue
		}
		snap.entries[e.Name] = e.Source
		for id, v := range vs {
			at := earliest(f.Revoked[e.Name], f.Revoked[id]).Truncate(time.Millisecond)
			snap.keys[id] = &trustedKey{v: v, revokedAt: at}
			snap.list = append(snap.list, TrustedKey{KeyID: id, Source: src, Added: e.Added, Revoked: at})
		}
	}
	sort.Slice(snap.list, func(i, j int) bool { return snap.list[i].KeyID < snap.list[j].KeyID })
	return snap, nil
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// Keys lists the keys of the current snapshot, sorted by key id.
func (s *TrustStore) Keys() []TrustedKey { return s.cur.Load().list }

// Has reports whether entry (the part of a key id before "/") is in the
// store.
func (s *TrustStore) Has(entry string) bool { return s.cur.Load().entries[entry] != "" }

// VerifierFor implements SignatureKeys.
func (s *TrustStore) VerifierFor(keyID string, signedAt time.Time) (tink.Verifier, error) {
	snap := s.cur.Load()
	k := snap.keys[keyID]
	if k == nil {
		if entry, _, _ := strings.Cut(keyID, "/"); snap.entries[entry] == TrustSourceTransit {
			select { // Run reloads soon; this signature fails now
			case s.miss <- struct{}{}:
			default:
			}
		}
		return nil, ErrUnknownSigningKey
	}
	if !k.revokedAt.IsZero() && !signedAt.Before(k.revokedAt) {
		return nil, fmt.Errorf("%w at %s (signed at %s)", ErrSigningKeyRevoked,
			k.revokedAt.UTC().Format(time.RFC3339Nano), signedAt.UTC().Format(time.RFC3339Nano))
	}
	return k.v, nil
}

// Run reloads the store when a file in its directory changes (fsnotify),
// every Refresh, and (at most every 5s) when a signature names an unknown
// version of a trusted transit key (new versions after a rotation), until
// ctx ends. A failed reload is logged and the old keys stay.
func (s *TrustStore) Run(ctx context.Context) error { return s.run(ctx, nil) }

func (s *TrustStore) run(ctx context.Context, onReload func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("crypto: trust store watch: %w", err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(s.o.File)); err != nil {
		return fmt.Errorf("crypto: trust store watch: %w", err)
	}
	tick := time.NewTicker(s.o.Refresh)
	defer tick.Stop()
	const debounce = 100 * time.Millisecond
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var lastMiss time.Time
	reload := func(why string) {
		err := s.Reload(ctx)
		if err != nil {
			s.o.Logger.Error("trust store reload failed; the previous keys stay in force", zap.String("cause", why), zap.Error(err))
		} else {
			s.o.Logger.Info("trust store reloaded", zap.String("cause", why), zap.Int("keys", len(s.Keys())))
		}
		if onReload != nil {
			onReload(err)
		}
	}
	// a change between the load and the start of the watch is not missed
	reload("watch started")
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			s.o.Logger.Warn("trust store watch error", zap.Error(err))
		case <-timer.C:
			reload("file changed")
		case <-tick.C:
			reload("periodic refresh")
		case <-s.miss:
			if time.Since(lastMiss) >= missReloadInterval {
				lastMiss = time.Now()
				reload("unknown transit key version")
			}
		}
	}
}

// loadPublicKeyset reads a public Tink keyset file of instance entry.
func loadPublicKeyset(entry, path string) (map[string]tink.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h, err := keyset.ReadWithNoSecrets(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return nil, fmt.Errorf("parse public keyset %s: %w", path, err)
	}
	return keysetVerifiers(entry, h)
}

// keysetVerifiers returns one verifier per key of a Tink Ed25519 keyset,
// by key id <prefix>/<Tink key id> (prefix "": the bare Tink id). Each
// verifier accepts only its own key: a signature by another key of the
// keyset (a revoked one) does not verify under this key id.
func keysetVerifiers(prefix string, h *keyset.Handle) (map[string]tink.Verifier, error) {
	if pub, err := h.Public(); err == nil {
		h = pub
	}
	out := make(map[string]tink.Verifier, h.Len())
	for i := range h.Len() {
		e, err := h.Entry(i)
		if err != nil {
			return nil, err
		}
		if e.KeyStatus() != keyset.Enabled {
			continue
		}
		pk, ok := e.Key().(*tinked.PublicKey)
		if !ok {
			return nil, fmt.Errorf("key %d is not an Ed25519 public key", e.KeyID())
		}
		p, _ := pk.Parameters().(*tinked.Parameters)
		if p == nil || p.Variant() == tinked.VariantLegacy {
			return nil, fmt.Errorf("key %d: unsupported Ed25519 variant", e.KeyID())
		}
		id := strconv.FormatUint(uint64(e.KeyID()), 10)
		if prefix != "" {
			id = prefix + "/" + id
		}
		out[id] = ed25519Verifier{pub: pk.KeyBytes(), prefix: pk.OutputPrefix()}
	}
	if len(out) == 0 {
		return nil, errors.New("no enabled key in the keyset")
	}
	return out, nil
}

// transitVerifiers returns a verifier per version of transit key name.
func transitVerifiers(ctx context.Context, t TransitPublicKeys, name string) (map[string]tink.Verifier, error) {
	if t == nil {
		return nil, errors.New("transit keys need crypto.kms: vault")
	}
	keys, err := t.SigningPublicKeys(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make(map[string]tink.Verifier, len(keys))
	for v, pub := range keys {
		out[TransitKeyID(name, v)] = ed25519Verifier{pub: pub}
	}
	return out, nil
}

// ed25519Verifier is one Ed25519 public key, with the Tink output prefix
// its signatures start with (empty for transit: raw signatures). It uses
// the standard library's Ed25519, which Tink itself uses underneath; Tink
// does not let code outside it build a verifier from one key.
type ed25519Verifier struct {
	pub    []byte
	prefix []byte
}

func (v ed25519Verifier) Verify(sig, data []byte) error {
	if len(sig) != len(v.prefix)+ed25519.SignatureSize || !bytes.Equal(sig[:len(v.prefix)], v.prefix) {
		return errors.New("crypto: signature not made by this key")
	}
	if len(v.pub) != ed25519.PublicKeySize || !ed25519.Verify(v.pub, data, sig[len(v.prefix):]) {
		return errors.New("crypto: invalid signature")
	}
	return nil
}

// InstanceKeys is the verifier's key look-up of an instance: its own
// signing keys and a trust store of other instances. An entry the trust
// store lists is always looked up there, so revoking an instance's own key
// in a shared store also applies to it.
type InstanceKeys struct {
	own   map[string]tink.Verifier // by key id
	trust *TrustStore              // nil: none
}

// NewInstanceKeys returns the keys of instance (may be "") with signing
// keyset own (private or public; key ids <instance>/<Tink id>, and bare
// Tink ids from before instance ids) and trust store trust (may be nil).
func NewInstanceKeys(instance string, own *keyset.Handle, trust *TrustStore) (*InstanceKeys, error) {
	k := &InstanceKeys{own: map[string]tink.Verifier{}, trust: trust}
	if own != nil {
		vs, err := keysetVerifiers("", own)
		if err != nil {
			return nil, fmt.Errorf("crypto: own signing keyset: %w", err)
		}
		for id, v := range vs {
			k.own[id] = v
			if instance != "" {
				k.own[instance+"/"+id] = v
			}
		}
	}
	return k, nil
}

// NewTransitInstanceKeys returns the keys of an instance that signs with
// transit key name (its versions now) and trust store trust (may be nil).
func NewTransitInstanceKeys(ctx context.Context, t TransitPublicKeys, name string, trust *TrustStore) (*InstanceKeys, error) {
	vs, err := transitVerifiers(ctx, t, name)
	if err != nil {
		return nil, fmt.Errorf("crypto: own transit signing key: %w", err)
	}
	return &InstanceKeys{own: vs, trust: trust}, nil
}

// VerifierFor implements SignatureKeys.
func (k *InstanceKeys) VerifierFor(keyID string, signedAt time.Time) (tink.Verifier, error) {
	if k.trust != nil {
		if entry, _, ok := strings.Cut(keyID, "/"); ok && k.trust.Has(entry) {
			return k.trust.VerifierFor(keyID, signedAt)
		}
	}
	if v := k.own[keyID]; v != nil {
		return v, nil
	}
	if k.trust != nil {
		return k.trust.VerifierFor(keyID, signedAt)
	}
	return nil, ErrUnknownSigningKey
}

// NewInstanceSigner is NewSigner with key ids <instance>/<Tink key id>
// (instance "": the bare Tink id, as before instance ids).
func NewInstanceSigner(h *keyset.Handle, instance string) (*Signer, error) {
	s, err := NewSigner(h)
	if err != nil {
		return nil, err
	}
	if instance != "" {
		if err := ValidInstanceID(instance); err != nil {
			return nil, err
		}
		s.keyID = instance + "/" + s.keyID
	}
	return s, nil
}

// ReadSigningKeyset reads a signing keyset file (encrypted under kek, or
// cleartext when kek is nil).
func ReadSigningKeyset(path string, kek tink.AEAD) (*keyset.Handle, error) {
	return readKeysetFile(path, kek)
}

// recheckKey is the key look-up that a signature found in a cache of
// verified signatures still needs: a key revoked (or removed from the
// trust store) after the signature was first verified must fail it.
func (v *Verifier) recheckKey(keyID string, signedAt int64) error {
	if _, err := v.keys.VerifierFor(keyID, time.UnixMilli(signedAt)); err != nil {
		return fmt.Errorf("signing key %s: %w", keyID, err)
	}
	return nil
}
