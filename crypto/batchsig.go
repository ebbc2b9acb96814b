package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Batch signatures (kguard.sig version 2): one Ed25519 signature per
// ProtectBatch call over the RFC 6962 Merkle root of the records' canonical
// encodings; each record carries the signature and its inclusion proof, so
// it still verifies on its own. Produce pays one signature per batch, fetch
// one verification per batch (verified roots are cached).

const (
	sigVersionBatch = 2
	maxBatchSize    = 1 << 20
	maxProofLen     = 64
)

// merkleBatch computes the RFC 6962 tree of a batch and every leaf's
// inclusion proof in one pass: each subtree hash is computed once, and the
// proofs are written into one flat buffer (no allocation per node).
type merkleBatch struct {
	leaves [][32]byte
	depth  []int // proof length of each leaf
	off    []int // offset of each leaf's proof in proofs (in hashes)
	fill   []int // hashes written so far per leaf
	proofs [][32]byte
}

// split is the largest power of two smaller than n (n > 1).
func split(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

func newMerkleBatch(leaves [][32]byte) *merkleBatch {
	t := &merkleBatch{}
	t.init(leaves)
	return t
}

// init prepares t for leaves, reusing t's slices when they are large enough.
func (t *merkleBatch) init(leaves [][32]byte) {
	n := len(leaves)
	t.leaves = leaves
	t.depth = zeroed(t.depth, n)
	t.off = zeroed(t.off, n)
	t.fill = zeroed(t.fill, n)
	t.countDepth(0, n)
	total := 0
	for i, d := range t.depth {
		t.off[i] = total
		total += d
	}
	t.proofs = grown(t.proofs, total)[:total]
}

// zeroed is s with length n, all zero, reusing its memory when it can.
func zeroed(s []int, n int) []int {
	s = grown(s, n)[:n]
	clear(s)
	return s
}

// sigScratch is signBatch's reusable memory (see Scratch).
type sigScratch struct {
	leaves [][32]byte
	tree   merkleBatch
	buf    []byte
	all    []byte
	out    [][]byte
	dg     digester
}

func (t *merkleBatch) countDepth(lo, hi int) {
	if hi-lo <= 1 {
		return
	}
	for m := lo; m < hi; m++ {
		t.depth[m]++
	}
	k := split(hi - lo)
	t.countDepth(lo, lo+k)
	t.countDepth(lo+k, hi)
}

// build returns the hash of [lo,hi) and appends, bottom-up, the sibling
// hash at this level to the proof of every leaf below.
func (t *merkleBatch) build(lo, hi int) [32]byte {
	if hi-lo == 1 {
		return t.leaves[lo]
	}
	k := split(hi - lo)
	l := t.build(lo, lo+k)
	r := t.build(lo+k, hi)
	for m := lo; m < lo+k; m++ {
		t.proofs[t.off[m]+t.fill[m]] = r
		t.fill[m]++
	}
	for m := lo + k; m < hi; m++ {
		t.proofs[t.off[m]+t.fill[m]] = l
		t.fill[m]++
	}
	var b [1 + 2*sha256.Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], l[:])
	copy(b[1+sha256.Size:], r[:])
	return sha256.Sum256(b[:])
}

// proof is the inclusion proof of leaf m (after build).
func (t *merkleBatch) proof(m int) [][32]byte {
	return t.proofs[t.off[m] : t.off[m]+t.depth[m]]
}

// leafHash is the RFC 6962 leaf hash of rec's canonical encoding; buf is
// scratch space, returned for reuse.
func leafHash(buf []byte, version uint8, ts int64, keyID string, rec *Record) ([32]byte, []byte) {
	buf = append(buf[:0], rfc6962.RFC6962LeafHashPrefix)
	buf = signedBytes(buf, version, ts, keyID, rec)
	return sha256.Sum256(buf), buf
}

func rootMessage(buf []byte, ts int64, keyID string, root []byte) []byte {
	b := append(buf, "kguard.sig"...)
	b = append(b, 0, sigVersionBatch)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	b = appendString(b, keyID)
	b = append(b, "root"...)
	return append(b, root...)
}

type batchSigHeader struct {
	timestamp int64
	keyID     string
	sig       []byte
	index     uint64
	size      uint64
	proof     [][]byte
}

func (s *batchSigHeader) marshal() []byte {
	b := make([]byte, 0, 1+8+1+len(s.keyID)+2+len(s.sig)+6+1+32*len(s.proof))
	b = append(b, sigVersionBatch)
	b = binary.BigEndian.AppendUint64(b, uint64(s.timestamp))
	b = appendString(b, s.keyID)
	b = appendBytes(b, s.sig)
	b = binary.AppendUvarint(b, s.index)
	b = binary.AppendUvarint(b, s.size)
	b = binary.AppendUvarint(b, uint64(len(s.proof)))
	for _, p := range s.proof {
		b = append(b, p...)
	}
	return b
}

func parseBatchSigHeader(b []byte) (*batchSigHeader, error) {
	s := &batchSigHeader{}
	if err := parseBatchSigHeaderInto(s, b, nil); err != nil {
		return nil, err
	}
	return s, nil
}

// parseBatchSigHeaderInto decodes into s (reusing s.proof's array), with
// the key id shared through in (may be nil).
func parseBatchSigHeaderInto(s *batchSigHeader, b []byte, in interner) error {
	r := &reader{b: b}
	if v := r.byte1(); r.err == nil && v != sigVersionBatch {
		return fmt.Errorf("kguard.sig: not a batch signature (version %d)", v)
	}
	*s = batchSigHeader{timestamp: int64(r.uint64()), proof: s.proof[:0]}
	s.keyID = r.istring(256, in)
	s.sig = r.bytes(1024)
	s.index = r.uvarint(maxBatchSize)
	s.size = r.uvarint(maxBatchSize)
	n := int(r.uvarint(maxProofLen))
	for i := 0; i < n && r.err == nil; i++ {
		if len(r.b) < sha256.Size {
			r.fail("truncated proof")
			break
		}
		s.proof = append(s.proof, r.b[:sha256.Size:sha256.Size])
		r.b = r.b[sha256.Size:]
	}
	if r.err == nil {
		switch {
		case len(s.sig) == 0:
			r.fail("empty signature")
		case s.size == 0 || s.index >= s.size:
			r.fail("index out of range")
		case len(r.b) != 0:
			r.fail("trailing bytes")
		}
	}
	if r.err != nil {
		return fmt.Errorf("kguard.sig: %w", r.err)
	}
	return nil
}

// rootFromProof is the root an RFC 6962 inclusion proof of leaf hash lh
// at index in a tree of size leads to (RFC 9162 section 2.1.3.2), without
// allocating; TestRootFromProofMatchesLibrary checks it against
// transparency-dev/merkle's proof.RootFromInclusionProof.
func rootFromProof(index, size uint64, lh [32]byte, path [][]byte) ([32]byte, error) {
	if index >= size {
		return [32]byte{}, errors.New("index out of range")
	}
	fn, sn := index, size-1
	r := lh
	var b [1 + 2*sha256.Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	for _, p := range path {
		if sn == 0 || len(p) != sha256.Size {
			return [32]byte{}, errors.New("proof too long")
		}
		if fn&1 == 1 || fn == sn {
			copy(b[1:], p)
			copy(b[1+sha256.Size:], r[:])
			r = sha256.Sum256(b[:])
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			copy(b[1:], r[:])
			copy(b[1+sha256.Size:], p)
			r = sha256.Sum256(b[:])
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return [32]byte{}, errors.New("proof too short")
	}
	return r, nil
}

// signBatch signs recs with one signature and returns each record's
// kguard.sig value. The values share one allocation.
func (s *Signer) signBatch(sc *sigScratch, ts int64, recs []*Record) ([][]byte, error) {
	if len(recs) > maxBatchSize {
		return nil, fmt.Errorf("batch of %d records too large to sign", len(recs))
	}
	leaves := grown(sc.leaves, len(recs))[:len(recs)]
	sc.leaves = leaves
	buf := sc.buf
	for i, rec := range recs {
		leaves[i], buf = leafHash(buf, sigVersionBatch, ts, s.keyID, rec)
	}
	sc.buf = buf
	t := &sc.tree
	t.init(leaves)
	root := t.build(0, len(recs))
	sig, err := s.s.Sign(rootMessage(buf[:0], ts, s.keyID, root[:]))
	if err != nil {
		return nil, err
	}
	fixed := 1 + 8 + binary.MaxVarintLen64 + len(s.keyID) + binary.MaxVarintLen64 + len(sig) + 3*binary.MaxVarintLen64
	all := grown(sc.all, len(recs)*fixed+len(t.proofs)*sha256.Size)
	sc.all = all
	out := grown(sc.out, len(recs))[:len(recs)]
	sc.out = out
	for i := range recs {
		start := len(all)
		all = append(all, sigVersionBatch)
		all = binary.BigEndian.AppendUint64(all, uint64(ts))
		all = appendString(all, s.keyID)
		all = appendBytes(all, sig)
		all = binary.AppendUvarint(all, uint64(i))
		all = binary.AppendUvarint(all, uint64(len(recs)))
		p := t.proof(i)
		all = binary.AppendUvarint(all, uint64(len(p)))
		for j := range p {
			all = append(all, p[j][:]...)
		}
		out[i] = all[start:len(all):len(all)] // capped: appending to one never touches the next
	}
	return out, nil
}

// rootCache remembers signed roots that verified, so the records of one
// batch cost one Ed25519 verification together.
type rootCache struct {
	mu sync.Mutex
	ok map[[32]byte]struct{}
}

const rootCacheSize = 4096

func (c *rootCache) seen(k [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.ok[k]
	return ok
}

func (c *rootCache) add(k [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok == nil || len(c.ok) >= rootCacheSize {
		c.ok = make(map[[32]byte]struct{}, 64)
	}
	c.ok[k] = struct{}{}
}

func (v *Verifier) verifyBatch(s *verifyScratch, rec *Record, hv []byte) error {
	sh := &s.sh
	if err := parseBatchSigHeaderInto(sh, hv, s.in); err != nil {
		return err
	}
	s.grow(rec)
	var lh [32]byte
	lh, s.buf = leafHash(s.buf, sigVersionBatch, sh.timestamp, sh.keyID, rec)
	root, err := rootFromProof(sh.index, sh.size, lh, sh.proof)
	if err != nil {
		return errors.New("bad inclusion proof")
	}
	return v.checkRoot(s, sh.timestamp, sh.keyID, sh.sig, root)
}

// checkRoot verifies the Ed25519 signature over a batch root, at most once
// per batch (the last root of this call, then the shared cache).
func (v *Verifier) checkRoot(s *verifyScratch, ts int64, keyID string, sig []byte, root [32]byte) error {
	s.buf = rootMessage(s.buf[:0], ts, keyID, root[:])
	return v.checkCached(s, keyID, ts, sig)
}

// verifyComplete verifies a fetched batch that holds every record of one
// signed batch, in order, each with exactly one batch signature header: the
// tree is rebuilt once from the records' leaves (n-1 node hashes instead of
// a path of log n per record), every record's inclusion proof must equal the
// rebuilt one, and the root's signature is checked once. It reports false
// when the records are not such a batch (compacted, split, mixed, unsigned)
// or anything fails to verify: the caller then checks each record on its
// own, which finds the bad ones. A true answer is exactly what verifying
// each record on its own would have said.
func (v *Verifier) verifyComplete(s *verifyScratch, recs []*Record) bool {
	n := len(recs)
	if n < 2 {
		return false
	}
	s.hs = grown(s.hs, n)[:n]
	s.leaves = grown(s.leaves, n)[:n]
	for i, rec := range recs {
		hv, cnt := findHeader(rec.Headers, SigHeader)
		if cnt != 1 || len(hv) == 0 || hv[0] != sigVersionBatch {
			return false
		}
		sh := &s.hs[i]
		if err := parseBatchSigHeaderInto(sh, hv, s.in); err != nil {
			return false
		}
		first := &s.hs[0]
		if sh.index != uint64(i) || sh.size != uint64(n) ||
			i > 0 && (sh.timestamp != first.timestamp || sh.keyID != first.keyID || !bytes.Equal(sh.sig, first.sig)) {
			return false
		}
		s.grow(rec)
		s.leaves[i], s.buf = leafHash(s.buf, sigVersionBatch, sh.timestamp, sh.keyID, rec)
	}
	t := &s.tree
	t.init(s.leaves)
	root := t.build(0, n)
	for i := range recs {
		want := t.proof(i)
		if len(want) != len(s.hs[i].proof) {
			return false
		}
		for j := range want {
			if !bytes.Equal(want[j][:], s.hs[i].proof[j]) {
				return false
			}
		}
	}
	return v.checkRoot(s, s.hs[0].timestamp, s.hs[0].keyID, s.hs[0].sig, root) == nil
}
