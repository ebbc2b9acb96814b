package crypto

import (
	"encoding/binary"
	"fmt"
)

// v2Scratch is the working memory of protectV2's headers.
type v2Scratch struct {
	keyIdx  map[*dataKey]int
	keys    []keyRef
	fieldOf []int // per rule field: its index in the table, -1 when absent
	table   []fieldRef
	present []bool
	rkeys   []int
	out     []byte
}

// protectV2 encrypts recs (planned in all, bounds as in ProtectBatchWith)
// in format version 2, adds their kguard.enc / MarkHeader headers, then
// signs.
func (p *Protector) protectV2(recs []*Record, all []located, bounds []int, prot *Protection, s *Scratch, o ProduceOptions) error {
	if len(recs) == 0 {
		return nil
	}
	for _, rec := range recs {
		if rec.Topic != recs[0].Topic {
			return invalidf("records of several topics in one batch")
		}
	}
	b := &s.enc
	nonce := b.take(batchNonceSize)
	sealed := p.sealing(o, prot)
	var cts [][]byte
	var c ctxHeader // batched: the batch context
	if o.Batched {
		s.v2.buildTables(recs, all, bounds, prot)
		c = ctxHeader{batch: true, sealed: sealed, nonce: nonce, count: len(recs), keys: s.v2.keys, fields: s.v2.table}
		if sealed {
			if err := sealBatch(recs, all, bounds, &s.v2, &c, &s.seal); err != nil {
				return err
			}
			cts, c.seals = s.seal.ct, s.seal.seals
		}
	}
	for i, rec := range recs {
		var rc [][]byte
		if cts != nil {
			rc = cts[bounds[i]:bounds[i+1]]
		}
		if err := p.encryptRecord(rec, all[bounds[i]:bounds[i+1]], b, len(recs)-i, nonce, i, rc); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	if o.Batched {
		s.v2.batchHeaders(recs, all, bounds, prot, &c)
	} else {
		s.v2.recordHeaders(recs, all, bounds, nonce)
	}
	if !prot.sign {
		return nil
	}
	sigs, err := p.signer.sign3(&s.sig, p.now().UnixMilli(), recs[0].Topic, recs, o, p.batchMode)
	if err != nil {
		return unavailable("crypto: sign", err)
	}
	for i, sv := range sigs {
		recs[i].Headers = append(recs[i].Headers, Header{Key: SigHeader, Value: sv})
	}
	return nil
}

func (v *v2Scratch) keyIndex(k *dataKey) int {
	if i, ok := v.keyIdx[k]; ok {
		return i
	}
	v.keyIdx[k] = len(v.keys)
	v.keys = append(v.keys, k.ref)
	return len(v.keys) - 1
}

func (v *v2Scratch) reset(nfields, nrecs int) {
	if v.keyIdx == nil {
		v.keyIdx = map[*dataKey]int{}
	}
	clear(v.keyIdx)
	v.keys = v.keys[:0]
	v.table = v.table[:0]
	v.fieldOf = grown(v.fieldOf, nfields)[:nfields]
	for i := range v.fieldOf {
		v.fieldOf[i] = -1
	}
	v.out = grown(v.out, 256+nrecs*8)
}

// buildTables builds the batch's key table and field table from its
// planned fields.
func (v *v2Scratch) buildTables(recs []*Record, all []located, bounds []int, prot *Protection) {
	v.reset(len(prot.fields), len(recs))
	for i := range recs {
		for j := bounds[i]; j < bounds[i+1]; j++ {
			l := &all[j]
			ki := v.keyIndex(l.k)
			l.ki = ki
			if v.fieldOf[l.fi] < 0 {
				v.fieldOf[l.fi] = len(v.table)
				v.table = append(v.table, fieldRef{kind: l.f.kind, locator: l.f.locator, key: ki})
			}
		}
	}
}

// batchHeaders writes the batch context (key table, field table, record
// count, and for a sealed batch its seals) into recs[0] and MarkHeader
// (index, and what differs) into the others, after buildTables.
func (v *v2Scratch) batchHeaders(recs []*Record, all []located, bounds []int, prot *Protection, c *ctxHeader) {
	nt := len(v.table)
	v.present = grown(v.present, nt)[:nt]
	v.rkeys = grown(v.rkeys, nt)[:nt]
	out := v.out
	for i, rec := range recs {
		clear(v.present)
		for _, l := range all[bounds[i]:bounds[i+1]] {
			j := v.fieldOf[l.fi]
			v.present[j], v.rkeys[j] = true, l.ki
		}
		start := len(out)
		name := MarkHeader
		if i == 0 {
			if len(prot.fields) == 0 { // signed only: the signature holds the count
				continue
			}
			out = c.appendTo(out)
			name = EncHeader
		} else {
			out = binary.AppendUvarint(out, uint64(i))
		}
		out = appendRecPart(out, v.table, v.present, v.rkeys)
		rec.Headers = append(rec.Headers, Header{Key: name, Value: out[start:len(out):len(out)]})
	}
	v.out = out
}

// recordHeaders gives every record holding an encrypted field its own
// context: its keys and fields only.
func (v *v2Scratch) recordHeaders(recs []*Record, all []located, bounds []int, nonce []byte) {
	v.reset(0, len(recs)*24)
	out := v.out
	for i, rec := range recs {
		plan := all[bounds[i]:bounds[i+1]]
		if len(plan) == 0 {
			continue
		}
		clear(v.keyIdx)
		v.keys, v.table = v.keys[:0], v.table[:0]
		for _, l := range plan {
			ki := v.keyIndex(l.k)
			if l.occ == 0 || l.f.kind != KindHeader {
				v.table = append(v.table, fieldRef{kind: l.f.kind, locator: l.f.locator, key: ki})
			}
		}
		start := len(out)
		c := ctxHeader{nonce: nonce, count: len(recs), index: i, keys: v.keys, fields: v.table}
		out = c.appendTo(out)
		rec.Headers = append(rec.Headers, Header{Key: EncHeader, Value: out[start:len(out):len(out)]})
	}
	v.out = out
}
