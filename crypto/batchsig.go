package crypto

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/proof"
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

// merkleTree computes RFC 6962 subtree hashes over leaf hashes, memoized.
type merkleTree struct {
	leaves [][]byte
	memo   map[[2]int][]byte
}

func (t *merkleTree) hash(lo, hi int) []byte {
	if hi-lo == 1 {
		return t.leaves[lo]
	}
	key := [2]int{lo, hi}
	if h, ok := t.memo[key]; ok {
		return h
	}
	k := 1
	for k*2 < hi-lo {
		k *= 2
	}
	h := rfc6962.DefaultHasher.HashChildren(t.hash(lo, lo+k), t.hash(lo+k, hi))
	t.memo[key] = h
	return h
}

// path is the RFC 6962 inclusion proof of leaf m in [lo,hi).
func (t *merkleTree) path(m, lo, hi int) [][]byte {
	if hi-lo <= 1 {
		return nil
	}
	k := 1
	for k*2 < hi-lo {
		k *= 2
	}
	if m < lo+k {
		return append(t.path(m, lo, lo+k), t.hash(lo+k, hi))
	}
	return append(t.path(m, lo+k, hi), t.hash(lo, lo+k))
}

func leafHash(buf []byte, version uint8, ts int64, keyID string, rec *Record) ([]byte, []byte) {
	buf = signedBytes(buf[:0], version, ts, keyID, rec)
	return rfc6962.DefaultHasher.HashLeaf(buf), buf
}

func rootMessage(ts int64, keyID string, root []byte) []byte {
	b := append([]byte("kguard.sig"), 0, sigVersionBatch)
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
	r := &reader{b: b}
	if v := r.byte1(); r.err == nil && v != sigVersionBatch {
		return nil, fmt.Errorf("kguard.sig: not a batch signature (version %d)", v)
	}
	s := &batchSigHeader{timestamp: int64(r.uint64())}
	s.keyID = r.string(256)
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
		return nil, fmt.Errorf("kguard.sig: %w", r.err)
	}
	return s, nil
}

// signBatch signs recs with one signature and returns each record's
// kguard.sig value.
func (s *Signer) signBatch(ts int64, recs []*Record) ([][]byte, error) {
	if len(recs) > maxBatchSize {
		return nil, fmt.Errorf("batch of %d records too large to sign", len(recs))
	}
	t := &merkleTree{leaves: make([][]byte, len(recs)), memo: map[[2]int][]byte{}}
	var buf []byte
	for i, rec := range recs {
		t.leaves[i], buf = leafHash(buf, sigVersionBatch, ts, s.keyID, rec)
	}
	root := t.hash(0, len(recs))
	sig, err := s.s.Sign(rootMessage(ts, s.keyID, root))
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(recs))
	for i := range recs {
		h := batchSigHeader{timestamp: ts, keyID: s.keyID, sig: sig, index: uint64(i), size: uint64(len(recs)), proof: t.path(i, 0, len(recs))}
		out[i] = h.marshal()
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

func (v *Verifier) verifyBatch(rec *Record, hv []byte) error {
	sh, err := parseBatchSigHeader(hv)
	if err != nil {
		return err
	}
	lh, _ := leafHash(make([]byte, 0, 256+len(rec.Key)+len(rec.Value)), sigVersionBatch, sh.timestamp, sh.keyID, rec)
	root, err := proof.RootFromInclusionProof(rfc6962.DefaultHasher, sh.index, sh.size, lh, sh.proof)
	if err != nil {
		return errors.New("bad inclusion proof")
	}
	msg := rootMessage(sh.timestamp, sh.keyID, root)
	h := sha256.New()
	h.Write(msg)
	h.Write([]byte{0})
	h.Write(sh.sig)
	var k [32]byte
	h.Sum(k[:0])
	if v.roots.seen(k) {
		return nil
	}
	if err := v.v.Verify(sh.sig, msg); err != nil {
		return errors.New("signature does not verify")
	}
	v.roots.add(k)
	return nil
}
