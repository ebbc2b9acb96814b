package crypto

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// Reserved record header names.
const (
	// EncHeader carries the encryption metadata of a protected record.
	EncHeader = "kguard.enc"
	// SigHeader carries the record signature.
	SigHeader = "kguard.sig"
	// VerifyHeader is added on fetch to mark a bad or missing signature
	// (SigMark): value "bad" or "missing".
	VerifyHeader = "kguard.verify"
)

// FormatVersion is the version of the kguard.enc and kguard.sig formats this
// package writes. Readers accept every version listed in docs/crypto.md.
const FormatVersion = 1

const recordNonceSize = 12

// Limits for decoding untrusted headers.
const (
	maxKeys      = 64
	maxFields    = 1024
	maxStringLen = 64 << 10
)

// KeySource says where a data key comes from.
type KeySource uint8

// Key sources (codes in kguard.enc).
const (
	// SourceWrapped: a random data key; Ref is its KMS-wrapped form
	// (e.g. vault:v3:...). Any instance unwraps it with the KEK.
	SourceWrapped KeySource = 1
	// SourceDerived: a deterministic key derived by the KMS from the KEK
	// (for AES-SIV, so all instances compute equal ciphertexts); Ref names
	// the KEK version.
	SourceDerived KeySource = 2
	// SourceSubject: a key derived from the data subject's own KEK; KEK is
	// the subject key's name, Ref its version. No wrapped key is stored:
	// destroying the subject KEK erases the data.
	SourceSubject KeySource = 3
)

// keyRef describes one data key in a kguard.enc header.
type keyRef struct {
	source KeySource
	alg    Algorithm
	id     uint32 // Tink key id (the 5-byte ciphertext prefix)
	kek    string
	ref    string
}

type fieldRef struct {
	kind    FieldKind
	locator string
	key     int // index into encHeader.keys
}

// encHeader is the decoded kguard.enc header.
type encHeader struct {
	version uint8
	nonce   []byte
	index   int // version 2: the record's index in its batch
	count   int // version 2: records in its batch
	keys    []keyRef
	fields  []fieldRef
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendNullable encodes nil as 0 and otherwise len+1 then the bytes.
func appendNullable(b []byte, s []byte) []byte {
	if s == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s))+1)
	return append(b, s...)
}

// size is an upper bound of the encoded length.
func (h *encHeader) size() int {
	n := 2 + len(h.nonce) + 2*binary.MaxVarintLen64
	for _, k := range h.keys {
		n += 6 + 2*binary.MaxVarintLen64 + len(k.kek) + len(k.ref)
	}
	for _, f := range h.fields {
		n += 1 + 2*binary.MaxVarintLen64 + len(f.locator)
	}
	return n
}

func (h *encHeader) marshal() []byte {
	if h.version == encVersion2 {
		c := ctxHeader{nonce: h.nonce, count: max(h.count, h.index+1), index: h.index, keys: h.keys, fields: h.fields}
		return c.appendTo(make([]byte, 0, h.size()+2*binary.MaxVarintLen64))
	}
	return h.appendTo(make([]byte, 0, h.size()))
}

func (h *encHeader) appendTo(b []byte) []byte {
	b = append(b, FormatVersion)
	b = appendBytes(b, h.nonce)
	return appendTables(b, h.keys, h.fields)
}

// appendTables encodes a key list and a field list (kguard.enc versions 1
// and 2).
func appendTables(b []byte, keys []keyRef, fields []fieldRef) []byte {
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = append(b, byte(k.source), byte(k.alg))
		b = binary.BigEndian.AppendUint32(b, k.id)
		b = appendString(b, k.kek)
		b = appendString(b, k.ref)
	}
	b = binary.AppendUvarint(b, uint64(len(fields)))
	for _, f := range fields {
		b = append(b, byte(f.kind))
		b = appendString(b, f.locator)
		b = binary.AppendUvarint(b, uint64(f.key))
	}
	return b
}

// keyRefs decodes a key list of at most limit keys.
func (r *reader) keyRefs(limit int, in interner) []keyRef {
	nk := int(r.uvarint(uint64(limit)))
	if r.err != nil {
		return nil
	}
	keys := make([]keyRef, 0, min(nk, 256))
	for i := 0; i < nk && r.err == nil; i++ {
		k := keyRef{source: KeySource(r.byte1()), alg: Algorithm(r.byte1()), id: r.uint32()}
		k.kek = r.istring(maxStringLen, in)
		k.ref = r.istring(maxStringLen, in)
		if r.err != nil {
			break
		}
		if err := checkKeyRef(k); err != nil {
			r.fail(fmt.Sprintf("key %d: %v", i, err))
		}
		keys = append(keys, k)
	}
	return keys
}

// fieldRefs decodes a field list of at most limit fields whose key
// indexes are below nkeys, locators unique.
func (r *reader) fieldRefs(limit, nkeys int, in interner) []fieldRef {
	nf := int(r.uvarint(uint64(limit)))
	if r.err != nil {
		return nil
	}
	var seen map[string]bool // only for long lists; short ones are scanned
	if nf > 16 {
		seen = make(map[string]bool, nf)
	}
	fields := make([]fieldRef, 0, nf)
	for i := 0; i < nf && r.err == nil; i++ {
		f := fieldRef{kind: FieldKind(r.byte1())}
		f.locator = r.istring(maxStringLen, in)
		f.key = int(r.uvarint(uint64(max(nkeys, 1))))
		if r.err != nil {
			break
		}
		if f.kind < KindValue || f.kind > KindJSON {
			r.fail(fmt.Sprintf("field %d: unknown kind %d", i, f.kind))
		}
		if f.key >= nkeys {
			r.fail(fmt.Sprintf("field %d: key index %d out of range", i, f.key))
		}
		dup := seen[f.locator]
		if seen == nil {
			for _, g := range fields {
				dup = dup || g.locator == f.locator
			}
		} else {
			seen[f.locator] = true
		}
		if dup {
			r.fail(fmt.Sprintf("field %q listed twice", f.locator))
		}
		fields = append(fields, f)
	}
	return fields
}

// reader decodes untrusted bytes; every method checks bounds.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s", what)
	}
}

func (r *reader) byte1() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uint32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) uint64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint(max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	if v > max {
		r.fail(fmt.Sprintf("count %d over limit %d", v, max))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(max int) []byte {
	n := r.uvarint(uint64(max))
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.fail("truncated")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string(max int) string { return string(r.bytes(max)) }

// interner shares the strings of the kguard.enc headers of one batch (KEK
// names, key references and locators repeat from record to record).
type interner map[string]string

const maxInterned = 1024

func (r *reader) istring(max int, in interner) string {
	b := r.bytes(max)
	if in == nil {
		return string(b)
	}
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in) < maxInterned {
		in[s] = s
	}
	return s
}

// parseEncHeader decodes a kguard.enc header value.
func parseEncHeader(b []byte) (*encHeader, error) {
	h := &encHeader{}
	if err := parseEncHeaderInto(h, b, nil); err != nil {
		return nil, err
	}
	return h, nil
}

// parseEncHeaderInto decodes a kguard.enc header value into h, sharing
// strings through in (may be nil). h.nonce aliases b.
func parseEncHeaderInto(h *encHeader, b []byte, in interner) error {
	r := &reader{b: b}
	*h = encHeader{version: r.byte1()}
	if r.err == nil && h.version != 1 {
		return fmt.Errorf("kguard.enc: unsupported version %d", h.version)
	}
	h.nonce = r.bytes(64)
	h.keys = r.keyRefs(maxKeys, in)
	if r.err == nil && len(h.keys) == 0 {
		r.fail("no keys")
	}
	h.fields = r.fieldRefs(maxFields, len(h.keys), in)
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err == nil {
		r.err = checkLocators(h.fields)
	}
	if r.err != nil {
		return fmt.Errorf("kguard.enc: %w", r.err)
	}
	return nil
}

// appendAAD builds the associated data of one encrypted field: format
// version, topic, field kind and locator, key id, and (randomized algorithms
// only) the record nonce and header occurrence.
//
// Version 2 binds randomized fields to the batch nonce and the record's
// index in its batch.
func appendAAD(b []byte, version uint8, topic string, kind FieldKind, locator string, keyID uint32, alg Algorithm, nonce []byte, index, occurrence int) []byte {
	if alg != AES256GCM {
		// deterministic ciphertexts are the same in every format version
		// (compacted keys, joins): the version 1 AAD
		version, index = 1, 0
	}
	b = append(b, "kguard.aad"...)
	b = append(b, 0, version)
	b = appendString(b, topic)
	b = append(b, byte(kind))
	b = appendString(b, locator)
	b = binary.BigEndian.AppendUint32(b, keyID)
	b = append(b, byte(alg))
	if alg == AES256GCM {
		b = appendBytes(b, nonce)
	} else {
		b = appendBytes(b, nil)
	}
	if version >= encVersion2 {
		b = binary.AppendUvarint(b, uint64(index))
	}
	return binary.AppendUvarint(b, uint64(occurrence))
}

// sigHeader is the decoded kguard.sig header.
type sigHeader struct {
	version   uint8
	timestamp int64 // unix milliseconds when kguard signed
	keyID     string
	sig       []byte
}

func (s *sigHeader) marshal() []byte {
	b := make([]byte, 0, 1+8+1+len(s.keyID)+2+len(s.sig))
	b = append(b, s.version)
	b = binary.BigEndian.AppendUint64(b, uint64(s.timestamp))
	b = appendString(b, s.keyID)
	return appendBytes(b, s.sig)
}

func parseSigHeader(b []byte) (*sigHeader, error) {
	r := &reader{b: b}
	s := &sigHeader{version: r.byte1()}
	if r.err == nil && s.version != 1 {
		return nil, fmt.Errorf("kguard.sig: unsupported version %d", s.version)
	}
	s.timestamp = int64(r.uint64())
	s.keyID = r.string(256)
	s.sig = r.bytes(1024)
	if r.err == nil && len(s.sig) == 0 {
		r.fail("empty signature")
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("kguard.sig: %w", r.err)
	}
	return s, nil
}

// signedBytes is the canonical encoding a signature covers.
func signedBytes(buf []byte, version uint8, ts int64, keyID string, rec *Record) []byte {
	b := append(buf, "kguard.sig"...)
	b = append(b, 0, version)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	b = appendString(b, keyID)
	b = appendString(b, rec.Topic)
	b = appendNullable(b, rec.Key)
	b = appendNullable(b, rec.Value)
	var small [8]Header // most records have few headers: no allocation
	hs := small[:0]
	for _, h := range rec.Headers {
		if h.Key == SigHeader || h.Key == VerifyHeader {
			continue
		}
		hs = append(hs, h)
	}
	slices.SortStableFunc(hs, compareHeaders)
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = appendString(b, h.Key)
		b = appendNullable(b, h.Value)
	}
	return b
}

// compareHeaders orders headers for signing: by name, then value (null
// first), then bytes.
func compareHeaders(a, b Header) int {
	if a.Key != b.Key {
		if a.Key < b.Key {
			return -1
		}
		return 1
	}
	if (a.Value == nil) != (b.Value == nil) {
		if a.Value == nil {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.Value, b.Value)
}

// checkLocators applies the rules of Compile to a decoded header: locators
// match their kinds, and the whole value excludes JSON paths.
func checkLocators(fs []fieldRef) error {
	whole, paths := false, false
	for _, f := range fs {
		switch f.kind {
		case KindValue:
			whole = f.locator == "$"
			if !whole {
				return fmt.Errorf("value field with locator %q", f.locator)
			}
		case KindKey:
			if f.locator != "@key" {
				return fmt.Errorf("key field with locator %q", f.locator)
			}
		case KindHeader:
			if !strings.HasPrefix(f.locator, "@header:") || len(f.locator) == len("@header:") {
				return fmt.Errorf("header field with locator %q", f.locator)
			}
		case KindJSON:
			paths = true
			if len(f.locator) < 2 || f.locator[0] != '$' {
				return fmt.Errorf("JSON field with locator %q", f.locator)
			}
		}
	}
	if whole && paths {
		return fmt.Errorf("whole value and JSON paths both listed")
	}
	return nil
}
