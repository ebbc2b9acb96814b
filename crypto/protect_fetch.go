// The fetch direction: records coming back from the broker are verified,
// then decrypted or masked.

package crypto

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

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
	// Format version 2 batch: the first record holds the context of all.
	bv := scanBatch(recs, in)
	var fieldBuf []fieldRef
	ctxRefs := false // the batch context's keys are in refs
	for i, rec := range recs {
		r := &res[i]
		encVal, encN := findHeader(rec.Headers, EncHeader)
		sigVal, sigN := findHeader(rec.Headers, SigHeader)
		_, markN := findHeader(rec.Headers, MarkHeader)
		// a record of a broken format 2 batch fails with it when it
		// carries kguard headers; one without is judged on its own
		bm := bv
		if bv != nil && bv.err != nil && encN+sigN+markN == 0 {
			bm = nil
		}
		if o.Verify {
			if _, n := findHeader(rec.Headers, VerifyHeader); n > 0 { // only kguard marks records
				rec.Headers = slices.DeleteFunc(rec.Headers, func(h Header) bool { return h.Key == VerifyHeader })
			}
			if _, n := findHeader(rec.Headers, ProducerHeader); n > 0 {
				rec.Headers = slices.DeleteFunc(rec.Headers, func(h Header) bool { return h.Key == ProducerHeader })
			}
			st := SigMissing
			var why error
			switch {
			case bm != nil:
				st, why = bm.status(p.verify, &vs, recs)
				if bv.sig != nil {
					r.Producer = &bv.sig.producer
				}
			case sigN > 1:
				st, why = SigBad, fmt.Errorf("%d kguard.sig headers", sigN)
			case sigN == 1 && complete:
				st = SigOK
			case sigN == 1:
				st, why = p.verifyRecord(&vs, rec, sigVal)
				r.Producer = claimedProducer(sigVal)
			}
			if st == SigMissing && o.RequireSignature {
				why = errNoSignature
			}
			r.Signature, r.SigErr = st, why
			if st == SigBad || (st == SigMissing && o.RequireSignature) {
				switch o.OnBadSignature {
				case SigFail:
					return nil, integrityf("record %d: signature %s: %v", i, st, why)
				case SigDrop:
					r.Drop = true
					continue
				default:
					rec.Headers = append(rec.Headers, Header{Key: VerifyHeader, Value: []byte(st.String())})
				}
			}
		}
		h := &hdrVals[i]
		switch {
		case bm != nil && bm.err != nil:
			r.Protected = true
			r.Err = fmt.Errorf("%w: %v", ErrIntegrity, bm.err)
			continue
		case bm != nil && bm.ctx != nil:
			c := bv.ctx
			var err error
			start := len(fieldBuf)
			if fieldBuf, err = recordFields(fieldBuf, c, bv.parts[i]); err != nil {
				r.Protected = true
				r.Err = fmt.Errorf("%w: %v", ErrIntegrity, err)
				continue
			}
			*h = encHeader{version: encVersion2, nonce: c.nonce, index: i, count: c.count, keys: c.keys, fields: fieldBuf[start:len(fieldBuf):len(fieldBuf)]}
			if !ctxRefs && o.Decrypt {
				refs, ctxRefs = append(refs, c.keys...), true
			}
		case bm == nil && markN > 0:
			r.Protected = true
			r.Err = integrityf("record of a format 2 batch without its batch context")
			continue
		case encN == 0:
			if o.Decrypt && !o.KeepHeaders && (sigN > 0 || markN > 0) {
				rec.Headers = rewriteKguardHeaders(rec.Headers, nil, false)
			}
			continue
		case encN > 1:
			r.Protected = true
			r.Err = integrityf("%d kguard.enc headers", encN)
			continue
		default:
			if err := parseAnyEncHeader(h, encVal, in, &fieldBuf); err != nil {
				r.Protected = true
				r.Err = fmt.Errorf("%w: %v", ErrIntegrity, err)
				continue
			}
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
		r.Protected = true
		hdrs[i] = h
	}
	var keys *resolved
	if o.Decrypt && len(refs) > 0 {
		var err error
		if keys, err = p.keys.resolve(ctx, refs); err != nil {
			return nil, err
		}
	}
	var d batchDec
	if o.Decrypt && bv != nil && bv.err == nil && bv.ctx != nil && bv.ctx.sealed && keys != nil {
		p.openSealed(recs, hdrs, bv, keys, &d)
	}
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
	if o.ShowProducer {
		for i, rec := range recs {
			if r := &res[i]; r.Signature == SigOK && r.Producer != nil && !r.Drop {
				rec.Headers = append(rec.Headers, Header{Key: ProducerHeader, Value: producerJSON(r.Producer)})
			}
		}
	}
	return res, nil
}

// Reasons a signature is bad or missing that no verification step names.
var (
	errNoVerifier  = errors.New("no signature verifier configured")
	errNoSignature = errors.New("no kguard.sig (signature required)")
)

// verifyRecord checks one record's own signature; the error says why it
// is bad.
func (p *Protector) verifyRecord(s *verifyScratch, rec *Record, sig []byte) (SigStatus, error) {
	if p.verify == nil {
		return SigBad, errNoVerifier
	}
	if err := p.verify.verifyWith(s, rec, sig); err != nil {
		return SigBad, err
	}
	return SigOK, nil
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

// wholeField is the record's value (KindValue) or key (KindKey).
func wholeField(rec *Record, kind FieldKind) []byte {
	if kind == KindKey {
		return rec.Key
	}
	return rec.Value
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
		sealed := d.seal.on && kr.alg == AES256GCM
		dec := func(ct []byte, occ int) ([]byte, error) {
			if sealed {
				return d.seal.sealedField(h.index, fi, occ, f.locator)
			}
			d.aad = appendAAD(d.aad[:0], h.version, rec.Topic, f.kind, f.locator, kr.id, kr.alg, h.nonce, h.index, occ)
			pt, err := open(k, ct, d.aad)
			if err != nil {
				return nil, integrityf("field %s does not decrypt (tampered, moved or wrong key)", f.locator)
			}
			return pt, nil
		}
		switch f.kind {
		case KindValue, KindKey:
			src := wholeField(rec, f.kind)
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
			if sealed {
				pt, err := dec(nil, 0)
				if err != nil {
					r.Err = err
					return
				}
				splices = append(splices, splice{s, e, pt})
				ok = append(ok, dn)
				continue
			}
			if d.ct, err = decodeB64Append(d.ct[:0], rec.Value[s:e]); err != nil {
				r.Err = integrityf("field %s: %v", f.locator, err)
				return
			}
			d.aad = appendAAD(d.aad[:0], h.version, rec.Topic, f.kind, f.locator, kr.id, kr.alg, h.nonce, h.index, 0)
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
	placed := false
	for _, h := range hs {
		switch {
		case h.Key == EncHeader || h.Key == MarkHeader && encVal != nil && !placed:
			// a format 2 batch member's fields left encrypted get their
			// own (self-contained) context in place of its mark
			if encVal != nil && !placed {
				out = append(out, Header{Key: EncHeader, Value: encVal})
				placed = true
			}
		case (h.Key == SigHeader || h.Key == MarkHeader) && !keepSig:
		case h.Key == ProducerHeader:
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
		if hd.Key != EncHeader && hd.Key != SigHeader && hd.Key != MarkHeader {
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
	seal    sealOpen // a sealed batch's plaintexts
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
