package crypto

// Sealed batches (docs/crypto.md, "Sealed batches"): in a format 2 batch
// written once per batch (ProduceOptions.Batched), the AES-GCM fields of
// all records under one data key are encrypted by one AEAD call. Each
// field keeps only its ciphertext (as long as its plaintext); the IV and
// the tag of each key's call are in the batch context (record 0), and the
// AAD binds the batch (topic, nonce, record count, both tables) and where
// every field's bytes sit (record, field, occurrence, length), so no byte
// can move between fields or records and no field boundary can shift.
// AES-SIV fields stay sealed one by one (their ciphertexts are
// deterministic and compared across batches).

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// sealSize is what the context holds per AES-GCM key: IV, tag.
const sealSize = gcmIVSize + gcmTagSize

// gcmKeys counts the AES-GCM keys of a key table: the keys with a seal.
func gcmKeys(keys []keyRef) int {
	n := 0
	for _, k := range keys {
		if k.alg == AES256GCM {
			n++
		}
	}
	return n
}

// sealSlice is where one field occurrence's bytes sit in its key's stream.
type sealSlice struct {
	rec, field, occ, n int
}

// appendSealAAD writes the AAD of key ki's stream in a sealed batch.
func appendSealAAD(b []byte, topic string, c *ctxHeader, ki int, sl []sealSlice) []byte {
	b = append(b, "kguard.seal"...)
	b = append(b, 0, encVersion2)
	b = appendString(b, topic)
	b = appendBytes(b, c.nonce)
	b = binary.AppendUvarint(b, uint64(c.count))
	b = binary.AppendUvarint(b, uint64(ki))
	b = appendTables(b, c.keys, c.fields)
	b = binary.AppendUvarint(b, uint64(len(sl)))
	for _, s := range sl {
		b = binary.AppendUvarint(b, uint64(s.rec))
		b = binary.AppendUvarint(b, uint64(s.field))
		b = binary.AppendUvarint(b, uint64(s.occ))
		b = binary.AppendUvarint(b, uint64(s.n))
	}
	return b
}

// sealScratch is the working memory of sealing one batch.
type sealScratch struct {
	streams [][]byte      // per key of the table: plaintext, then ciphertext
	slices  [][]sealSlice // per key: its stream's layout
	ks      []*dataKey    // per key of the table
	off     []int         // per located field: its bytes in its key's stream
	end     []int
	ct      [][]byte // per located field: its ciphertext (nil: sealed alone)
	order   []int
	aad     []byte
	seals   []byte
}

// sealBatch encrypts the AES-GCM fields of a planned batch (all, bounds as
// in ProtectBatchWith), one AEAD call per data key, after v's tables are
// built into c (the batch context but its seals). It fills z.ct (aligned
// with all) and z.seals.
func sealBatch(recs []*Record, all []located, bounds []int, v *v2Scratch, c *ctxHeader, z *sealScratch) error {
	nk := len(v.keys)
	z.ks = grown(z.ks, nk)[:nk]
	for k, i := range v.keyIdx {
		z.ks[i] = k
	}
	z.streams = grown(z.streams, nk)[:nk]
	z.slices = grown(z.slices, nk)[:nk]
	for i := range nk {
		z.streams[i], z.slices[i] = z.streams[i][:0], z.slices[i][:0]
	}
	z.off = grown(z.off, len(all))[:len(all)]
	z.end = grown(z.end, len(all))[:len(all)]
	z.ct = grown(z.ct, len(all))[:len(all)]
	clear(z.ct)
	for i, rec := range recs {
		// the record's fields by table index, then occurrence
		order := z.order[:0]
		for j := bounds[i]; j < bounds[i+1]; j++ {
			order = append(order, j)
			for m := len(order) - 1; m > 0 && sealBefore(v, &all[order[m]], &all[order[m-1]]); m-- {
				order[m], order[m-1] = order[m-1], order[m]
			}
		}
		z.order = order
		for _, j := range order {
			l := &all[j]
			if l.k.gcm == nil {
				continue
			}
			pt := l.plaintext(rec)
			if len(pt) > maxFieldSize {
				return fmt.Errorf("%w: field %s of %d bytes too large", ErrInvalidRecord, l.f.locator, len(pt))
			}
			ki := l.ki
			z.off[j] = len(z.streams[ki])
			z.streams[ki] = append(z.streams[ki], pt...)
			z.end[j] = len(z.streams[ki])
			z.slices[ki] = append(z.slices[ki], sealSlice{rec: i, field: v.fieldOf[l.fi], occ: l.occ, n: len(pt)})
		}
	}
	ng := gcmKeys(v.keys)
	z.seals = grown(z.seals, ng*sealSize)[:ng*sealSize]
	if _, err := rand.Read(z.seals); err != nil { // IVs (the tags are overwritten)
		return unavailable("crypto: random", err)
	}
	g := 0
	for ki, k := range z.ks {
		if k.gcm == nil {
			continue
		}
		seal := z.seals[g*sealSize : (g+1)*sealSize]
		g++
		z.aad = appendSealAAD(z.aad[:0], recs[0].Topic, c, ki, z.slices[ki])
		pt := z.streams[ki]
		ct := k.gcm.Seal(pt[:0], seal[:gcmIVSize], pt, z.aad)
		copy(seal[gcmIVSize:], ct[len(pt):])
		z.streams[ki] = ct
	}
	for j := range all {
		if l := &all[j]; l.k.gcm != nil {
			s, e := z.off[j], z.end[j]
			z.ct[j] = z.streams[l.ki][s:e:e]
		}
	}
	clear(z.ks) // the scratch is pooled: hold no data key beyond the batch
	return nil
}

// sealBefore orders a record's fields in its key streams: by table index,
// then occurrence.
func sealBefore(v *v2Scratch, a, b *located) bool {
	fa, fb := v.fieldOf[a.fi], v.fieldOf[b.fi]
	return fa < fb || fa == fb && a.occ < b.occ
}

// sealedPT is one field occurrence of a sealed batch being read: where its
// bytes sit in its key's stream, then its plaintext.
type sealedPT struct {
	fi, occ int // index in the record's fields, occurrence
	ki      int // its key
	s, e    int // its bytes in the key's stream
	pt      []byte
	ok      bool // pt opened
}

// sealOpen is the working memory of reading one sealed batch.
type sealOpen struct {
	on      bool
	streams [][]byte
	slices  [][]sealSlice
	errs    []error // per key: why its stream does not open
	pts     []sealedPT
	at      []int // per record: its first entry in pts (len(recs)+1)
	tidx    []int
	aad     []byte
}

// partFieldIdx appends the context's table index of each field a record
// part names, in order (the part was checked by recordFields).
func partFieldIdx(dst []int, c *ctxHeader, part []byte) []int {
	for j := range c.fields {
		if len(part) == 0 || part[j/8]&(1<<(j%8)) != 0 {
			dst = append(dst, j)
		}
	}
	return dst
}

// openSealed gathers the AES-GCM ciphertexts of a sealed batch per data
// key, in the order they were sealed, and opens each key's stream once.
// decryptRecord then takes each field's plaintext from d.seal. Every
// record must be readable: if one was not (dropped, malformed), no stream
// opens. A stream that fails its tag fails every field under its key.
func (p *Protector) openSealed(recs []*Record, hdrs []*encHeader, bv *batchView, keys *resolved, d *batchDec) {
	z := &d.seal
	c := bv.ctx
	nk := len(c.keys)
	z.on = true
	z.streams = grown(z.streams, nk)[:nk]
	z.slices = grown(z.slices, nk)[:nk]
	z.errs = grown(z.errs, nk)[:nk]
	for i := range nk {
		z.streams[i], z.slices[i], z.errs[i] = z.streams[i][:0], z.slices[i][:0], nil
	}
	z.pts = z.pts[:0]
	z.at = grown(z.at, len(recs)+1)[:1]
	fail := func(err error) {
		for i := range z.errs {
			if z.errs[i] == nil {
				z.errs[i] = err
			}
		}
	}
	add := func(rec, fi, tj, occ, ki int, ct []byte, decode bool) {
		if z.errs[ki] != nil {
			return
		}
		s := len(z.streams[ki])
		if decode {
			var err error
			if z.streams[ki], err = decodeB64Append(z.streams[ki], ct); err != nil {
				z.errs[ki] = integrityf("field %s: %v", c.fields[tj].locator, err)
				return
			}
		} else {
			z.streams[ki] = append(z.streams[ki], ct...)
		}
		e := len(z.streams[ki])
		z.slices[ki] = append(z.slices[ki], sealSlice{rec: rec, field: tj, occ: occ, n: e - s})
		z.pts = append(z.pts, sealedPT{fi: fi, occ: occ, ki: ki, s: s, e: e})
	}
	for i, rec := range recs {
		h := hdrs[i]
		if h == nil {
			fail(integrityf("record %d of a sealed batch is not readable", i))
			z.at = append(z.at, len(z.pts))
			continue
		}
		z.tidx = partFieldIdx(z.tidx[:0], c, bv.parts[i])
		var spans []span
		for fi, f := range h.fields {
			ki := f.key
			if c.keys[ki].alg != AES256GCM {
				continue
			}
			tj := z.tidx[fi]
			switch f.kind {
			case KindValue, KindKey:
				src := wholeField(rec, f.kind)
				if src == nil {
					z.errs[ki] = integrityf("field %s is null", f.locator)
					continue
				}
				add(i, fi, tj, 0, ki, src, false)
			case KindHeader:
				name := f.locator[len("@header:"):]
				occ := 0
				for _, hd := range rec.Headers {
					if hd.Key == name && hd.Value != nil {
						add(i, fi, tj, occ, ki, hd.Value, false)
						occ++
					}
				}
			case KindJSON:
				if spans == nil {
					var err error
					if spans, err = p.locateJSON(rec, h.fields, d); err != nil {
						z.errs[ki] = err
						continue
					}
				}
				sp := spans[fi]
				add(i, fi, tj, 0, ki, rec.Value[sp.start:sp.end], true)
			}
		}
		z.at = append(z.at, len(z.pts))
	}
	g := 0
	for ki, kr := range c.keys {
		if kr.alg != AES256GCM {
			continue
		}
		seal := c.seals[g*sealSize : (g+1)*sealSize]
		g++
		k := keys.keys[cacheID(kr)]
		if k == nil || z.errs[ki] != nil { // gone or unavailable: decryptRecord says which
			continue
		}
		z.aad = appendSealAAD(z.aad[:0], recs[0].Topic, c, ki, z.slices[ki])
		ct := append(z.streams[ki], seal[gcmIVSize:]...)
		pt, err := k.gcm.Open(ct[:0], seal[:gcmIVSize], ct, z.aad)
		if err != nil {
			z.errs[ki] = integrityf("sealed fields under key %d do not decrypt (tampered, moved or wrong key)", ki)
			continue
		}
		z.streams[ki] = pt
	}
	for i := range z.pts {
		e := &z.pts[i]
		if z.errs[e.ki] == nil && keys.keys[cacheID(c.keys[e.ki])] != nil {
			e.pt, e.ok = z.streams[e.ki][e.s:e.e:e.e], true
		}
	}
}

// sealedField returns the plaintext of record rec's field fi, occurrence
// occ, from an opened sealed batch.
func (z *sealOpen) sealedField(rec, fi, occ int, locator string) ([]byte, error) {
	for _, e := range z.pts[z.at[rec]:z.at[rec+1]] {
		if e.fi == fi && e.occ == occ {
			if err := z.errs[e.ki]; err != nil {
				return nil, err
			}
			if !e.ok {
				break
			}
			return e.pt, nil
		}
	}
	return nil, integrityf("field %s is not in its sealed batch", locator)
}
