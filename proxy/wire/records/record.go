package records

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// varint reads a zigzag varint that must fit an int32.
func varint32(data []byte, pos int) (int32, int, error) {
	v, n := binary.Varint(data[pos:])
	if n <= 0 || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, 0, fmt.Errorf("bad varint at byte %d: %w", pos, ErrCorrupt)
	}
	return int32(v), pos + n, nil
}

// varint64 reads a zigzag varlong.
func varint64(data []byte, pos int) (int64, int, error) {
	v, n := binary.Varint(data[pos:])
	if n <= 0 {
		return 0, 0, fmt.Errorf("bad varlong at byte %d: %w", pos, ErrCorrupt)
	}
	return v, pos + n, nil
}

// nullableBytes reads a varint length (-1 for null) and that many bytes,
// which must end at or before end. An empty non-null value is returned as a
// non-nil empty slice.
func nullableBytes(data []byte, pos, end int) ([]byte, int, error) {
	l, pos, err := varint32(data[:end], pos)
	if err != nil {
		return nil, 0, err
	}
	if l == -1 {
		return nil, pos, nil
	}
	if l < -1 || int(l) > end-pos {
		return nil, 0, fmt.Errorf("length %d at byte %d out of range: %w", l, pos, ErrCorrupt)
	}
	return data[pos : pos+int(l) : pos+int(l)], pos + int(l), nil
}

// Scratch is decoding memory reused from one batch to the next
// ([Options.Scratch], [Batch.RecordsInto]), so that a stream of batches
// decodes without allocating a record slice per batch. The records a
// decode returns live in it until the next decode with the same Scratch
// overwrites them. A Scratch is not safe for concurrent use; Clear drops
// its references to decoded data before it is pooled or kept.
type Scratch struct {
	recs []Record
	hdrs []Header
}

// scratchKeep is the most records (and headers) a cleared Scratch keeps
// memory for: a batch of many tiny records (up to the decompression bound)
// is decoded, but its slices are not kept in a pool afterwards.
const scratchKeep = 4096

// Clear zeroes what s holds, keeping its memory unless it is larger than a
// usual batch needs.
func (s *Scratch) Clear() {
	if cap(s.recs) > scratchKeep {
		s.recs = nil
	}
	if cap(s.hdrs) > scratchKeep {
		s.hdrs = nil
	}
	clear(s.recs[:cap(s.recs)])
	clear(s.hdrs[:cap(s.hdrs)])
	s.recs, s.hdrs = s.recs[:0], s.hdrs[:0]
}

// decodeRecords parses exactly n records filling data, into s's memory
// when s is not nil.
func decodeRecords(data []byte, n int32, s *Scratch) ([]Record, error) {
	// Every record takes at least 7 bytes (length + minimal body), so a
	// count larger than that is a lie: fail before allocating for it.
	if n < 0 || int64(n)*(minRecordBodySize+1) > int64(len(data)) {
		return nil, fmt.Errorf("header says %d records in %d bytes: %w", n, len(data), ErrRecordCount)
	}
	var recs []Record
	var hdrs []Header // shared backing array for the batch's headers
	if s == nil {
		recs = make([]Record, n)
	} else {
		if cap(s.recs) < int(n) {
			s.recs = make([]Record, n)
		}
		recs = s.recs[:n]
		hdrs = s.hdrs[:0]
		defer func() { s.hdrs = hdrs[:0] }()
	}
	pos := 0
	prevLo, prevHi := 0, 0
	for i := range recs {
		if pos >= len(data) {
			return nil, fmt.Errorf("record %d of %d missing: %w", i, n, ErrRecordCount)
		}
		l, p, err := varint32(data, pos)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if l < minRecordBodySize || int(l) > len(data)-p {
			return nil, fmt.Errorf("record %d: length %d out of range (%d bytes left): %w", i, l, len(data)-p, ErrCorrupt)
		}
		end := p + int(l)
		lo := len(hdrs)
		recs[i] = Record{} // a reused slice still holds an earlier batch's record
		hdrs, err = decodeRecordBody(data, p, end, &recs[i], hdrs, hdrs[prevLo:prevHi], len(recs)-i)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if hi := len(hdrs); hi > lo {
			// If a later append moves hdrs, this slice keeps the old
			// array, whose contents never change: still correct.
			recs[i].Headers = hdrs[lo:hi:hi]
		}
		prevLo, prevHi = lo, len(hdrs)
		pos = end
	}
	if pos != len(data) {
		return nil, fmt.Errorf("%d bytes after the %d records the header counts: %w", len(data)-pos, n, ErrRecordCount)
	}
	return recs, nil
}

// decodeRecordBody parses one record body data[pos:end] into r, appending
// its headers to hdrs. prevHdrs are the previous record's headers, whose
// keys are reused when equal (records of a batch usually carry the same
// header names, so this avoids one string allocation per header).
//
// left is the number of records still to decode (this one included): when
// hdrs must grow, it grows for that many records with as many headers as
// this one, so a batch's headers usually take one allocation.
func decodeRecordBody(data []byte, pos, end int, r *Record, hdrs []Header, prevHdrs []Header, left int) ([]Header, error) {
	body := data[:end]
	r.Attributes = int8(body[pos])
	pos++
	var err error
	if r.TimestampDelta, pos, err = varint64(body, pos); err != nil {
		return hdrs, err
	}
	if r.OffsetDelta, pos, err = varint32(body, pos); err != nil {
		return hdrs, err
	}
	if r.Key, pos, err = nullableBytes(body, pos, end); err != nil {
		return hdrs, fmt.Errorf("key: %w", err)
	}
	if r.Value, pos, err = nullableBytes(body, pos, end); err != nil {
		return hdrs, fmt.Errorf("value: %w", err)
	}
	var nh int32
	if nh, pos, err = varint32(body, pos); err != nil {
		return hdrs, fmt.Errorf("header count: %w", err)
	}
	if nh < 0 || int(nh)*2 > end-pos {
		return hdrs, fmt.Errorf("header count %d with %d bytes left: %w", nh, end-pos, ErrCorrupt)
	}
	if nh > 0 && cap(hdrs)-len(hdrs) < int(nh) {
		hdrs = slices.Grow(hdrs, int(nh)*left)
	}
	for j := 0; j < int(nh); j++ {
		var k, v []byte
		if k, pos, err = nullableBytes(body, pos, end); err != nil {
			return hdrs, fmt.Errorf("header %d key: %w", j, err)
		}
		if k == nil {
			return hdrs, fmt.Errorf("header %d: null key: %w", j, ErrCorrupt)
		}
		if v, pos, err = nullableBytes(body, pos, end); err != nil {
			return hdrs, fmt.Errorf("header %d value: %w", j, err)
		}
		var key string
		if j < len(prevHdrs) && prevHdrs[j].Key == string(k) {
			key = prevHdrs[j].Key
		} else {
			key = string(k)
		}
		hdrs = append(hdrs, Header{Key: key, Value: v})
	}
	if pos != end {
		return hdrs, fmt.Errorf("%d bytes after the last header: %w", end-pos, ErrCorrupt)
	}
	return hdrs, nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int { return uvarintLen(uint64(v<<1) ^ uint64(v>>63)) }

func nullableLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

// recordBodyLen is the encoded size of r without its length prefix.
func recordBodyLen(r *Record) int {
	n := 1 + varintLen(r.TimestampDelta) + varintLen(int64(r.OffsetDelta)) +
		nullableLen(r.Key) + nullableLen(r.Value) + varintLen(int64(len(r.Headers)))
	for i := range r.Headers {
		h := &r.Headers[i]
		n += varintLen(int64(len(h.Key))) + len(h.Key) + nullableLen(h.Value)
	}
	return n
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// checkRecords validates records against the batch header they will be
// encoded under and returns the encoded size of all of them.
func checkRecords(recs []Record, lastOffsetDelta int32) (int, error) {
	total := 0
	prev := int32(-1)
	for i := range recs {
		r := &recs[i]
		if r.OffsetDelta < 0 || r.OffsetDelta > lastOffsetDelta {
			return 0, fmt.Errorf("record %d: offset delta %d outside [0, %d]: %w", i, r.OffsetDelta, lastOffsetDelta, ErrInvalidRecord)
		}
		// Offsets within a batch only grow: a repeated or falling delta
		// would give two records one offset once the broker assigns them.
		if r.OffsetDelta <= prev {
			return 0, fmt.Errorf("record %d: offset delta %d not above the previous record's %d: %w", i, r.OffsetDelta, prev, ErrInvalidRecord)
		}
		prev = r.OffsetDelta
		if len(r.Key) > math.MaxInt32 || len(r.Value) > math.MaxInt32 || len(r.Headers) > math.MaxInt32 {
			return 0, fmt.Errorf("record %d: %w", i, ErrTooLarge)
		}
		n := recordBodyLen(r)
		if n > math.MaxInt32 {
			return 0, fmt.Errorf("record %d: %w", i, ErrTooLarge)
		}
		total += varintLen(int64(n)) + n
		if total > math.MaxInt32 {
			return 0, fmt.Errorf("records: %w", ErrTooLarge)
		}
	}
	return total, nil
}

// appendRecords encodes recs (already checked by checkRecords).
func appendRecords(dst []byte, recs []Record) []byte {
	for i := range recs {
		r := &recs[i]
		dst = binary.AppendVarint(dst, int64(recordBodyLen(r)))
		dst = append(dst, byte(r.Attributes))
		dst = binary.AppendVarint(dst, r.TimestampDelta)
		dst = binary.AppendVarint(dst, int64(r.OffsetDelta))
		dst = appendNullable(dst, r.Key)
		dst = appendNullable(dst, r.Value)
		dst = binary.AppendVarint(dst, int64(len(r.Headers)))
		for j := range r.Headers {
			h := &r.Headers[j]
			dst = binary.AppendVarint(dst, int64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = appendNullable(dst, h.Value)
		}
	}
	return dst
}
