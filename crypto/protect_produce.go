// The produce direction: records going to the broker are encrypted, then
// signed.

package crypto

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Protect encrypts and signs one record in place. See ProtectBatch.
func (p *Protector) Protect(ctx context.Context, rec *Record, prot *Protection) error {
	return p.ProtectBatch(ctx, []*Record{rec}, prot)
}

// located is one field occurrence of one record, planned for encryption.
type located struct {
	f     *compiledField
	fi    int // index of f in the rule's fields
	occ   int // header occurrence
	start int // JSON span
	end   int
	kek   string // effective KEK (subject KEK for per-subject fields)
	src   KeySource
	k     *dataKey // set once the batch's keys are fetched
	ki    int      // index of k in a batch context's key table (buildTables)
}

// plaintext is the bytes of planned field l of rec, before encryption.
func (l *located) plaintext(rec *Record) []byte {
	switch l.f.kind {
	case KindJSON:
		return rec.Value[l.start:l.end]
	case KindValue:
		return rec.Value
	case KindKey:
		return rec.Key
	case KindHeader:
		return nthHeader(rec.Headers, l.f.header, l.occ)
	}
	return nil
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
	v2     v2Scratch
	seal   sealScratch
}

// ProtectBatchScratch is ProtectBatch using s for its buffers: the values
// and headers it sets on recs alias memory of s, so they are valid only
// until s is used again (copy or encode the records before that).
// Format version 2 records are self-contained and name no producer (see
// ProtectBatchWith).
func (p *Protector) ProtectBatchScratch(ctx context.Context, recs []*Record, prot *Protection, s *Scratch) error {
	return p.ProtectBatchWith(ctx, recs, prot, s, ProduceOptions{})
}

// ProtectBatchWith is ProtectBatchScratch for one Kafka batch produced by
// o.Producer: with o.Batched (and format version 2) the batch's context
// and signature are written once, in recs[0], and the other records carry
// only MarkHeader, so recs must be exactly the records of one Kafka batch,
// in order, and stay together (cleanup.policy=delete).
func (p *Protector) ProtectBatchWith(ctx context.Context, recs []*Record, prot *Protection, s *Scratch, o ProduceOptions) error {
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
	// fields mostly use the key of the field before: count runs, and touch
	// the map once per run rather than once per field
	var run useKey
	var runN uint64
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
			if strings.HasPrefix(h.Key, "kguard.") || h.Key == MarkHeader {
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
			if u := (useKey{l.src, l.f.alg, l.kek}); runN == 0 || u != run {
				if runN > 0 {
					uses[run] += runN
				}
				run, runN = u, 0
			}
			runN++
		}
	}
	if runN > 0 {
		uses[run] += runN
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
		var fault atomic.Pointer[any] // a panic, raised again on this goroutine (errgroup would crash the process)
		for i, u := range order {
			g.Go(func() (err error) {
				defer func() {
					if v := recover(); v != nil {
						fault.CompareAndSwap(nil, &v)
						err = errFlightPanic
					}
				}()
				k, err := p.keys.activeKey(gctx, u.src, u.alg, u.kek, uses[u])
				got[i] = k
				return err
			})
		}
		err := g.Wait()
		if v := fault.Load(); v != nil {
			panic(*v)
		}
		if err != nil {
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
	v2 := p.format >= 2
	sealed := v2 && p.sealing(o, prot) // AES-GCM IVs: one per key (sealBatch)
	nRand, nValues, nHeaders := 0, 0, 0
	if v2 {
		nRand += batchNonceSize
		nHeaders += 2 * len(recs)
	}
	var last useKey
	var lastK *dataKey
	for i, rec := range recs {
		pl := all[bounds[i]:bounds[i+1]]
		if v2 {
			nHeaders += len(rec.Headers)
		}
		if len(pl) == 0 {
			continue
		}
		if !v2 {
			nRand += recordNonceSize
			nHeaders += len(rec.Headers) + 2
		}
		hasJSON := false
		for j := range pl {
			l := &pl[j]
			u := useKey{l.src, l.f.alg, l.kek}
			if lastK == nil || u != last {
				last, lastK = u, keys[u]
			}
			l.k = lastK
			if l.k.gcm != nil && !sealed {
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
	if v2 {
		return p.protectV2(recs, all, bounds, prot, s, o)
	}
	for i, rec := range recs {
		if err := p.encryptRecord(rec, all[bounds[i]:bounds[i+1]], b, len(recs)-i, nil, 0, nil); err != nil {
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
			l.fi = fi
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
// With a batch nonce (format version 2) the fields are bound to it and the
// record's index, and no header is added (protectV2 adds them; the
// record's header slice has room for two more). In a sealed batch, cts
// (aligned with plan) holds the AES-GCM fields' ciphertexts (sealBatch).
func (p *Protector) encryptRecord(rec *Record, plan []located, b *batchEnc, left int, batchNonce []byte, index int, cts [][]byte) error {
	v2 := batchNonce != nil
	if len(plan) == 0 && !v2 {
		return nil
	}
	h := encHeader{version: FormatVersion, keys: b.keys[:0], fields: b.fields[:0]}
	if v2 {
		h.version, h.nonce, h.index = encVersion2, batchNonce, index
	} else {
		h.nonce = b.take(recordNonceSize)
	}
	n := len(rec.Headers)
	hs := len(b.hdrs)
	b.hdrs = append(b.hdrs, rec.Headers...)
	b.hdrs = append(b.hdrs, Header{}, Header{}) // room for kguard.enc and kguard.sig
	newHeaders := b.hdrs[hs : hs+n : hs+n+2]
	jsonAt := b.jsonAt[:0]
	for i := range plan {
		l := &plan[i]
		k := l.k
		if !v2 { // version 2 writes its tables per batch (protectV2)
			h.add(l)
		}
		if l.f.kind == KindJSON {
			jsonAt = append(jsonAt, i)
			continue
		}
		pt := l.plaintext(rec)
		var ct []byte
		if cts != nil && cts[i] != nil {
			ct = cts[i]
		} else {
			b.aad = appendAAD(b.aad[:0], h.version, rec.Topic, l.f.kind, l.f.locator, k.ref.id, k.ref.alg, h.nonce, h.index, l.occ)
			var err error
			if ct, err = k.sealAppend(make([]byte, 0, k.sealedLen(len(pt))), pt, b.aad, b.iv(k)); err != nil {
				return fmt.Errorf("%w: encrypt %s: %v", ErrInvalidRecord, l.f.locator, err)
			}
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
			ct := b.ct
			if cts != nil && cts[i] != nil {
				ct = cts[i]
			} else {
				b.aad = appendAAD(b.aad[:0], h.version, rec.Topic, KindJSON, l.f.locator, k.ref.id, k.ref.alg, h.nonce, h.index, l.occ)
				var err error
				if b.ct, err = k.sealAppend(b.ct[:0], doc[l.start:l.end], b.aad, b.iv(k)); err != nil {
					return fmt.Errorf("%w: encrypt %s: %v", ErrInvalidRecord, l.f.locator, err)
				}
				ct = b.ct
			}
			out = append(out, doc[prev:l.start]...)
			out = append(out, '"')
			out = base64.StdEncoding.AppendEncode(out, ct)
			out = append(out, '"')
			prev = l.end
		}
		out = append(out, doc[prev:]...)
		rec.Value = out[vs:len(out):len(out)]
		b.values = out
	}
	b.jsonAt = jsonAt
	b.keys, b.fields = h.keys, h.fields
	if v2 {
		rec.Headers = newHeaders
		return nil
	}
	if b.encs == nil || cap(b.encs)-len(b.encs) < h.size() {
		b.encs = make([]byte, 0, h.size()*left+h.size()*left/8)
	}
	es := len(b.encs)
	b.encs = h.appendTo(b.encs)
	rec.Headers = append(newHeaders, Header{Key: EncHeader, Value: b.encs[es:len(b.encs):len(b.encs)]})
	return nil
}

// add puts l's key (once) and field into a version 1 header's tables.
func (h *encHeader) add(l *located) {
	idx := -1
	for j := range h.keys {
		if h.keys[j] == l.k.ref {
			idx = j
			break
		}
	}
	if idx < 0 {
		h.keys = append(h.keys, l.k.ref)
		idx = len(h.keys) - 1
	}
	if l.occ == 0 || l.f.kind != KindHeader {
		h.fields = append(h.fields, fieldRef{kind: l.f.kind, locator: l.f.locator, key: idx})
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
