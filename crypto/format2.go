package crypto

// Format version 2 (docs/crypto.md): a batch's key table, field table and
// signature are written once, in its first record, and every other record
// carries only its place in the batch (MarkHeader); or, where the log
// cleaner may drop records from a batch (compacted topics, or a topic whose
// policy is unknown), every record carries its own context and a Merkle
// inclusion proof. Both sign the producer's identity.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
)

const (
	// MarkHeader is carried by every record of a version 2 batch but its
	// first: the record's index in the batch and what differs from the
	// batch's field table. Two bytes of name: it is paid per record.
	MarkHeader = "kg"
	// ProducerHeader is added on fetch to records whose signature verified
	// (FetchOptions.ShowProducer): the producing principal, tenant and
	// client id the signature covers, as JSON.
	ProducerHeader = "kguard.producer"
)

const (
	encVersion2    = 2
	sigVersion3    = 3
	sigModeBatch   = 1 // SHA-256 digest of every record of the Kafka batch
	sigModeTree    = 2 // Merkle root; each record carries its inclusion proof
	sigModeBatchB3 = 3 // as sigModeBatch, with a BLAKE3 digest

	ctxFlagBatch = 0x01
	// ctxFlagSealed (with ctxFlagBatch): the batch's AES-GCM fields are
	// sealed per data key, one AEAD call over all of them (sealed.go).
	ctxFlagSealed = 0x02

	batchNonceSize = 16
	// limits of a decoded version 2 header
	maxBatchKeys   = 1 << 16
	maxBatchFields = 1024
	maxIdentityLen = 1024
)

// Producer is who produced a record through kguard: the authenticated
// principal and tenant of the producing connection, and its client id.
// Format version 2 signatures cover it.
type Producer struct {
	Principal string `json:"principal"`
	Tenant    string `json:"tenant,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
}

// ProduceOptions says how one ProtectBatch call writes format version 2.
type ProduceOptions struct {
	// Producer is signed with the records.
	Producer Producer
	// Batched writes the batch context once, in the first record (for
	// topics whose whole batches are kept or deleted together:
	// cleanup.policy=delete). The zero value, self-contained records, is
	// the safe one: each record carries its own keys and proof, as the log
	// cleaner of a compacted topic may drop records from a batch.
	Batched bool
}

// ctxHeader is the decoded kguard.enc header of version 2: the context of
// a batch (batch set: written in its first record) or of one record.
type ctxHeader struct {
	batch  bool
	nonce  []byte
	count  int // records of the batch (1 for a self-contained record)
	index  int // this record's index in its produced batch
	keys   []keyRef
	fields []fieldRef // key: the default key index
	// sealed: seals holds sealSize bytes (IV, tag) per AES-GCM key of
	// keys, in table order
	sealed bool
	seals  []byte
	part   []byte // this record's part (see recPart)
}

func (h *ctxHeader) appendTo(b []byte) []byte {
	b = append(b, encVersion2)
	var flags byte
	if h.batch {
		flags |= ctxFlagBatch
	}
	if h.sealed {
		flags |= ctxFlagSealed
	}
	b = append(b, flags)
	b = appendBytes(b, h.nonce)
	b = binary.AppendUvarint(b, uint64(h.count))
	b = binary.AppendUvarint(b, uint64(h.index))
	b = appendTables(b, h.keys, h.fields)
	if h.sealed {
		b = append(b, h.seals...)
	}
	return append(b, h.part...)
}

func parseCtxHeader(h *ctxHeader, b []byte, in interner) error {
	r := &reader{b: b}
	*h = ctxHeader{}
	if v := r.byte1(); r.err == nil && v != encVersion2 {
		return fmt.Errorf("kguard.enc: not version 2 (%d)", v)
	}
	flags := r.byte1()
	if r.err == nil && (flags&^(ctxFlagBatch|ctxFlagSealed) != 0 || flags == ctxFlagSealed) {
		r.fail(fmt.Sprintf("unknown flags %#x", flags))
	}
	h.batch = flags&ctxFlagBatch != 0
	h.sealed = flags&ctxFlagSealed != 0
	h.nonce = r.bytes(64)
	if r.err == nil && len(h.nonce) != batchNonceSize {
		r.fail("bad nonce length")
	}
	h.count = int(r.uvarint(maxBatchSize))
	h.index = int(r.uvarint(maxBatchSize))
	if r.err == nil && (h.count == 0 || h.index >= h.count || h.batch && h.index != 0) {
		r.fail("index out of range")
	}
	h.keys = r.keyRefs(maxBatchKeys, in)
	h.fields = r.fieldRefs(maxBatchFields, len(h.keys), in)
	if r.err == nil {
		r.err = checkLocators(h.fields)
	}
	if h.sealed && r.err == nil {
		n := sealSize * gcmKeys(h.keys)
		if len(r.b) < n {
			r.fail("truncated seals")
		} else {
			h.seals, r.b = r.b[:n:n], r.b[n:]
		}
	}
	if r.err != nil {
		return fmt.Errorf("kguard.enc: %w", r.err)
	}
	h.part = r.b
	return nil
}

func checkKeyRef(k keyRef) error {
	switch {
	case k.source < SourceWrapped || k.source > SourceSubject:
		return fmt.Errorf("unknown source %d", k.source)
	case k.alg != AES256GCM && k.alg != AES256SIV:
		return fmt.Errorf("unknown algorithm %d", k.alg)
	case k.kek == "" || k.ref == "":
		return fmt.Errorf("empty KEK or reference")
	}
	return nil
}

// A record's part says which fields of the context's field table the
// record holds and under which keys:
//
//	empty                      every field, each under its default key
//	bitmap (ceil(nf/8) bytes)  the fields the record holds (bit j of byte j/8, low bit first)
//	[n × uvarint key index]    optional: the key of each field it holds, in table order
//
// appendRecPart writes it for a record holding the fields present (by
// table index) under keys.
func appendRecPart(b []byte, table []fieldRef, present []bool, keys []int) []byte {
	all, dflt := true, true
	for j := range table {
		if !present[j] {
			all = false
		} else if keys[j] != table[j].key {
			dflt = false
		}
	}
	if all && dflt {
		return b
	}
	n := len(b)
	b = append(b, make([]byte, (len(table)+7)/8)...)
	for j := range table {
		if present[j] {
			b[n+j/8] |= 1 << (j % 8)
		}
	}
	if dflt {
		return b
	}
	for j := range table {
		if present[j] {
			b = binary.AppendUvarint(b, uint64(keys[j]))
		}
	}
	return b
}

// recordFields resolves a record's part against its context into the
// fields the record holds (appended to out).
func recordFields(out []fieldRef, c *ctxHeader, part []byte) ([]fieldRef, error) {
	if len(part) == 0 {
		return append(out, c.fields...), nil
	}
	nb := (len(c.fields) + 7) / 8
	if len(part) < nb {
		return nil, fmt.Errorf("record part truncated")
	}
	bits, rest := part[:nb], part[nb:]
	for j := len(c.fields); j < nb*8; j++ {
		if bits[j/8]&(1<<(j%8)) != 0 {
			return nil, fmt.Errorf("record part names field %d of %d", j, len(c.fields))
		}
	}
	r := &reader{b: rest}
	for j, f := range c.fields {
		if bits[j/8]&(1<<(j%8)) == 0 {
			continue
		}
		if len(rest) > 0 {
			f.key = int(r.uvarint(maxBatchKeys))
			if r.err == nil && f.key >= len(c.keys) {
				r.fail("key index out of range")
			}
		}
		out = append(out, f)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("record part: %w", r.err)
	}
	return out, nil
}

// parseMark decodes a MarkHeader value: the record's index, then its part.
func parseMark(b []byte) (int, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || v >= maxBatchSize || v == 0 {
		return 0, nil, fmt.Errorf("%s: bad index", MarkHeader)
	}
	return int(v), b[n:], nil
}

// sig3Header is the decoded kguard.sig header of version 3.
type sig3Header struct {
	mode      uint8
	timestamp int64
	keyID     string
	producer  Producer
	count     uint64 // batch: records of the batch; tree: leaves
	index     uint64 // tree: this record's leaf
	sig       []byte
	proof     [][]byte
}

// batchSigMode reports whether mode signs a whole batch from its first
// record (a digest of every record), whichever the hash.
func batchSigMode(mode uint8) bool { return mode == sigModeBatch || mode == sigModeBatchB3 }

func (s *sig3Header) batchMode() bool { return batchSigMode(s.mode) }

func (s *sig3Header) appendTo(b []byte) []byte {
	b = append(b, sigVersion3, s.mode)
	b = binary.BigEndian.AppendUint64(b, uint64(s.timestamp))
	b = appendString(b, s.keyID)
	b = appendProducer(b, s.producer)
	b = binary.AppendUvarint(b, s.count)
	b = binary.AppendUvarint(b, s.index)
	b = appendBytes(b, s.sig)
	b = binary.AppendUvarint(b, uint64(len(s.proof)))
	for _, p := range s.proof {
		b = append(b, p...)
	}
	return b
}

func appendProducer(b []byte, p Producer) []byte {
	b = appendString(b, p.Principal)
	b = appendString(b, p.Tenant)
	return appendString(b, p.ClientID)
}

func parseSig3(s *sig3Header, b []byte, in interner) error {
	r := &reader{b: b}
	if v := r.byte1(); r.err == nil && v != sigVersion3 {
		return fmt.Errorf("kguard.sig: not version 3 (%d)", v)
	}
	*s = sig3Header{mode: r.byte1(), timestamp: int64(r.uint64()), proof: s.proof[:0]}
	s.keyID = r.istring(256, in)
	s.producer.Principal = r.istring(maxIdentityLen, in)
	s.producer.Tenant = r.istring(maxIdentityLen, in)
	s.producer.ClientID = r.istring(maxIdentityLen, in)
	s.count = r.uvarint(maxBatchSize)
	s.index = r.uvarint(maxBatchSize)
	s.sig = r.bytes(1024)
	n := int(r.uvarint(maxProofLen))
	for i := 0; i < n && r.err == nil; i++ {
		if len(r.b) < 32 {
			r.fail("truncated proof")
			break
		}
		s.proof = append(s.proof, r.b[:32:32])
		r.b = r.b[32:]
	}
	if r.err == nil {
		switch {
		case !s.batchMode() && s.mode != sigModeTree:
			r.fail(fmt.Sprintf("unknown mode %d", s.mode))
		case len(s.sig) == 0:
			r.fail("empty signature")
		case s.count == 0 || s.index >= s.count:
			r.fail("index out of range")
		case s.batchMode() && (s.index != 0 || len(s.proof) != 0):
			r.fail("batch signature with an index or proof")
		case len(r.b) != 0:
			r.fail("trailing bytes")
		}
	}
	if r.err != nil {
		return fmt.Errorf("kguard.sig: %w", r.err)
	}
	return nil
}

// message3 is what a version 3 signature signs: mode, time, key, the
// producer, topic, record count and the digest of the records (batch) or
// the Merkle root (tree).
func message3(b []byte, s *sig3Header, topic string, digest []byte) []byte {
	b = append(b, "kguard.sig"...)
	b = append(b, 0, sigVersion3, s.mode)
	b = binary.BigEndian.AppendUint64(b, uint64(s.timestamp))
	b = appendString(b, s.keyID)
	b = appendProducer(b, s.producer)
	b = appendString(b, topic)
	b = binary.AppendUvarint(b, s.count)
	return append(b, digest...)
}

// unsigned reports whether a header is left out of the signed bytes: the
// signature itself and what kguard adds on fetch.
func unsigned(name string) bool {
	return name == SigHeader || name == VerifyHeader || name == ProducerHeader
}

// canonical3 appends the canonical encoding of a record for version 3
// signatures: key, value, and headers but the unsigned ones, sorted (the
// topic is in the signed message).
func canonical3(b []byte, rec *Record) []byte {
	b = appendNullable(b, rec.Key)
	b = appendNullable(b, rec.Value)
	return canonicalHeaders(b, rec)
}

// canonicalHeaders appends the headers part of canonical3.
func canonicalHeaders(b []byte, rec *Record) []byte {
	var small [8]Header
	hs := small[:0]
	for _, h := range rec.Headers {
		if !unsigned(h.Key) {
			hs = append(hs, h)
		}
	}
	if len(hs) > 1 {
		slices.SortStableFunc(hs, compareHeaders)
	}
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = appendString(b, h.Key)
		b = appendNullable(b, h.Value)
	}
	return b
}

// canonicalSize bounds canonical3's length.
func canonicalSize(rec *Record) int {
	n := 3*binary.MaxVarintLen64 + len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
	}
	return n
}

// batchView is what the first record of a fetched format 2 batch says
// about the batch.
type batchView struct {
	ctx   *ctxHeader  // batch context (nil: signed only)
	sig   *sig3Header // batch signature (nil: unsigned)
	parts [][]byte    // each record's part
	err   error       // not the batch as produced: every record fails
	st    SigStatus   // once verified
	why   error       // why st is SigBad
}

// scanBatch finds a format 2 batch in recs: nil when neither the first
// record holds a batch context or signature nor another record a
// MarkHeader. Every record of such a batch must be in place, marked, and
// the batch complete; otherwise err is set (fail closed: its records are
// neither decrypted nor verified).
func scanBatch(recs []*Record, in interner) *batchView {
	if len(recs) == 0 {
		return nil
	}
	head := recs[0]
	encVal, encN := findHeader(head.Headers, EncHeader)
	sigVal, sigN := findHeader(head.Headers, SigHeader)
	isCtx := encN > 0 && len(encVal) > 1 && encVal[0] == encVersion2 && encVal[1]&ctxFlagBatch != 0
	isSig := sigN > 0 && len(sigVal) > 1 && sigVal[0] == sigVersion3 && batchSigMode(sigVal[1])
	marked := false
	for _, rec := range recs {
		if _, n := findHeader(rec.Headers, MarkHeader); n > 0 {
			marked = true
			break
		}
	}
	if !isCtx && !isSig && !marked {
		return nil
	}
	bv := &batchView{}
	fail := func(format string, args ...any) *batchView {
		bv.err = fmt.Errorf(format, args...)
		return bv
	}
	if !isCtx && !isSig {
		return fail("format 2 batch without its context (first record)")
	}
	if encN > 1 || sigN > 1 {
		return fail("first record with %d kguard.enc and %d kguard.sig headers", encN, sigN)
	}
	count := -1
	if isCtx {
		bv.ctx = &ctxHeader{}
		if err := parseCtxHeader(bv.ctx, encVal, in); err != nil {
			return fail("%v", err)
		}
		count = bv.ctx.count
	} else if encN > 0 {
		return fail("batch signature with a record's own kguard.enc")
	}
	if isSig {
		bv.sig = &sig3Header{}
		if err := parseSig3(bv.sig, sigVal, in); err != nil {
			return fail("%v", err)
		}
		if count >= 0 && uint64(count) != bv.sig.count {
			return fail("batch context and signature disagree on the record count")
		}
		count = int(bv.sig.count)
	} else if sigN > 0 {
		return fail("batch context with a record's own signature")
	}
	if _, n := findHeader(head.Headers, MarkHeader); n > 0 {
		return fail("first record marked")
	}
	if count != len(recs) {
		return fail("batch of %d records holds %d (incomplete or not as produced)", count, len(recs))
	}
	bv.parts = make([][]byte, len(recs))
	if bv.ctx != nil {
		bv.parts[0] = bv.ctx.part
	}
	for i := 1; i < len(recs); i++ {
		hs := recs[i].Headers
		mv, n := findHeader(hs, MarkHeader)
		if n != 1 {
			return fail("record %d of the batch has %d %s headers", i, n, MarkHeader)
		}
		if _, e := findHeader(hs, EncHeader); e > 0 {
			return fail("record %d of the batch has its own kguard.enc", i)
		}
		if _, sn := findHeader(hs, SigHeader); sn > 0 {
			return fail("record %d of the batch has its own kguard.sig", i)
		}
		idx, part, err := parseMark(mv)
		if err != nil {
			return fail("record %d: %v", i, err)
		}
		if idx != i {
			return fail("record %d of the batch says it is record %d", i, idx)
		}
		bv.parts[i] = part
	}
	return bv
}

// status verifies the batch signature once, and says why it is bad.
func (bv *batchView) status(v *Verifier, s *verifyScratch, recs []*Record) (SigStatus, error) {
	if bv.st != SigNotChecked {
		return bv.st, bv.why
	}
	switch {
	case bv.err != nil:
		bv.st, bv.why = SigBad, bv.err
	case v == nil:
		bv.st, bv.why = SigBad, errNoVerifier
	case bv.sig == nil:
		bv.st = SigMissing
	default:
		if err := v.verifyBatch3(s, bv.sig, recs); err != nil {
			bv.st, bv.why = SigBad, err
		} else {
			bv.st = SigOK
		}
	}
	return bv.st, bv.why
}

// claimedProducer is the producer a version 3 signature header names (nil
// for other versions or a malformed header).
func claimedProducer(hv []byte) *Producer {
	if len(hv) == 0 || hv[0] != sigVersion3 {
		return nil
	}
	var sh sig3Header
	if parseSig3(&sh, hv, nil) != nil {
		return nil
	}
	return &sh.producer
}

func producerJSON(p *Producer) []byte {
	b, _ := json.Marshal(p) // strings only: cannot fail
	return b
}

// parseAnyEncHeader decodes a record's own kguard.enc: version 1, or a
// self-contained version 2 context (its fields appended to *fields).
func parseAnyEncHeader(h *encHeader, b []byte, in interner, fields *[]fieldRef) error {
	if len(b) == 0 || b[0] != encVersion2 {
		return parseEncHeaderInto(h, b, in)
	}
	var c ctxHeader
	if err := parseCtxHeader(&c, b, in); err != nil {
		return err
	}
	if c.batch {
		return fmt.Errorf("kguard.enc: batch context outside the first record of its batch")
	}
	start := len(*fields)
	fs, err := recordFields(*fields, &c, c.part)
	if err != nil {
		return fmt.Errorf("kguard.enc: %w", err)
	}
	*fields = fs
	*h = encHeader{version: encVersion2, nonce: c.nonce, index: c.index, count: c.count, keys: c.keys, fields: fs[start:len(fs):len(fs)]}
	return nil
}
