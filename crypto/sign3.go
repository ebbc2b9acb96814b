package crypto

// Version 3 signatures (format version 2): the producer's identity is
// signed; a batch-context batch is signed once over a BLAKE3 (mode 3, the
// default) or SHA-256 (mode 1) digest of all its records (one pass over
// the batch's bytes), self-contained records over a Merkle root with a
// proof each.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"hash"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/zeebo/blake3"
)

// digestDomain starts the stream of a batch digest (mode 1: SHA-256);
// digestDomainB3 that of mode 3 (BLAKE3), so the two never hash the same
// bytes.
const (
	digestDomain   = "kguard/v3/batch-digest\x00"
	digestDomainB3 = "kguard/v3/batch-digest-blake3\x00"
)

// digestFlush is how many canonical bytes are gathered before they are
// hashed (fewer, larger writes).
const digestFlush = 64 << 10

// digester computes batch digests, reusing its hashers and buffer.
type digester struct {
	sha hash.Hash
	b3  *blake3.Hasher
	buf []byte
}

// digestDirect is the value length from which a value is hashed where it
// is rather than copied into the buffer first.
const digestDirect = 256

// batchDigest is the hash of a batch mode (SHA-256 for sigModeBatch,
// BLAKE3-256 for sigModeBatchB3) over the mode's domain, then the
// canonical encoding of every record in order.
func (d *digester) batchDigest(mode uint8, recs []*Record) [32]byte {
	h, domain := d.hasher(mode)
	b := append(d.buf[:0], domain...)
	for _, rec := range recs {
		if len(rec.Value) >= digestDirect {
			// canonical3, with the value hashed in place (one copy less)
			b = appendNullable(b, rec.Key)
			b = binary.AppendUvarint(b, uint64(len(rec.Value))+1)
			_, _ = h.Write(b)
			_, _ = h.Write(rec.Value)
			b = canonicalHeaders(b[:0], rec)
			continue
		}
		if n := canonicalSize(rec); cap(b)-len(b) < n {
			if len(b) > 0 {
				_, _ = h.Write(b)
				b = b[:0]
			}
			if cap(b) < n {
				b = make([]byte, 0, max(n, digestFlush+digestFlush/4))
			}
		}
		b = canonical3(b, rec)
		if len(b) >= digestFlush {
			_, _ = h.Write(b)
			b = b[:0]
		}
	}
	_, _ = h.Write(b)
	d.buf = b[:0]
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// hasher returns the reset hasher of a batch mode and its domain.
func (d *digester) hasher(mode uint8) (hash.Hash, string) {
	if mode == sigModeBatchB3 {
		if d.b3 == nil {
			d.b3 = blake3.New()
		}
		d.b3.Reset()
		return d.b3, digestDomainB3
	}
	if d.sha == nil {
		d.sha = sha256.New()
	}
	d.sha.Reset()
	return d.sha, digestDomain
}

// leafHash3 is the RFC 6962 leaf hash of a record's canonical encoding.
func leafHash3(buf []byte, rec *Record) ([32]byte, []byte) {
	buf = append(buf[:0], rfc6962.RFC6962LeafHashPrefix)
	buf = canonical3(buf, rec)
	return sha256.Sum256(buf), buf
}

// sign3 signs recs (already encrypted, with their kguard.enc / kg
// headers) and returns the kguard.sig values: one for the first record
// (batched), or one per record with its inclusion proof (self-contained).
func (s *Signer) sign3(sc *sigScratch, ts int64, topic string, recs []*Record, o ProduceOptions, batchMode uint8) ([][]byte, error) {
	if len(recs) > maxBatchSize {
		return nil, fmt.Errorf("batch of %d records too large to sign", len(recs))
	}
	sh := sig3Header{timestamp: ts, keyID: s.keyID, producer: o.Producer, count: uint64(len(recs))}
	var digest [32]byte
	var t *merkleBatch
	if o.Batched {
		sh.mode = batchMode
		digest = sc.dg.batchDigest(batchMode, recs)
	} else {
		sh.mode = sigModeTree
		leaves := grown(sc.leaves, len(recs))[:len(recs)]
		sc.leaves = leaves
		buf := sc.buf
		for i, rec := range recs {
			leaves[i], buf = leafHash3(buf, rec)
		}
		sc.buf = buf
		t = &sc.tree
		t.init(leaves)
		digest = t.build(0, len(recs))
	}
	sc.buf = message3(sc.buf[:0], &sh, topic, digest[:])
	sig, err := s.s.Sign(sc.buf)
	if err != nil {
		return nil, err
	}
	sh.sig = sig
	if o.Batched {
		out := grown(sc.out, 1)[:1]
		sc.out = out
		out[0] = sh.appendTo(nil)
		return out, nil
	}
	all := grown(sc.all, len(recs)*(64+len(sig)+len(s.keyID)+len(o.Producer.Principal)+len(o.Producer.Tenant)+len(o.Producer.ClientID))+len(t.proofs)*sha256.Size)
	out := grown(sc.out, len(recs))[:len(recs)]
	sc.out = out
	var proof [maxProofLen][]byte
	for i := range recs {
		sh.index = uint64(i)
		p := t.proof(i)
		sh.proof = proof[:len(p)]
		for j := range p {
			sh.proof[j] = p[j][:]
		}
		start := len(all)
		all = sh.appendTo(all)
		out[i] = all[start:len(all):len(all)]
	}
	sc.all = all
	return out, nil
}

// checkCached verifies sig over s.buf[:ml] (the signed message) with the
// key keyID names, at most once per distinct message and signature (the
// last of this batch, then the shared cache of verified ones).
func (v *Verifier) checkCached(s *verifyScratch, keyID string, ts int64, sig []byte) error {
	ml := len(s.buf)
	s.buf = append(s.buf, 0)
	s.buf = append(s.buf, sig...)
	k := sha256.Sum256(s.buf)
	msg := s.buf[:ml]
	if s.hasLast && k == s.last {
		return nil
	}
	if v.roots.seen(k) {
		// verified before; the key may have been revoked since
		if err := v.recheckKey(keyID, ts); err != nil {
			return err
		}
	} else {
		if err := v.check(keyID, ts, sig, msg); err != nil {
			return err
		}
		v.roots.add(k)
	}
	s.last, s.hasLast = k, true
	return nil
}

// verifyTree3 checks a self-contained record's version 3 signature.
func (v *Verifier) verifyTree3(s *verifyScratch, sh *sig3Header, rec *Record) error {
	if sh.mode != sigModeTree {
		return errors.New("batch signature outside its batch")
	}
	s.growFor(canonicalSize(rec) + 1)
	var lh [32]byte
	lh, s.buf = leafHash3(s.buf, rec)
	root, err := rootFromProof(sh.index, sh.count, lh, sh.proof)
	if err != nil {
		return errors.New("bad inclusion proof")
	}
	s.buf = message3(s.buf[:0], sh, rec.Topic, root[:])
	return v.checkCached(s, sh.keyID, sh.timestamp, sh.sig)
}

// verifyBatch3 checks the version 3 batch signature sh (from the first
// record) over all records of the batch.
func (v *Verifier) verifyBatch3(s *verifyScratch, sh *sig3Header, recs []*Record) error {
	if !sh.batchMode() || sh.count != uint64(len(recs)) {
		return errors.New("batch signature does not match the batch")
	}
	digest := s.dg.batchDigest(sh.mode, recs)
	s.buf = message3(s.buf[:0], sh, recs[0].Topic, digest[:])
	return v.checkCached(s, sh.keyID, sh.timestamp, sh.sig)
}

func (s *verifyScratch) growFor(n int) {
	if cap(s.buf) < n {
		s.buf = make([]byte, 0, n+n/4)
	}
}
