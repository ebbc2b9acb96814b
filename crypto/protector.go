package crypto

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
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
	keys     *keyManager
	signer   *Signer
	verify   *Verifier
	batchSig bool
	pepper   []byte
	sprefix  string
	log      *zap.Logger
	now      func() time.Time
	paths    sync.Map // locator -> []pathSeg
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
	return &Protector{
		keys:     newKeyManager(o.KMS, o.Keys),
		signer:   o.Signer,
		verify:   o.Verifier,
		batchSig: o.BatchSignatures,
		pepper:   bytes.Clone(o.SubjectPepper),
		sprefix:  o.SubjectKeyPrefix,
		log:      o.Logger,
		now:      o.Now,
	}, nil
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

// Protect encrypts and signs one record in place. See ProtectBatch.
func (p *Protector) Protect(ctx context.Context, rec *Record, prot *Protection) error {
	return p.ProtectBatch(ctx, []*Record{rec}, prot)
}

// located is one field occurrence of one record, planned for encryption.
type located struct {
	f     *compiledField
	occ   int // header occurrence
	start int // JSON span
	end   int
	kek   string // effective KEK (subject KEK for per-subject fields)
	src   KeySource
	k     *dataKey // set once the batch's keys are fetched
}

type useKey struct {
	src KeySource
	alg Algorithm
	kek string
}

// ProtectBatch encrypts the fields prot names and signs, for every record,
// in place. Data keys are fetched once for the whole batch. On error no
// record of the batch may be forwarded (some may be half-rewritten):
// IsRetriable(err) tells a KMS problem from a bad record (ErrInvalidRecord).
func (p *Protector) ProtectBatch(ctx context.Context, recs []*Record, prot *Protection) error {
	return p.ProtectBatchScratch(ctx, recs, prot, &Scratch{})
}

// Scratch is the working memory of ProtectBatchScratch, kept between calls
// so that protecting a stream of batches does not allocate a batch's worth
// of memory each time. The zero value is ready; a Scratch is not safe for
// concurrent use.
type Scratch struct {
	all    []located
	bounds []int
	spans  []span
	uses   map[useKey]uint64
	keys   map[useKey]*dataKey
	order  []useKey
	got    []*dataKey
	enc    batchEnc
	sig    sigScratch
}

// ProtectBatchScratch is ProtectBatch using s for its buffers: the values
// and headers it sets on recs alias memory of s, so they are valid only
// until s is used again (copy or encode the records before that).
func (p *Protector) ProtectBatchScratch(ctx context.Context, recs []*Record, prot *Protection, s *Scratch) error {
	if prot.Empty() {
		return nil
	}
	if prot.sign && p.signer == nil { // fail before touching any record
		return unavailable("crypto: sign", errors.New("no signing key configured"))
	}
	// One walk of each record finds its fields; the plans of all records
	// share one slice.
	all := grown(s.all, len(recs)*len(prot.fields))
	bounds := grown(s.bounds, len(recs)+1)[:len(recs)+1]
	bounds[0] = 0
	var spans []span
	if len(prot.jsonPaths) > 0 {
		spans = grown(s.spans, len(prot.jsonPaths))[:len(prot.jsonPaths)]
	}
	if s.uses == nil {
		s.uses, s.keys = map[useKey]uint64{}, map[useKey]*dataKey{}
	}
	clear(s.uses)
	clear(s.keys)
	uses := s.uses
	defer func() {
		// Keep the grown buffers for the next batch; drop the records'
		// and keys' pointers held in them.
		clear(all[:cap(all)])
		s.all, s.bounds, s.spans = all[:0], bounds[:0], spans
	}()
	for i, rec := range recs {
		if rec == nil {
			return invalidf("record %d is nil", i)
		}
		for _, h := range rec.Headers {
			if strings.HasPrefix(h.Key, "kguard.") {
				return invalidf("record %d: reserved header %q", i, h.Key)
			}
		}
		var err error
		all, err = p.plan(rec, prot, all, spans)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		bounds[i+1] = len(all)
		for _, l := range all[bounds[i]:] {
			uses[useKey{l.src, l.f.alg, l.kek}]++
		}
	}
	// Fetch every key the batch needs: at most one KMS call per key, and
	// none while the active keys are fresh.
	keys := s.keys
	order := s.order[:0]
	for u := range uses {
		order = append(order, u)
	}
	s.order = order
	sort.Slice(order, func(i, j int) bool {
		return order[i].kek < order[j].kek || order[i].kek == order[j].kek && order[i].alg < order[j].alg
	})
	// Usually every key is cached and this is a few map lookups; with many
	// new data subjects, their KMS calls run a few at a time.
	got := grown(s.got, len(order))[:len(order)]
	s.got = got
	defer clear(got)
	if len(order) == 1 { // the common case: no goroutine
		k, err := p.keys.activeKey(ctx, order[0].src, order[0].alg, order[0].kek, uses[order[0]])
		if err != nil {
			return err
		}
		got[0] = k
	} else {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(kmsParallelism)
		for i, u := range order {
			g.Go(func() error {
				k, err := p.keys.activeKey(gctx, u.src, u.alg, u.kek, uses[u])
				got[i] = k
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	for i, u := range order {
		keys[u] = got[i]
	}
	// Size the batch's buffers: new JSON values, random bytes (record
	// nonces and AES-GCM IVs), headers.
	b := &s.enc
	b.reset()
	nRand, nValues, nHeaders := 0, 0, 0
	var last useKey
	var lastK *dataKey
	for i, rec := range recs {
		pl := all[bounds[i]:bounds[i+1]]
		if len(pl) == 0 {
			continue
		}
		nRand += recordNonceSize
		nHeaders += len(rec.Headers) + 2
		hasJSON := false
		for j := range pl {
			l := &pl[j]
			u := useKey{l.src, l.f.alg, l.kek}
			if lastK == nil || u != last {
				last, lastK = u, keys[u]
			}
			l.k = lastK
			if l.k.gcm != nil {
				nRand += gcmIVSize
			}
			if l.f.kind == KindJSON {
				hasJSON = true
				nValues += base64.StdEncoding.EncodedLen(l.k.sealedLen(l.end-l.start)) + 2 - (l.end - l.start)
			}
		}
		if hasJSON {
			nValues += len(rec.Value)
		}
	}
	b.rnd = grown(b.rndBuf, nRand)[:nRand]
	b.rndBuf = b.rnd
	if _, err := rand.Read(b.rnd); err != nil {
		return unavailable("crypto: random", err)
	}
	b.values = grown(b.values, nValues)
	b.hdrs = grown(b.hdrs, nHeaders)
	for i, rec := range recs {
		if err := p.encryptRecord(rec, all[bounds[i]:bounds[i+1]], b, len(recs)-i); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if prot.sign && (!p.batchSig || len(recs) == 1) {
			if err := p.sign(rec); err != nil {
				return err
			}
		}
	}
	if prot.sign && p.batchSig && len(recs) > 1 {
		sigs, err := p.signer.signBatch(&s.sig, p.now().UnixMilli(), recs)
		if err != nil {
			return unavailable("crypto: sign", err)
		}
		for i, rec := range recs {
			rec.Headers = append(rec.Headers, Header{Key: SigHeader, Value: sigs[i]})
		}
	}
	return nil
}

// plan appends the fields of one record to out (all JSON paths in one
// walk; spans is scratch space with one entry per JSON path).
func (p *Protector) plan(rec *Record, prot *Protection, out []located, spans []span) ([]located, error) {
	var jsonErr error
	if rec.Value != nil && len(prot.jsonPaths) > 0 {
		jsonErr = findPaths(rec.Value, prot.jsonPaths, spans)
	}
	var subjectKEK string
	subject := func() (string, error) {
		if subjectKEK != "" {
			return subjectKEK, nil
		}
		if len(p.pepper) == 0 {
			return "", unavailable("crypto", errors.New("no subject pepper configured"))
		}
		if rec.Value == nil {
			return "", invalidf("no value to read the subject from")
		}
		sp := canonicalPath(prot.subjectPath)
		if jsonErr != nil {
			return "", invalidf("subject %s: %v", sp, jsonErr)
		}
		s := spans[len(spans)-1]
		if s.start < 0 {
			return "", invalidf("subject field %s is missing", sp)
		}
		id, err := subjectID(rec.Value[s.start:s.end])
		if err != nil {
			return "", invalidf("subject field %s: %v", sp, err)
		}
		subjectKEK = p.SubjectKeyName(id)
		return subjectKEK, nil
	}
	jsonIdx := 0
	for fi := range prot.fields {
		f := &prot.fields[fi]
		first := len(out)
		switch f.kind {
		case KindValue:
			if rec.Value != nil {
				out = append(out, located{f: f})
			}
		case KindKey:
			if rec.Key != nil {
				out = append(out, located{f: f})
			}
		case KindHeader:
			n := 0 // null header values stay null
			for _, h := range rec.Headers {
				if h.Key == f.header && h.Value != nil {
					out = append(out, located{f: f, occ: n})
					n++
				}
			}
		case KindJSON:
			idx := jsonIdx
			jsonIdx++
			if rec.Value == nil {
				continue
			}
			if jsonErr != nil {
				return nil, invalidf("field %s: %v", f.locator, jsonErr)
			}
			if s := spans[idx]; s.start >= 0 {
				out = append(out, located{f: f, start: s.start, end: s.end})
			}
		}
		for i := first; i < len(out); i++ {
			l := &out[i]
			switch {
			case f.perSubject:
				kek, err := subject()
				if err != nil {
					return nil, err
				}
				l.kek, l.src = kek, SourceSubject
			case f.alg == AES256SIV:
				l.kek, l.src = f.kek, SourceDerived
			default:
				l.kek, l.src = f.kek, SourceWrapped
			}
		}
	}
	return out, nil
}

// subjectID reads a subject id: a JSON string (decoded) or a number (its text).
func subjectID(raw []byte) (string, error) {
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		if s == "" {
			return "", errors.New("empty subject id")
		}
		return s, nil
	case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), nil
	}
	return "", errors.New("subject id must be a string or a number")
}

// batchEnc holds the buffers one ProtectBatch call shares between its
// records: the records' new JSON values, kguard.enc values and header
// slices are cut (capacity-capped) from a few batch-wide allocations.
type batchEnc struct {
	rnd    []byte // random bytes, consumed: record nonces, AES-GCM IVs
	rndBuf []byte // all of rnd's buffer, for the next batch
	aad    []byte
	ct     []byte // one sealed JSON field
	keys   []keyRef
	fields []fieldRef
	jsonAt []int
	values []byte
	encs   []byte
	hdrs   []Header
}

// reset empties the buffers for a new batch, keeping their memory (the
// previous batch's records must no longer be in use).
func (b *batchEnc) reset() {
	clear(b.hdrs[:cap(b.hdrs)])
	b.values, b.encs, b.hdrs = b.values[:0], b.encs[:0], b.hdrs[:0]
}

// grown returns s emptied, with room for n elements, reusing its memory
// when it has enough.
func grown[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, 0, n)
	}
	return s[:0]
}

func (b *batchEnc) take(n int) []byte {
	r := b.rnd[:n:n]
	b.rnd = b.rnd[n:]
	return r
}

func (b *batchEnc) iv(k *dataKey) []byte {
	if k.gcm == nil {
		return nil
	}
	return b.take(gcmIVSize)
}

// encryptRecord encrypts the planned fields of rec and adds kguard.enc.
// left is the number of records of the batch from this one on (sizing).
func (p *Protector) encryptRecord(rec *Record, plan []located, b *batchEnc, left int) error {
	if len(plan) == 0 {
		return nil
	}
	h := encHeader{version: FormatVersion, nonce: b.take(recordNonceSize), keys: b.keys[:0], fields: b.fields[:0]}
	n := len(rec.Headers)
	hs := len(b.hdrs)
	b.hdrs = append(b.hdrs, rec.Headers...)
	b.hdrs = append(b.hdrs, Header{}, Header{}) // room for kguard.enc and kguard.sig
	newHeaders := b.hdrs[hs : hs+n : hs+n+2]
	jsonAt := b.jsonAt[:0]
	for i := range plan {
		l := &plan[i]
		k := l.k
		idx := -1
		for j := range h.keys {
			if h.keys[j] == k.ref {
				idx = j
				break
			}
		}
		if idx < 0 {
			h.keys = append(h.keys, k.ref)
			idx = len(h.keys) - 1
		}
		if l.occ == 0 || l.f.kind != KindHeader {
			h.fields = append(h.fields, fieldRef{kind: l.f.kind, locator: l.f.locator, key: idx})
		}
		if l.f.kind == KindJSON {
			jsonAt = append(jsonAt, i)
			continue
		}
		var pt []byte
		switch l.f.kind {
		case KindValue:
			pt = rec.Value
		case KindKey:
			pt = rec.Key
		case KindHeader:
			pt = nthHeader(rec.Headers, l.f.header, l.occ)
		}
		b.aad = appendAAD(b.aad[:0], FormatVersion, rec.Topic, l.f.kind, l.f.locator, k.ref.id, k.ref.alg, h.nonce, l.occ)
		ct, err := k.sealAppend(make([]byte, 0, k.sealedLen(len(pt))), pt, b.aad, b.iv(k))
		if err != nil {
			return fmt.Errorf("%w: encrypt %s: %v", ErrInvalidRecord, l.f.locator, err)
		}
		switch l.f.kind {
		case KindValue:
			rec.Value = ct
		case KindKey:
			rec.Key = ct
		case KindHeader:
			setNthHeader(newHeaders, l.f.header, l.occ, ct)
		}
	}
	if len(jsonAt) > 0 {
		// by position (a few fields: insertion sort)
		for i := 1; i < len(jsonAt); i++ {
			for j := i; j > 0 && plan[jsonAt[j]].start < plan[jsonAt[j-1]].start; j-- {
				jsonAt[j], jsonAt[j-1] = jsonAt[j-1], jsonAt[j]
			}
		}
		doc := rec.Value
		out := b.values
		vs := len(out)
		prev := 0
		for _, i := range jsonAt {
			l := &plan[i]
			k := l.k
			b.aad = appendAAD(b.aad[:0], FormatVersion, rec.Topic, KindJSON, l.f.locator, k.ref.id, k.ref.alg, h.nonce, l.occ)
			var err error
			b.ct, err = k.sealAppend(b.ct[:0], doc[l.start:l.end], b.aad, b.iv(k))
			if err != nil {
				return fmt.Errorf("%w: encrypt %s: %v", ErrInvalidRecord, l.f.locator, err)
			}
			out = append(out, doc[prev:l.start]...)
			out = append(out, '"')
			out = base64.StdEncoding.AppendEncode(out, b.ct)
			out = append(out, '"')
			prev = l.end
		}
		out = append(out, doc[prev:]...)
		rec.Value = out[vs:len(out):len(out)]
		b.values = out
	}
	b.jsonAt = jsonAt
	b.keys, b.fields = h.keys, h.fields
	if b.encs == nil || cap(b.encs)-len(b.encs) < h.size() {
		b.encs = make([]byte, 0, h.size()*left+h.size()*left/8)
	}
	es := len(b.encs)
	b.encs = h.appendTo(b.encs)
	rec.Headers = append(newHeaders, Header{Key: EncHeader, Value: b.encs[es:len(b.encs):len(b.encs)]})
	return nil
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

func (p *Protector) sign(rec *Record) error {
	if p.signer == nil {
		return unavailable("crypto: sign", errors.New("no signing key configured"))
	}
	ts := p.now().UnixMilli()
	sig, err := p.signer.sign(ts, rec)
	if err != nil {
		return unavailable("crypto: sign", err)
	}
	rec.Headers = append(rec.Headers, Header{Key: SigHeader, Value: sig})
	return nil
}

// Unprotect verifies and decrypts one record in place. A per-record
// integrity failure is returned as the error. See UnprotectBatch.
func (p *Protector) Unprotect(ctx context.Context, rec *Record, o FetchOptions) (Result, error) {
	res, err := p.UnprotectBatch(ctx, []*Record{rec}, o)
	if err != nil {
		return Result{}, err
	}
	if res[0].Err != nil {
		return res[0], res[0].Err
	}
	return res[0], nil
}

// UnprotectBatch verifies signatures and then decrypts (or masks) the
// protected fields of every record in place, as o says. Records without
// kguard headers pass untouched. Keys are resolved once for the batch (one
// KMS call per KEK on a cache miss). The error is non-nil only when the
// whole batch cannot be served: a KMS outage (retriable), or a bad
// signature under SigFail (ErrIntegrity). A record that fails to decrypt
// (tampered, moved ciphertext, malformed header) is left untouched with
// Result.Err set (ErrIntegrity).
func (p *Protector) UnprotectBatch(ctx context.Context, recs []*Record, o FetchOptions) ([]Result, error) {
	res := make([]Result, len(recs))
	hdrVals := make([]encHeader, len(recs))
	hdrs := make([]*encHeader, len(recs))
	var refs []keyRef
	in := interner{}
	vs := verifyScratch{in: in}
	// A whole signed batch, as produced, verifies in one go; anything
	// else (or a failure) record by record below.
	complete := o.Verify && p.verify != nil && p.verify.verifyComplete(&vs, recs)
	for i, rec := range recs {
		r := &res[i]
		encVal, encN := findHeader(rec.Headers, EncHeader)
		sigVal, sigN := findHeader(rec.Headers, SigHeader)
		if o.Verify {
			if _, n := findHeader(rec.Headers, VerifyHeader); n > 0 { // only kguard marks records
				rec.Headers = slices.DeleteFunc(rec.Headers, func(h Header) bool { return h.Key == VerifyHeader })
			}
			st := SigMissing
			switch {
			case sigN > 1:
				st = SigBad
			case sigN == 1 && complete:
				st = SigOK
			case sigN == 1:
				st = p.verifyRecord(&vs, rec, sigVal)
			}
			r.Signature = st
			if st == SigBad || (st == SigMissing && o.RequireSignature) {
				switch o.OnBadSignature {
				case SigFail:
					return nil, integrityf("record %d: signature %s", i, st)
				case SigDrop:
					r.Drop = true
					continue
				default:
					rec.Headers = append(rec.Headers, Header{Key: VerifyHeader, Value: []byte(st.String())})
				}
			}
		}
		if encN == 0 {
			if o.Decrypt && !o.KeepHeaders && sigN > 0 {
				rec.Headers = rewriteKguardHeaders(rec.Headers, nil, false)
			}
			continue
		}
		r.Protected = true
		if encN > 1 {
			r.Err = integrityf("%d kguard.enc headers", encN)
			continue
		}
		h := &hdrVals[i]
		if err := parseEncHeaderInto(h, encVal, in); err != nil {
			r.Err = fmt.Errorf("%w: %v", ErrIntegrity, err)
			continue
		}
		hdrs[i] = h
		if o.Decrypt {
			for _, k := range h.keys {
				// records of a batch mostly share their keys: skip
				// repeats of the last few (resolve dedups the rest)
				if !slices.Contains(refs[max(len(refs)-4, 0):], k) {
					refs = append(refs, k)
				}
			}
		}
	}
	var keys *resolved
	if o.Decrypt && len(refs) > 0 {
		var err error
		if keys, err = p.keys.resolve(ctx, refs); err != nil {
			return nil, err
		}
	}
	var d batchDec
	for i, rec := range recs {
		h := hdrs[i]
		if h == nil || res[i].Drop || res[i].Err != nil {
			continue
		}
		d.left = len(recs) - i
		if o.Decrypt {
			p.decryptRecord(rec, h, keys, o, &res[i], &d)
		} else if o.Mask == ShowMask {
			if err := p.maskRecord(rec, h, o, &d); err != nil {
				res[i].Err = err
			}
		}
	}
	return res, nil
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

func (p *Protector) verifyRecord(s *verifyScratch, rec *Record, sig []byte) SigStatus {
	if p.verify == nil {
		return SigBad
	}
	if err := p.verify.verifyWith(s, rec, sig); err != nil {
		return SigBad
	}
	return SigOK
}

func (p *Protector) jsonPath(locator string) ([]pathSeg, error) {
	if v, ok := p.paths.Load(locator); ok {
		return v.([]pathSeg), nil
	}
	segs, err := parseJSONPath(locator)
	if err != nil {
		return nil, err
	}
	if canonicalPath(segs) != locator || len(segs) == 0 {
		return nil, fmt.Errorf("non-canonical path %q", locator)
	}
	p.paths.Store(locator, segs)
	return segs, nil
}

// decryptRecord decrypts every field it has a key for. All-or-nothing per
// record for integrity failures: the record is only rewritten when every
// field either decrypts or has a destroyed key.
func (p *Protector) decryptRecord(rec *Record, h *encHeader, keys *resolved, o FetchOptions, r *Result, d *batchDec) {
	type done struct {
		f  fieldRef
		pt [][]byte // per occurrence for headers
	}
	var okSmall [8]done
	ok := okSmall[:0]
	var gone []fieldRef
	splices := d.splices[:0]
	d.pts = d.pts[:0] // JSON plaintexts of this record, until spliced
	var spans []span
	var err error
	for fi, f := range h.fields {
		kr := h.keys[f.key]
		id := cacheID(kr)
		k := keys.keys[id]
		if k == nil {
			if err := keys.errs[id]; err != nil && errors.Is(err, ErrKeyNotFound) {
				gone = append(gone, f)
				continue
			}
			r.Err = integrityf("field %s: key unavailable", f.locator)
			return
		}
		dn := done{f: f}
		dec := func(ct []byte, occ int) ([]byte, error) {
			d.aad = appendAAD(d.aad[:0], h.version, rec.Topic, f.kind, f.locator, kr.id, kr.alg, h.nonce, occ)
			pt, err := open(k, ct, d.aad)
			if err != nil {
				return nil, integrityf("field %s does not decrypt (tampered, moved or wrong key)", f.locator)
			}
			return pt, nil
		}
		switch f.kind {
		case KindValue, KindKey:
			src := rec.Value
			if f.kind == KindKey {
				src = rec.Key
			}
			if src == nil {
				r.Err = integrityf("field %s is null", f.locator)
				return
			}
			pt, err := dec(src, 0)
			if err != nil {
				r.Err = err
				return
			}
			dn.pt = [][]byte{pt}
		case KindHeader:
			name := strings.TrimPrefix(f.locator, "@header:")
			occ := 0
			for _, hd := range rec.Headers {
				if hd.Key != name || hd.Value == nil {
					continue
				}
				pt, err := dec(hd.Value, occ)
				if err != nil {
					r.Err = err
					return
				}
				dn.pt = append(dn.pt, pt)
				occ++
			}
			if occ == 0 {
				r.Err = integrityf("field %s: header missing", f.locator)
				return
			}
		case KindJSON:
			if spans == nil {
				if spans, err = p.locateJSON(rec, h.fields, d); err != nil {
					r.Err = err
					return
				}
			}
			sp := spans[fi]
			s, e := sp.start, sp.end
			if d.ct, err = decodeB64Append(d.ct[:0], rec.Value[s:e]); err != nil {
				r.Err = integrityf("field %s: %v", f.locator, err)
				return
			}
			d.aad = appendAAD(d.aad[:0], h.version, rec.Topic, f.kind, f.locator, kr.id, kr.alg, h.nonce, 0)
			start := len(d.pts)
			out, err := k.openAppend(d.pts, d.ct, d.aad)
			if err != nil {
				r.Err = integrityf("field %s does not decrypt (tampered, moved or wrong key)", f.locator)
				return
			}
			d.pts = out
			// earlier plaintexts stay valid if d.pts moved: the old array
			// is not written again
			splices = append(splices, splice{s, e, out[start:len(out):len(out)]})
		}
		ok = append(ok, dn)
	}
	d.splices = splices
	// Every field decrypted or is gone: rewrite.
	for _, d := range ok {
		switch d.f.kind {
		case KindValue:
			rec.Value = d.pt[0]
		case KindKey:
			rec.Key = d.pt[0]
		case KindHeader:
			name := strings.TrimPrefix(d.f.locator, "@header:")
			for occ, pt := range d.pt {
				setNthHeader(rec.Headers, name, occ, pt)
			}
		}
		r.Decrypted++
	}
	if len(splices) > 0 {
		sortSplices(splices)
		rec.Value = d.splice(rec.Value, splices)
	}
	for _, g := range gone {
		r.Unreadable = append(r.Unreadable, g.locator)
	}
	if len(gone) > 0 && o.Mask == ShowMask {
		hh := *h
		hh.fields = gone
		if err := p.maskRecord(rec, &hh, o, d); err != nil {
			r.Err = err
		}
		return
	}
	// Keep kguard.enc only for the fields still encrypted.
	var hv []byte
	if len(gone) > 0 {
		hh := *h
		hh.fields = gone
		hv = hh.marshal()
	}
	rec.Headers = d.rewriteHeaders(rec.Headers, hv, o.KeepHeaders)
}

// splice is applySplices into the batch's value buffer: the result is a
// capacity-capped slice of it (records of a batch share the allocation).
func (d *batchDec) splice(doc []byte, sp []splice) []byte {
	n := len(doc)
	for _, s := range sp {
		n += len(s.with) - (s.end - s.start)
	}
	if cap(d.values)-len(d.values) < n {
		d.values = make([]byte, 0, n*d.left+n*d.left/8) // the rest of the batch, if alike
	}
	out := d.values
	vs := len(out)
	prev := 0
	for _, s := range sp {
		out = append(out, doc[prev:s.start]...)
		out = append(out, s.with...)
		prev = s.end
	}
	out = append(out, doc[prev:]...)
	d.values = out
	return out[vs:len(out):len(out)]
}

// rewriteHeaders is rewriteKguardHeaders into the batch's header buffer.
func (d *batchDec) rewriteHeaders(hs []Header, encVal []byte, keepSig bool) []Header {
	if cap(d.hdrs)-len(d.hdrs) < len(hs) {
		d.hdrs = make([]Header, 0, len(hs)*d.left)
	}
	start := len(d.hdrs)
	d.hdrs = rewriteKguardHeadersTo(d.hdrs, hs, encVal, keepSig) // fits: no reallocation
	return d.hdrs[start:len(d.hdrs):len(d.hdrs)]
}

// rewriteKguardHeaders replaces kguard.enc by encVal (removed when nil) and
// removes kguard.sig unless keepSig.
func rewriteKguardHeaders(hs []Header, encVal []byte, keepSig bool) []Header {
	return rewriteKguardHeadersTo(make([]Header, 0, len(hs)), hs, encVal, keepSig)
}

func rewriteKguardHeadersTo(out, hs []Header, encVal []byte, keepSig bool) []Header {
	for _, h := range hs {
		switch {
		case h.Key == EncHeader:
			if encVal != nil {
				out = append(out, Header{Key: EncHeader, Value: encVal})
			}
		case h.Key == SigHeader && !keepSig:
		default:
			out = append(out, h)
		}
	}
	return out
}

// maskRecord replaces the listed encrypted fields with the mask and removes
// the kguard headers.
func (p *Protector) maskRecord(rec *Record, h *encHeader, o FetchOptions, d *batchDec) error {
	mask := o.MaskValue
	if mask == nil {
		mask = []byte("****")
	}
	jmask, _ := json.Marshal(string(mask))
	var splices []splice
	var spans []span
	for fi, f := range h.fields {
		switch f.kind {
		case KindValue:
			if rec.Value != nil {
				rec.Value = bytes.Clone(mask)
			}
		case KindKey:
			if rec.Key != nil {
				rec.Key = bytes.Clone(mask)
			}
		case KindHeader:
			name := strings.TrimPrefix(f.locator, "@header:")
			for i := range rec.Headers {
				if rec.Headers[i].Key == name && rec.Headers[i].Value != nil {
					rec.Headers[i].Value = bytes.Clone(mask)
				}
			}
		case KindJSON:
			if spans == nil {
				var err error
				if spans, err = p.locateJSON(rec, h.fields, d); err != nil {
					return err
				}
			}
			sp := spans[fi]
			splices = append(splices, splice{sp.start, sp.end, jmask})
		}
	}
	if len(splices) > 0 {
		sortSplices(splices)
		rec.Value = applySplices(rec.Value, splices)
	}
	// The record no longer matches its signature or encryption header.
	out := make([]Header, 0, len(rec.Headers))
	for _, hd := range rec.Headers {
		if hd.Key != EncHeader && hd.Key != SigHeader {
			out = append(out, hd)
		}
	}
	rec.Headers = out
	return nil
}

// batchDec is scratch space shared by the records of one UnprotectBatch.
type batchDec struct {
	aad     []byte
	ct      []byte   // one decoded JSON field
	pts     []byte   // a record's JSON plaintexts until spliced
	splices []splice // a record's JSON replacements
	paths   [][]pathSeg
	pidx    []int  // field index of each path
	pspans  []span // per path
	fspans  []span // per field of the header
	sorted  []span
	values  []byte   // new values of the batch's records
	hdrs    []Header // new header lists of the batch's records
	left    int      // records of the batch from the current one on (sizing)
}

// locateJSON finds every JSON field listed in a kguard.enc header in one
// walk and returns their spans indexed like fields (valid until the next
// call with the same d). Listed fields must be present, and must not
// overlap (a crafted header could list $.a and $.a.b).
func (p *Protector) locateJSON(rec *Record, fields []fieldRef, d *batchDec) ([]span, error) {
	if rec.Value == nil {
		return nil, integrityf("JSON fields listed but the value is null")
	}
	if d == nil {
		d = &batchDec{}
	}
	d.paths, d.pidx = d.paths[:0], d.pidx[:0]
	for i, f := range fields {
		if f.kind != KindJSON {
			continue
		}
		segs, err := p.jsonPath(f.locator)
		if err != nil {
			return nil, integrityf("field %s: %v", f.locator, err)
		}
		d.paths = append(d.paths, segs)
		d.pidx = append(d.pidx, i)
	}
	d.pspans = slices.Grow(d.pspans[:0], len(d.paths))[:len(d.paths)]
	if err := findPaths(rec.Value, d.paths, d.pspans); err != nil {
		return nil, integrityf("encrypted JSON fields: %v", err)
	}
	d.fspans = slices.Grow(d.fspans[:0], len(fields))[:len(fields)]
	d.sorted = d.sorted[:0]
	for i, s := range d.pspans {
		if s.start < 0 {
			return nil, integrityf("field %s: not found in value", fields[d.pidx[i]].locator)
		}
		d.fspans[d.pidx[i]] = s
		d.sorted = append(d.sorted, s)
	}
	slices.SortFunc(d.sorted, func(a, b span) int { return a.start - b.start })
	for i := 1; i < len(d.sorted); i++ {
		if d.sorted[i].start < d.sorted[i-1].end {
			return nil, integrityf("encrypted JSON fields overlap")
		}
	}
	return d.fspans, nil
}

// sortSplices orders non-overlapping splices by position.
func sortSplices(sp []splice) {
	slices.SortFunc(sp, func(a, b splice) int { return a.start - b.start })
}

func decodeB64String(raw []byte) ([]byte, error) {
	return decodeB64Append(nil, raw)
}

// decodeB64Append appends the bytes of a JSON string holding standard
// base64 to dst.
func decodeB64Append(dst, raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, errors.New("encrypted JSON field is not a string")
	}
	out, err := base64.StdEncoding.AppendDecode(dst, raw[1:len(raw)-1])
	if err != nil {
		return nil, errors.New("encrypted JSON field is not base64")
	}
	return out, nil
}
