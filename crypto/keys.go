package crypto

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tink-crypto/tink-go/v2/daead/subtle"
	"golang.org/x/sync/singleflight"
)

// kmsParallelism bounds concurrent KMS calls of one batch (many new data
// subjects).
const kmsParallelism = 8

// dataKey is a usable data key: its reference and its primitive. The
// primitives produce and read exactly Tink's ciphertexts for keys of the
// Tink output-prefix variant (prefix 0x01 || key id): AES-GCM is Tink's
// own construction (prefix || 12-byte random IV || ciphertext || tag, over
// the standard library's AES-GCM, as Tink does), AES-SIV is Tink's subtle
// AES-SIV with the prefix added here. Building them once per data key and
// sealing into caller-provided buffers keeps the per-field cost to the
// cipher itself (see docs/crypto.md, Performance); TestPrimitivesMatchTink
// checks them against Tink's full primitives both ways.
type dataKey struct {
	ref     keyRef
	gcm     cipher.AEAD
	siv     *subtle.AESSIV
	prefix  [tinkPrefixSize]byte
	expires time.Time
	uses    atomic.Uint64
}

const (
	tinkPrefixSize = 5
	gcmIVSize      = 12
	gcmTagSize     = 16
	sivSize        = 16
	maxFieldSize   = 1 << 30
)

// sealedLen is the ciphertext length of a plaintext of n bytes.
func (k *dataKey) sealedLen(n int) int {
	if k.gcm != nil {
		return tinkPrefixSize + gcmIVSize + n + gcmTagSize
	}
	return tinkPrefixSize + sivSize + n
}

// sealAppend appends the ciphertext of pt to dst. iv supplies the random
// IV of AES-GCM (gcmIVSize bytes, nil: read from crypto/rand).
func (k *dataKey) sealAppend(dst, pt, aad, iv []byte) ([]byte, error) {
	if len(pt) > maxFieldSize {
		return nil, fmt.Errorf("field of %d bytes too large", len(pt))
	}
	dst = append(dst, k.prefix[:]...)
	if k.gcm != nil {
		n := len(dst)
		dst = append(dst, make([]byte, gcmIVSize)...)
		if iv != nil {
			copy(dst[n:], iv)
		} else if _, err := rand.Read(dst[n:]); err != nil {
			return nil, err
		}
		return k.gcm.Seal(dst, dst[n:n+gcmIVSize], pt, aad), nil
	}
	ct, err := k.siv.EncryptDeterministically(pt, aad)
	if err != nil {
		return nil, err
	}
	return append(dst, ct...), nil
}

// openAppend appends the plaintext of ct to dst.
func (k *dataKey) openAppend(dst, ct, aad []byte) ([]byte, error) {
	if len(ct) < tinkPrefixSize || [tinkPrefixSize]byte(ct[:tinkPrefixSize]) != k.prefix {
		return nil, errors.New("ciphertext prefix does not match the key")
	}
	ct = ct[tinkPrefixSize:]
	if k.gcm != nil {
		if len(ct) < gcmIVSize+gcmTagSize {
			return nil, errors.New("ciphertext too short")
		}
		return k.gcm.Open(dst, ct[:gcmIVSize], ct[gcmIVSize:], aad)
	}
	pt, err := k.siv.DecryptDeterministically(ct, aad)
	if err != nil {
		return nil, err
	}
	return append(dst, pt...), nil
}

func keySize(a Algorithm) int {
	if a == AES256SIV {
		return 64
	}
	return 32
}

// deriveLabel is the PRF input for derived keys.
func deriveLabel(a Algorithm) []byte { return []byte("kguard/v1/derived-key/" + a.String()) }

// derivedKeyID gives every instance the same Tink key id for a derived key:
// a key check value (32 bits of a hash of the key). A subject key that was
// destroyed and created anew under the same name and version gets another
// id, so its old ciphertexts are recognized as erased, not as tampered.
func derivedKeyID(material []byte) uint32 {
	h := sha256.New()
	h.Write([]byte("kguard/v1/key-check\x00"))
	h.Write(material)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func newPrimitive(ref keyRef, material []byte) (*dataKey, error) {
	if len(material) != keySize(ref.alg) {
		return nil, fmt.Errorf("data key has %d bytes, want %d", len(material), keySize(ref.alg))
	}
	dk := &dataKey{ref: ref}
	dk.prefix[0] = 0x01 // Tink output prefix: TINK variant
	binary.BigEndian.PutUint32(dk.prefix[1:], ref.id)
	switch ref.alg {
	case AES256GCM:
		b, err := aes.NewCipher(material)
		if err != nil {
			return nil, err
		}
		if dk.gcm, err = cipher.NewGCM(b); err != nil {
			return nil, err
		}
	case AES256SIV:
		var err error
		// subtle.AESSIV keeps the key slice: give it its own copy
		if dk.siv, err = subtle.NewAESSIV(bytes.Clone(material)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown algorithm %d", ref.alg)
	}
	clear(material)
	return dk, nil
}

// KeyOptions tunes the data-key manager. Zero values take the defaults.
type KeyOptions struct {
	// ActiveLifetime: an active data key (and the current version of a
	// derived key) is replaced after this long (default 5m). During a KMS
	// outage, encryption keeps working until it expires.
	ActiveLifetime time.Duration
	// MaxUses: an AES-GCM data key is replaced after this many encryptions
	// (default 1<<24, far below the 2^32 random-nonce limit).
	MaxUses uint64
	// CacheTTL: unwrapped/derived keys used for decryption are kept this
	// long (default 1h). It bounds how long a shredded subject stays
	// readable on other instances.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached keys (default 10000).
	CacheSize int
	// Now is the clock (tests).
	Now func() time.Time
}

func (o *KeyOptions) defaults() {
	if o.ActiveLifetime <= 0 {
		o.ActiveLifetime = 5 * time.Minute
	}
	if o.MaxUses == 0 {
		o.MaxUses = 1 << 24
	}
	if o.MaxUses > 1<<31 {
		o.MaxUses = 1 << 31
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = time.Hour
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// keyManager holds one active data key per (source, algorithm, KEK), and a
// bounded cache of keys for decryption. Concurrent misses for the same key
// collapse into one KMS call.
type keyManager struct {
	kms  KMS
	opts KeyOptions
	sf   singleflight.Group

	mu     sync.Mutex
	active map[activeID]*dataKey
	cache  map[keyRef]*dataKey
	kmsOps atomic.Uint64 // KMS calls made (tests, metrics)
	// cacheHits, cacheMisses count decryption-key lookups (metrics).
	cacheHits, cacheMisses atomic.Uint64
}

func newKeyManager(kms KMS, opts KeyOptions) *keyManager {
	opts.defaults()
	return &keyManager{kms: kms, opts: opts, active: map[activeID]*dataKey{}, cache: map[keyRef]*dataKey{}}
}

type activeID struct {
	source KeySource
	alg    Algorithm
	kek    string
}

func (a activeID) String() string { return fmt.Sprintf("%d|%d|%s", a.source, a.alg, a.kek) }

// cacheID is the cache key of a data key: its whole reference.
func cacheID(r keyRef) keyRef { return r }

func (r keyRef) String() string {
	return fmt.Sprintf("%d|%d|%d|%s|%s", r.source, r.alg, r.id, r.kek, r.ref)
}

// maxSharedKMSCall bounds a KMS call that several callers share, should a
// KMS have no timeout of its own (TransitKMS times out each request).
const maxSharedKMSCall = time.Minute

// shared runs fn once for all concurrent callers of key (singleflight) and
// waits for its result or for the caller's own ctx to end. The call keeps
// ctx's values but not its cancellation: a caller that gives up (its client
// went away, its request timed out) answers a retriable error at once and
// does not fail the others waiting for the same key. A panic in fn is
// raised again in every waiting caller, on its own goroutine (where the
// proxy contains it to that caller's connection), never on the flight's.
func (m *keyManager) shared(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	ch := m.sf.DoChan(key, func() (v any, err error) {
		defer func() {
			if p := recover(); p != nil {
				v, err = &flightPanic{value: p, stack: debug.Stack()}, errFlightPanic
			}
		}()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxSharedKMSCall)
		defer cancel()
		return fn(cctx)
	})
	select {
	case r := <-ch:
		if fp, ok := r.Val.(*flightPanic); ok {
			panic(fp)
		}
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, unavailable("crypto: waiting for the key service", context.Cause(ctx))
	}
}

// errFlightPanic marks a shared KMS call that panicked (see shared).
var errFlightPanic = errors.New("crypto: shared key service call panicked")

// flightPanic is a panic in a shared KMS call, with the stack it happened
// on, raised again in each caller.
type flightPanic struct {
	value any
	stack []byte
}

func (p *flightPanic) Error() string {
	return fmt.Sprintf("panic in a key service call: %v\n\n%s", p.value, p.stack)
}

// active returns the current key for encryption with n uses reserved.
func (m *keyManager) activeKey(ctx context.Context, source KeySource, alg Algorithm, kek string, n uint64) (*dataKey, error) {
	id := activeID{source, alg, kek}
	for attempt := 0; attempt < 3; attempt++ {
		now := m.opts.Now()
		m.mu.Lock()
		k := m.active[id]
		m.mu.Unlock()
		if k != nil && now.Before(k.expires) {
			if source != SourceWrapped {
				return k, nil
			}
			if k.uses.Add(n) <= m.opts.MaxUses {
				return k, nil
			}
		}
		stale := k
		v, err := m.shared(ctx, "active|"+id.String(), func(ctx context.Context) (any, error) {
			m.mu.Lock()
			cur := m.active[id]
			m.mu.Unlock()
			if cur != stale { // someone replaced it meanwhile
				return cur, nil
			}
			nk, err := m.newActive(ctx, source, alg, kek)
			if err != nil {
				return nil, err
			}
			m.mu.Lock()
			m.active[id] = nk
			m.putLocked(nk)
			if len(m.active) > m.opts.CacheSize { // many subjects: drop expired ones
				now := m.opts.Now()
				for aid, ak := range m.active {
					if !now.Before(ak.expires) {
						delete(m.active, aid)
					}
				}
			}
			m.mu.Unlock()
			return nk, nil
		})
		if err != nil {
			return nil, err
		}
		k = v.(*dataKey)
		if source != SourceWrapped {
			return k, nil
		}
		if n > m.opts.MaxUses {
			return nil, fmt.Errorf("crypto: batch needs %d encryptions, over MaxUses", n)
		}
		if k.uses.Add(n) <= m.opts.MaxUses {
			return k, nil
		}
	}
	return nil, unavailable("crypto: data key", errors.New("data key exhausted repeatedly"))
}

func (m *keyManager) newActive(ctx context.Context, source KeySource, alg Algorithm, kek string) (*dataKey, error) {
	now := m.opts.Now()
	var dk *dataKey
	switch source {
	case SourceWrapped:
		m.kmsOps.Add(1)
		pt, wrapped, err := m.kms.GenerateDataKey(ctx, kek, keySize(alg))
		if err != nil {
			return nil, unavailable(fmt.Sprintf("crypto: new data key under %q", kek), err)
		}
		var idb [4]byte
		if _, err := rand.Read(idb[:]); err != nil {
			return nil, unavailable("crypto: random", err)
		}
		ref := keyRef{source: source, alg: alg, id: binary.BigEndian.Uint32(idb[:]), kek: kek, ref: wrapped}
		if dk, err = newPrimitive(ref, pt); err != nil {
			return nil, unavailable("crypto: data key from KMS", err)
		}
	case SourceDerived, SourceSubject:
		var err error
		dk, err = m.derive(ctx, source, alg, kek, "", true)
		if err != nil && source == SourceSubject && errors.Is(err, ErrKeyNotFound) {
			admin, ok := m.kms.(KeyAdmin)
			if !ok {
				return nil, err
			}
			m.kmsOps.Add(1)
			if cerr := admin.CreateKey(ctx, kek); cerr != nil {
				return nil, unavailable(fmt.Sprintf("crypto: create subject key %q", kek), cerr)
			}
			dk, err = m.derive(ctx, source, alg, kek, "", true)
		}
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("crypto: unknown key source %d", source)
	}
	dk.expires = now.Add(m.opts.ActiveLifetime)
	return dk, nil
}

// derive computes a derived key. ref is "" (current version; fresh picks a
// new salt for per-subject AES-GCM keys), "VERSION" or "VERSION#SALT".
// Per-subject AES-GCM keys are salted so each one encrypts a bounded number
// of records (a fresh salt per active period), while staying a reference
// rather than a wrapped key; deterministic keys are never salted.
func (m *keyManager) derive(ctx context.Context, source KeySource, alg Algorithm, kek, ref string, fresh bool) (*dataKey, error) {
	version, salt, _ := strings.Cut(ref, "#")
	if fresh && source == SourceSubject && alg == AES256GCM {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, unavailable("crypto: random", err)
		}
		salt = hex.EncodeToString(b[:])
	}
	label := deriveLabel(alg)
	if salt != "" {
		label = append(label, "#"+salt...)
	}
	m.kmsOps.Add(1)
	material, used, err := m.kms.DeriveKey(ctx, kek, version, label, keySize(alg))
	if err != nil {
		return nil, unavailable(fmt.Sprintf("crypto: derive key from %q", kek), err)
	}
	if used == "" || strings.Contains(used, "#") || (version != "" && used != version) {
		return nil, unavailable("crypto: derive key", fmt.Errorf("KMS answered version %q for %q", used, version))
	}
	if salt != "" {
		used += "#" + salt
	}
	kr := keyRef{source: source, alg: alg, id: derivedKeyID(material), kek: kek, ref: used}
	dk, err := newPrimitive(kr, material)
	if err != nil {
		return nil, unavailable("crypto: derived key", err)
	}
	return dk, nil
}

// putLocked caches k for decryption; m.mu is held.
func (m *keyManager) putLocked(k *dataKey) {
	exp := m.opts.Now().Add(m.opts.CacheTTL)
	c := &dataKey{ref: k.ref, gcm: k.gcm, siv: k.siv, prefix: k.prefix, expires: exp}
	if len(m.cache) >= m.opts.CacheSize {
		now := m.opts.Now()
		for id, e := range m.cache {
			if !now.Before(e.expires) {
				delete(m.cache, id)
			}
		}
		for id := range m.cache { // still full: drop arbitrary entries
			if len(m.cache) < m.opts.CacheSize {
				break
			}
			delete(m.cache, id)
		}
	}
	m.cache[cacheID(k.ref)] = c
}

// resolved is the outcome of resolving the keys of a batch.
type resolved struct {
	keys map[keyRef]*dataKey
	errs map[keyRef]error // per key: ErrKeyNotFound-wrapped (gone) or ErrIntegrity
}

// resolve finds keys for decryption: from the cache, else one batched
// unwrap per KEK, and one derivation per derived key. A KMS outage is
// returned as the error; per-key problems go to resolved.errs.
func (m *keyManager) resolve(ctx context.Context, refs []keyRef) (*resolved, error) {
	out := &resolved{keys: make(map[keyRef]*dataKey, len(refs)), errs: map[keyRef]error{}}
	now := m.opts.Now()
	var missWrapped = map[string][]keyRef{}
	var missDerived []keyRef
	m.mu.Lock()
	for _, r := range refs {
		id := cacheID(r)
		if _, done := out.keys[id]; done {
			continue
		}
		if k := m.cache[id]; k != nil && now.Before(k.expires) && k.ref.id == r.id {
			out.keys[id] = k
			m.cacheHits.Add(1)
			continue
		}
		m.cacheMisses.Add(1)
		out.keys[id] = nil
		if r.source == SourceWrapped {
			missWrapped[r.kek] = append(missWrapped[r.kek], r)
		} else {
			missDerived = append(missDerived, r)
		}
	}
	m.mu.Unlock()
	for id, k := range out.keys {
		if k == nil {
			delete(out.keys, id)
		}
	}
	keks := make([]string, 0, len(missWrapped))
	for kek := range missWrapped {
		keks = append(keks, kek)
	}
	sort.Strings(keks)
	for _, kek := range keks {
		rs := missWrapped[kek]
		if err := m.unwrapBatch(ctx, kek, rs, out); err != nil {
			return nil, err
		}
	}
	type derived struct {
		dk    *dataKey
		err   error
		panic any // raised again below, on the caller's goroutine
	}
	res := make([]derived, len(missDerived))
	var wg sync.WaitGroup
	sem := make(chan struct{}, kmsParallelism)
	for i, r := range missDerived {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() {
				if p := recover(); p != nil {
					res[i].panic = p
				}
				<-sem
				wg.Done()
			}()
			v, err := m.shared(ctx, "derive|"+cacheID(r).String(), func(ctx context.Context) (any, error) {
				if k := m.cached(r); k != nil { // a flight that just ended
					return k, nil
				}
				dk, err := m.derive(ctx, r.source, r.alg, r.kek, r.ref, false)
				if err != nil {
					return nil, err
				}
				m.mu.Lock()
				m.putLocked(dk)
				m.mu.Unlock()
				return dk, nil
			})
			if err == nil {
				res[i].dk = v.(*dataKey)
			}
			res[i].err = err
		}()
	}
	wg.Wait()
	for i := range res {
		if res[i].panic != nil {
			panic(res[i].panic)
		}
	}
	for i, r := range missDerived {
		id := cacheID(r)
		dk, err := res[i].dk, res[i].err
		switch {
		case err == nil:
			if dk.ref.id != r.id {
				if r.source == SourceSubject { // destroyed and created anew
					out.errs[id] = fmt.Errorf("%w: %w: subject key %q was replaced", ErrUnavailable, ErrKeyNotFound, r.kek)
				} else {
					out.errs[id] = integrityf("key check value of %q does not match", r.kek)
				}
				continue
			}
			out.keys[id] = dk
		case errors.Is(err, ErrKeyNotFound):
			out.errs[id] = err
		default:
			return nil, err
		}
	}
	return out, nil
}

func (m *keyManager) unwrapBatch(ctx context.Context, kek string, rs []keyRef, out *resolved) error {
	sort.Slice(rs, func(i, j int) bool { return rs[i].ref < rs[j].ref })
	wrapped := make([]string, len(rs))
	h := sha256.New()
	for i, r := range rs {
		wrapped[i] = r.ref
		h.Write([]byte(r.ref))
		h.Write([]byte{0})
	}
	sfKey := "unwrap|" + kek + "|" + hex.EncodeToString(h.Sum(nil))
	type unwrapped struct {
		dk  *dataKey
		err error
	}
	v, err := m.shared(ctx, sfKey, func(ctx context.Context) (any, error) {
		got := make([]unwrapped, len(rs))
		// A flight for these keys that ended after our cache lookup has
		// cached them: no second KMS call.
		all := true
		for i, r := range rs {
			if got[i].dk = m.cached(r); got[i].dk == nil {
				all = false
			}
		}
		if all {
			return got, nil
		}
		m.kmsOps.Add(1)
		res, err := m.kms.UnwrapDataKeys(ctx, kek, wrapped)
		if err != nil {
			return nil, unavailable(fmt.Sprintf("crypto: unwrap data keys under %q", kek), err)
		}
		if len(res) != len(wrapped) {
			return nil, unavailable("crypto: unwrap", fmt.Errorf("KMS answered %d keys for %d", len(res), len(wrapped)))
		}
		for i, r := range rs {
			if res[i].Err != nil || res[i].Key == nil {
				e := res[i].Err
				if e == nil {
					e = errors.New("no key")
				}
				if errors.Is(e, ErrKeyNotFound) {
					got[i].err = e
				} else {
					got[i].err = integrityf("unwrap data key under %q: %v", kek, e)
				}
				continue
			}
			dk, err := newPrimitive(r, append([]byte(nil), res[i].Key...))
			if err != nil {
				got[i].err = integrityf("data key under %q: %v", kek, err)
				continue
			}
			// cached before the flight ends, so that a later lookup
			// finds it
			m.mu.Lock()
			m.putLocked(dk)
			m.mu.Unlock()
			got[i].dk = dk
		}
		return got, nil
	})
	if err != nil {
		if errors.Is(err, ErrKeyNotFound) { // the whole KEK is gone
			for _, r := range rs {
				out.errs[cacheID(r)] = err
			}
			return nil
		}
		return err
	}
	for i, u := range v.([]unwrapped) {
		id := cacheID(rs[i])
		if u.err != nil {
			out.errs[id] = u.err
			continue
		}
		out.keys[id] = u.dk
	}
	return nil
}

// cached is r's key when the cache holds a fresh copy of it, else nil.
func (m *keyManager) cached(r keyRef) *dataKey {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := m.cache[cacheID(r)]; k != nil && now.Before(k.expires) && k.ref.id == r.id {
		return k
	}
	return nil
}

// forget drops every cached key of kek (after Shred or DestroyKey).
func (m *keyManager) forget(kek string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, k := range m.active {
		if k.ref.kek == kek {
			delete(m.active, id)
		}
	}
	for id, k := range m.cache {
		if k.ref.kek == kek {
			delete(m.cache, id)
		}
	}
}

// subjectKEK names the KEK of a data subject: prefix + a keyed hash of the
// subject id, so neither Kafka headers nor KMS key names reveal the id.
func subjectKEK(prefix string, pepper []byte, subject string) string {
	h := hmac.New(sha256.New, pepper)
	h.Write([]byte("kguard/v1/subject\x00"))
	h.Write([]byte(subject))
	return prefix + hex.EncodeToString(h.Sum(nil)[:16])
}
