// Package records decodes and re-encodes the Records field of Kafka Produce
// requests and Fetch responses: a sequence of RecordBatch v2 (magic 2)
// entries, optionally followed (in Fetch responses) by a truncated partial
// batch, or legacy message sets (magic 0 and 1).
//
// The package is built for a proxy that rewrites record contents: batches are
// parsed without copying (a [Batch] aliases the input), records are
// decompressed lazily and with a bound on the decompressed size, and a batch
// whose records did not change is passed through as its original bytes. A
// changed batch is re-encoded with the same codec and every header field
// preserved except the lengths and the CRC-32C, which are recomputed.
//
// The batch header uses [kmsg.RecordBatch]; record encoding, compression and
// the bounded decompression are implemented here (see docs/records.md).
package records

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Wire layout of a RecordBatch v2 header (all big endian).
const (
	offLength     = 8  // int32 batchLength: bytes after this field
	offMagic      = 16 // int8 magic, at the same position in legacy messages
	offCRC        = 17 // uint32 CRC-32C over [offAttributes, end)
	offAttributes = 21 // first byte covered by the CRC
	offNumRecords = 57

	// BatchHeaderSize is the size of a RecordBatch v2 header: the bytes
	// before the first record.
	BatchHeaderSize = 61

	logOverhead       = 12                            // baseOffset + length
	minBatchLength    = BatchHeaderSize - logOverhead // 49
	minLegacyLength   = 14                            // crc, magic, attributes, key and value lengths (magic 0)
	minRecordBodySize = 6                             // attributes, ts delta, offset delta, key, value, header count
)

// Attribute bits of a RecordBatch v2.
const (
	attrCodecMask     = 0x07
	attrTimestampType = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
	attrDeleteHorizon = 0x40
)

// DefaultMaxDecompressedBytes is the decompressed-size bound used when
// [Options.MaxDecompressedBytes] is zero.
const DefaultMaxDecompressedBytes = 64 << 20

// Errors. Every error returned by this package wraps one of these, so callers
// can classify with errors.Is; the wrapping text says where the problem was.
var (
	// ErrCorrupt reports malformed batch or record bytes (bad length, bad
	// varint, trailing bytes, unknown magic or codec, ...).
	ErrCorrupt = errors.New("records: corrupt record batch")
	// ErrCRC reports a RecordBatch whose CRC-32C does not match its bytes.
	ErrCRC = errors.New("records: record batch CRC mismatch")
	// ErrRecordCount reports a batch whose header record count does not
	// match the records it holds.
	ErrRecordCount = errors.New("records: record count mismatch")
	// ErrTooLarge reports a batch that decompresses to more than
	// Options.MaxDecompressedBytes, or an encoding that would not fit the
	// int32 lengths of the format.
	ErrTooLarge = errors.New("records: record batch too large")
	// ErrLegacy reports a legacy message set (magic 0 or 1) where a
	// RecordBatch v2 is required.
	ErrLegacy = errors.New("records: legacy message set (magic 0/1)")
	// ErrControl reports an attempt to re-encode a control batch.
	ErrControl = errors.New("records: control batches are never re-encoded")
	// ErrPartial reports a truncated trailing batch when Options.RejectPartial is set.
	ErrPartial = errors.New("records: truncated trailing batch")
	// ErrInvalidRecord reports records handed to EncodeBatch that the batch
	// header cannot describe (offset delta out of range, null header key, ...).
	ErrInvalidRecord = errors.New("records: invalid record for batch")
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec of a batch, the low three attribute bits.
type Codec int8

// The Kafka compression codecs.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLz4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the codec's Kafka name.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLz4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Options configure decoding. The zero value is the safe default: CRCs are
// checked, decompression is bounded by [DefaultMaxDecompressedBytes], legacy
// message sets and a trailing partial batch are passed through.
type Options struct {
	// MaxDecompressedBytes bounds the decompressed record bytes of one
	// batch; a batch that would decompress to more fails with ErrTooLarge
	// before more than about this much memory is used. Zero means
	// DefaultMaxDecompressedBytes.
	MaxDecompressedBytes int
	// SkipCRC disables the CRC-32C check of RecordBatch v2 entries. Only
	// for batches passed through: a batch that is re-encoded gets a fresh,
	// valid CRC, which would hide corruption the check would have caught.
	SkipCRC bool
	// RejectLegacy makes decoding fail with ErrLegacy on a magic 0/1
	// message instead of passing it through. A proxy that must transform
	// every record (encryption on produce) sets this: legacy messages
	// cannot be transformed and must not be forwarded in plaintext.
	RejectLegacy bool
	// RejectPartial makes decoding fail with ErrPartial when the input ends
	// with a truncated batch. Produce requests never legitimately carry
	// one; Fetch responses may.
	RejectPartial bool
	// ProducedOffsets makes Rewrite refuse (ErrInvalidRecord), before
	// calling its RewriteFunc, a data batch whose records are not
	// numbered as a producer numbers them: offset deltas 0, 1, ..., n-1
	// and a last offset delta of n-1. Produce requests set it; fetched
	// batches of compacted topics legitimately have gaps.
	ProducedOffsets bool
	// Limiter, when set, bounds how many batches hold decompressed
	// records at once across everything that shares it: a batch takes a
	// slot before it decompresses (waiting for one until Context ends)
	// and gives it back on Release. One goroutine must release a batch
	// before it decompresses the next (as Rewrite and ScanHeaderKeys do).
	Limiter *Limiter
	// Context bounds the wait for a Limiter slot; nil: no bound.
	Context context.Context
	// Scratch, when set, is the memory Rewrite decodes every batch's
	// records into: a RewriteFunc must then not keep a batch's records
	// after it returns (the next batch overwrites them).
	Scratch *Scratch
}

// Limiter bounds the number of batches decompressed at once, and so the
// memory decompression takes: each holds at most its decompressed-size
// bound. A Limiter is safe for concurrent use.
type Limiter struct{ slots chan struct{} }

// NewLimiter returns a Limiter of n slots (at least 1).
func NewLimiter(n int) *Limiter { return &Limiter{slots: make(chan struct{}, max(n, 1))} }

func (l *Limiter) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting to decompress: %w", ctx.Err())
	}
}

func (l *Limiter) release() { <-l.slots }

// take acquires the options' limiter slot for b, if any.
func (b *Batch) take() error {
	if b.opts.Limiter == nil || b.limited {
		return nil
	}
	if err := b.opts.Limiter.acquire(b.opts.Context); err != nil {
		return err
	}
	b.limited = true
	return nil
}

// give returns b's limiter slot, if it holds one.
func (b *Batch) give() {
	if b.limited {
		b.limited = false
		b.opts.Limiter.release()
	}
}

func (o *Options) maxDecompressed() int {
	if o.MaxDecompressedBytes <= 0 {
		return DefaultMaxDecompressedBytes
	}
	return min(o.MaxDecompressedBytes, math.MaxInt32) // record lengths are int32 anyway
}

// Header is a record header. It is kmsg's type, so records can move between
// this package and kmsg/kgo without conversion. A nil Value is a null header
// value on the wire, distinct from an empty one.
type Header = kmsg.Header

// Record is one record of a RecordBatch v2. Key and Value keep the difference
// between null (nil) and empty (non-nil, length 0). Decoded records alias the
// input or the batch's decompression buffer; see [Batch.Records].
type Record struct {
	Key            []byte
	Value          []byte
	Headers        []Header
	OffsetDelta    int32
	TimestampDelta int64
	Attributes     int8
}

// Batch is one entry of a Records field: a RecordBatch v2, or a legacy
// (magic 0/1) message passed through untouched.
//
// The embedded kmsg.RecordBatch holds the header exactly as received; its
// Records field (reach it as b.RecordBatch.Records, the Records method
// decodes) holds the record bytes as they are on the wire, compressed or not,
// aliasing Raw. For a legacy message only FirstOffset, Length, Magic and CRC
// are set.
type Batch struct {
	kmsg.RecordBatch

	// Raw is the entry's bytes exactly as received (aliasing the input).
	Raw []byte
	// Pos is the position of Raw in the input given to ParseBatches.
	Pos int

	opts    Options
	buf     *[]byte // pooled decompression buffer, owned until Release
	data    []byte  // decompressed record bytes, valid while buf is held
	limited bool    // holds a slot of opts.Limiter, until Release
}

// IsLegacy reports whether the entry is a magic 0/1 message, which this
// package never decodes or modifies.
func (b *Batch) IsLegacy() bool { return b.Magic != 2 }

// Codec returns the batch's compression codec.
func (b *Batch) Codec() Codec { return Codec(b.Attributes & attrCodecMask) }

// IsControl reports whether the batch is a control batch (transaction
// markers). Control batches are never re-encoded.
func (b *Batch) IsControl() bool { return !b.IsLegacy() && b.Attributes&attrControl != 0 }

// IsTransactional reports whether the batch belongs to a transaction.
func (b *Batch) IsTransactional() bool { return !b.IsLegacy() && b.Attributes&attrTransactional != 0 }

// LogAppendTime reports whether the batch's timestamp type is LogAppendTime
// (broker-assigned) rather than CreateTime.
func (b *Batch) LogAppendTime() bool { return !b.IsLegacy() && b.Attributes&attrTimestampType != 0 }

// SnappyXerial reports whether a snappy batch uses the xerial framing (Java
// producers) rather than a plain snappy block; EncodeBatch keeps the framing.
func (b *Batch) SnappyXerial() bool {
	return b.Codec() == CodecSnappy && isXerial(b.RecordBatch.Records)
}

// Records decodes the batch's records, decompressing them if needed (the
// decompressed size is bounded by Options.MaxDecompressedBytes). It checks
// every length, that the records fill the batch exactly and that their number
// equals the header's NumRecords. Control batches decode too (read-only).
//
// The returned records alias the input (uncompressed batches) or a buffer
// the batch owns until [Batch.Release]; copy what you keep beyond that.
// Each call decodes afresh; decompression happens once per batch.
func (b *Batch) Records() ([]Record, error) { return b.RecordsInto(nil) }

// RecordsInto is Records decoding into s (see [Scratch]): the records it
// returns are valid until the next decode with s. A nil s allocates.
func (b *Batch) RecordsInto(s *Scratch) ([]Record, error) {
	if b.IsLegacy() {
		return nil, fmt.Errorf("batch at byte %d (magic %d): %w", b.Pos, b.Magic, ErrLegacy)
	}
	data, err := b.uncompressed()
	if err != nil {
		return nil, err
	}
	recs, err := decodeRecords(data, b.NumRecords, s)
	if err != nil {
		return nil, fmt.Errorf("batch at byte %d (offset %d, %s): %w", b.Pos, b.FirstOffset, b.Codec(), err)
	}
	return recs, nil
}

// uncompressed returns the record bytes after decompression.
func (b *Batch) uncompressed() ([]byte, error) {
	codec := b.Codec()
	if codec == CodecNone {
		return b.RecordBatch.Records, nil
	}
	if b.buf != nil {
		return b.data, nil
	}
	if err := b.take(); err != nil {
		return nil, fmt.Errorf("batch at byte %d (offset %d, %s): %w", b.Pos, b.FirstOffset, codec, err)
	}
	buf, data, err := decompress(codec, b.RecordBatch.Records, b.opts.maxDecompressed())
	if err != nil {
		b.give()
		return nil, fmt.Errorf("batch at byte %d (offset %d, %s): %w", b.Pos, b.FirstOffset, codec, err)
	}
	b.buf, b.data = buf, data
	return data, nil
}

// Release returns the batch's decompression buffer to a pool. Records
// returned by earlier Records calls must not be used afterwards. Calling it
// is optional (without it the buffer is garbage collected) and idempotent.
func (b *Batch) Release() {
	if b.buf != nil {
		putBuf(b.buf)
		b.buf, b.data = nil, nil
	}
	b.give()
}

// ParseBatches splits a Records field into its entries without copying.
// It returns the complete entries and the trailing bytes of a truncated
// batch (nil when there is none), which a Fetch response may legitimately end
// with and which must be passed on byte for byte.
//
// Each RecordBatch v2 header is validated (length, CRC-32C unless
// Options.SkipCRC, codec); records are decoded only on Batch.Records.
// Legacy messages are returned flagged (Batch.IsLegacy) unless
// Options.RejectLegacy is set.
func ParseBatches(src []byte, opts Options) ([]Batch, []byte, error) {
	var batches []Batch
	pos := 0
	for pos < len(src) {
		var b Batch
		n, err := parseBatch(&b, src, pos, &opts)
		if err != nil {
			return nil, nil, err
		}
		if n == 0 {
			return batches, src[pos:], nil
		}
		if batches == nil {
			batches = make([]Batch, 0, 1)
		}
		batches = append(batches, b)
		pos += n
	}
	return batches, nil, nil
}

// parseBatch parses the entry at src[pos:] into b and returns its size, or 0
// (and no error) if the rest of src is a truncated entry.
func parseBatch(b *Batch, src []byte, pos int, opts *Options) (int, error) {
	rest := src[pos:]
	if len(rest) < logOverhead {
		return 0, partial(pos, opts)
	}
	length := int64(int32(binary.BigEndian.Uint32(rest[offLength:])))
	if length < minLegacyLength {
		return 0, fmt.Errorf("entry at byte %d: length %d below the minimum: %w", pos, length, ErrCorrupt)
	}
	size := logOverhead + length
	if int64(len(rest)) < size {
		return 0, partial(pos, opts)
	}
	raw := rest[:size:size]
	b.opts = *opts
	b.Raw = raw
	b.Pos = pos
	magic := int8(raw[offMagic])
	switch magic {
	case 0, 1:
		if opts.RejectLegacy {
			return 0, fmt.Errorf("entry at byte %d: %w", pos, ErrLegacy)
		}
		b.FirstOffset = int64(binary.BigEndian.Uint64(raw))
		b.Length = int32(length)
		b.CRC = int32(binary.BigEndian.Uint32(raw[12:]))
		b.Magic = magic
		return int(size), nil
	case 2:
	default:
		return 0, fmt.Errorf("entry at byte %d: unknown magic %d: %w", pos, magic, ErrCorrupt)
	}
	if length < minBatchLength {
		return 0, fmt.Errorf("batch at byte %d: length %d below the minimum %d: %w", pos, length, minBatchLength, ErrCorrupt)
	}
	if err := b.RecordBatch.UnsafeReadFrom(raw); err != nil {
		return 0, fmt.Errorf("batch at byte %d: %w: %w", pos, ErrCorrupt, err)
	}
	if !opts.SkipCRC {
		if got := crc32.Checksum(raw[offAttributes:], crc32c); got != uint32(b.CRC) {
			return 0, fmt.Errorf("batch at byte %d (offset %d): crc %08x, header says %08x: %w", pos, b.FirstOffset, got, uint32(b.CRC), ErrCRC)
		}
	}
	if c := b.Codec(); c > CodecZstd {
		return 0, fmt.Errorf("batch at byte %d (offset %d): %s: %w", pos, b.FirstOffset, c, ErrCorrupt)
	}
	if b.NumRecords < 0 {
		return 0, fmt.Errorf("batch at byte %d (offset %d): negative record count %d: %w", pos, b.FirstOffset, b.NumRecords, ErrRecordCount)
	}
	return int(size), nil
}

func partial(pos int, opts *Options) error {
	if opts.RejectPartial {
		return fmt.Errorf("entry at byte %d: %w", pos, ErrPartial)
	}
	return nil
}
