package records

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// EncodeBatch appends b re-encoded with recs as its records to dst and
// returns the extended slice.
//
// Everything in b's header is kept as received: base offset, partition
// leader epoch, magic, attributes (codec, timestamp type, transactional,
// control and delete-horizon bits), last offset delta, first and max
// timestamps, producer id and epoch, base sequence. The record count becomes
// len(recs) and the batch length and CRC-32C are recomputed. Each record's
// attributes, offset delta and timestamp delta are written as given (they
// come from Batch.Records), the records are compressed with b's codec (and,
// for snappy, b's framing).
//
// An unchanged batch does not need this: pass b.Raw through instead. Legacy
// and control batches are refused (ErrLegacy, ErrControl), and so is a record
// whose offset delta lies outside [0, LastOffsetDelta] or is not above the
// previous record's (ErrInvalidRecord).
// On error dst is returned unchanged in length.
func EncodeBatch(dst []byte, b *Batch, recs []Record) ([]byte, error) {
	if b.IsLegacy() {
		return dst, fmt.Errorf("encode batch at byte %d: %w", b.Pos, ErrLegacy)
	}
	if b.IsControl() {
		return dst, fmt.Errorf("encode batch at byte %d: %w", b.Pos, ErrControl)
	}
	size, err := checkRecords(recs, b.LastOffsetDelta)
	if err != nil {
		return dst, fmt.Errorf("encode batch at byte %d (offset %d): %w", b.Pos, b.FirstOffset, err)
	}
	start := len(dst)
	hdr := b.RecordBatch
	hdr.Records = nil
	hdr.NumRecords = int32(len(recs))
	hdr.Magic = 2
	dst = hdr.AppendTo(dst)

	codec := b.Codec()
	if codec == CodecNone {
		dst = appendRecords(growCap(dst, size), recs)
	} else {
		scratch := getBuf(size)
		*scratch = appendRecords(*scratch, recs)
		dst, err = compress(dst, codec, b.SnappyXerial(), *scratch)
		putBuf(scratch)
		if err != nil {
			return dst[:start], fmt.Errorf("encode batch at byte %d (offset %d): %w", b.Pos, b.FirstOffset, err)
		}
	}
	length := len(dst) - start - logOverhead
	if length > math.MaxInt32 {
		return dst[:start], fmt.Errorf("encode batch at byte %d: %d bytes: %w", b.Pos, length, ErrTooLarge)
	}
	out := dst[start:]
	binary.BigEndian.PutUint32(out[offLength:], uint32(length))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], crc32c))
	return dst, nil
}

// growCap makes room for n more bytes in dst.
func growCap(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	nb := make([]byte, len(dst), len(dst)+n)
	copy(nb, dst)
	return nb
}

// RewriteFunc inspects and may modify the decoded records of one data batch.
// It returns changed=false when it modified nothing, so the batch is passed
// on as its original bytes. It must not change the number of records in a
// Produce batch (brokers check the count against the last offset delta), and
// must not keep recs or their byte slices after Rewrite returns: they alias
// pooled buffers. Values it sets may be any slices it owns.
type RewriteFunc func(b *Batch, recs []Record) (changed bool, err error)

// Rewrite decodes the Records field src, calls fn for every data batch
// (RecordBatch v2 that is not a control batch) and returns the field with the
// batches fn changed re-encoded (see EncodeBatch) and everything else (control
// batches, legacy messages unless Options.RejectLegacy, unchanged batches and
// a trailing partial batch unless Options.RejectPartial) copied byte for byte.
//
// If no batch changed, Rewrite returns src itself, no copy, and changed is
// false; dst is untouched. Otherwise it appends the new field to dst.
func Rewrite(dst, src []byte, opts Options, fn RewriteFunc) (out []byte, changed bool, err error) {
	flushed := 0 // src[:flushed] has been written to dst
	pos := 0
	start := len(dst)
	var b Batch
	for pos < len(src) {
		b = Batch{}
		n, err := parseBatch(&b, src, pos, &opts)
		if err != nil {
			return dst[:start], false, err
		}
		if n == 0 {
			break // partial tail: copied below
		}
		pos += n
		if b.IsLegacy() || b.IsControl() {
			continue
		}
		recs, err := b.RecordsInto(opts.Scratch)
		if err == nil && opts.ProducedOffsets {
			err = checkProduced(&b, recs)
		}
		if err != nil {
			b.Release()
			return dst[:start], false, err
		}
		ch, err := fn(&b, recs)
		if err != nil {
			b.Release()
			return dst[:start], false, fmt.Errorf("batch at byte %d (offset %d): %w", b.Pos, b.FirstOffset, err)
		}
		if ch {
			if !changed {
				dst = growCap(dst, len(src)+len(src)/8)
				changed = true
			}
			dst = append(dst, src[flushed:b.Pos]...)
			dst, err = EncodeBatch(dst, &b, recs)
			flushed = pos
		}
		b.Release()
		if err != nil {
			return dst[:start], false, err
		}
	}
	if !changed {
		return src, false, nil
	}
	return append(dst, src[flushed:]...), true, nil
}

// checkProduced refuses a batch whose records are not numbered 0..n-1 with
// a last offset delta of n-1, as every producer writes them.
func checkProduced(b *Batch, recs []Record) error {
	if int64(b.LastOffsetDelta) != int64(len(recs))-1 {
		return fmt.Errorf("batch at byte %d (offset %d): last offset delta %d with %d records: %w",
			b.Pos, b.FirstOffset, b.LastOffsetDelta, len(recs), ErrInvalidRecord)
	}
	for i := range recs {
		if recs[i].OffsetDelta != int32(i) {
			return fmt.Errorf("batch at byte %d (offset %d): record %d has offset delta %d: %w",
				b.Pos, b.FirstOffset, i, recs[i].OffsetDelta, ErrInvalidRecord)
		}
	}
	return nil
}
