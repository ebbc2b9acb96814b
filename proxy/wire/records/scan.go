package records

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// ScanHeaderKeys calls fn with the key of every header of every record of
// the batch, in order, without keeping the decompressed records: they are
// decompressed as a stream and read one field at a time, keys and values
// skipped, so the scan costs the decompressor's state and the longest
// header key, not the batch's decompressed size. The decompressed size is
// still bounded by Options.MaxDecompressedBytes (ErrTooLarge), and every
// length is checked as Records checks it: ScanHeaderKeys fails exactly on
// the batches Records fails on. fn's key is valid only during the call; an
// error from fn stops the scan and is returned.
func (b *Batch) ScanHeaderKeys(fn func(key []byte) error) error {
	if b.IsLegacy() {
		return fmt.Errorf("batch at byte %d (magic %d): %w", b.Pos, b.Magic, ErrLegacy)
	}
	codec := b.Codec()
	if codec != CodecNone { // uncompressed records cost nothing to scan
		if err := b.take(); err != nil {
			return fmt.Errorf("batch at byte %d (offset %d, %s): %w", b.Pos, b.FirstOffset, codec, err)
		}
		defer b.give()
	}
	limit := b.opts.maxDecompressed()
	if codec == CodecNone {
		limit = len(b.RecordBatch.Records) // as Records: no bound but the input
	}
	r, done, err := openStream(codec, b.RecordBatch.Records, limit)
	if err != nil {
		return b.scanErr(codec, err)
	}
	defer done()
	sc := scanners.Get().(*scanner)
	defer func() { sc.reset(nil); scanners.Put(sc) }()
	sc.reset(r)
	sc.limit = limit
	if err := sc.records(b.NumRecords, fn); err != nil {
		return b.scanErr(codec, err)
	}
	return nil
}

func (b *Batch) scanErr(codec Codec, err error) error {
	if (errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrRecordCount)) && codec == CodecNone {
		return fmt.Errorf("batch at byte %d (offset %d, %s): %w", b.Pos, b.FirstOffset, codec, err)
	}
	if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrRecordCount) {
		err = fmt.Errorf("%s decompression: %w: %w", codec, ErrCorrupt, err)
	}
	return fmt.Errorf("batch at byte %d (offset %d, %s): %w", b.Pos, b.FirstOffset, codec, err)
}

// openStream returns src decompressed as a stream and a function that
// returns the stream's state to its pool.
func openStream(codec Codec, src []byte, limit int) (io.Reader, func(), error) {
	switch codec {
	case CodecNone:
		return bytes.NewReader(src), func() {}, nil
	case CodecGzip:
		gr, _ := gzipReaders.Get().(*gzipReader)
		if gr == nil {
			gr = new(gzipReader)
		}
		done := func() { gr.src.Reset(nil); gzipReaders.Put(gr) }
		gr.src.Reset(src)
		if err := gr.zr.Reset(&gr.src); err != nil {
			done()
			return nil, nil, err
		}
		return &gr.zr, done, nil
	case CodecLz4:
		lr, _ := lz4Readers.Get().(*lz4Reader)
		if lr == nil {
			lr = &lz4Reader{zr: lz4.NewReader(nil)}
		}
		lr.src.Reset(src)
		lr.zr.Reset(&lr.src)
		return lr.zr, func() { lr.src.Reset(nil); lz4Readers.Put(lr) }, nil
	case CodecZstd:
		pool := zstdPool(uint64(max(limit, zstdMinBound)))
		v := pool.Get()
		zd, ok := v.(*zstdDecoder)
		if !ok {
			return nil, nil, fmt.Errorf("zstd decoder: %v", v)
		}
		done := func() {
			_ = zd.d.Reset(nil)
			zd.src.Reset(nil)
			pool.Put(zd)
		}
		zd.src.Reset(src)
		if err := zd.d.Reset(&zd.src); err != nil {
			done()
			return nil, nil, err
		}
		return zstdStream{zd.d}, done, nil
	case CodecSnappy:
		if isXerial(src) {
			return &xerialReader{src: src, pos: xerialHeaderLen, limit: limit}, func() {}, nil
		}
		// A plain snappy block decodes at once; its size is declared.
		buf, err := unsnappy(src, limit)
		if err != nil {
			if buf != nil {
				putBuf(buf)
			}
			return nil, nil, err
		}
		return bytes.NewReader(*buf), func() { putBuf(buf) }, nil
	}
	return nil, nil, fmt.Errorf("%s: %w", codec, ErrCorrupt)
}

// zstdStream maps the decoder's size errors to ErrTooLarge.
type zstdStream struct{ r io.Reader }

func (z zstdStream) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	if err != nil && (errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded)) {
		err = fmt.Errorf("zstd: %w: %w", ErrTooLarge, err)
	}
	return n, err
}

// xerialReader decodes a xerial snappy stream one block at a time.
type xerialReader struct {
	src   []byte
	pos   int
	limit int
	buf   []byte // current block, decoded
	off   int
	total int
}

func (x *xerialReader) Read(p []byte) (int, error) {
	for x.off == len(x.buf) {
		if x.pos >= len(x.src) {
			return 0, io.EOF
		}
		if bytes.HasPrefix(x.src[x.pos:], xerialMagic) {
			if len(x.src)-x.pos < xerialHeaderLen {
				return 0, errors.New("truncated xerial header")
			}
			x.pos += xerialHeaderLen
			continue
		}
		if len(x.src)-x.pos < 4 {
			return 0, fmt.Errorf("truncated xerial block length at byte %d", x.pos)
		}
		l := int(binary.BigEndian.Uint32(x.src[x.pos:]))
		x.pos += 4
		if l < 0 || l > len(x.src)-x.pos {
			return 0, fmt.Errorf("xerial block length %d at byte %d exceeds input", l, x.pos-4)
		}
		block := x.src[x.pos : x.pos+l]
		x.pos += l
		n, err := s2.DecodedLen(block)
		if err != nil {
			return 0, err
		}
		if x.total += n; x.total > x.limit {
			return 0, fmt.Errorf("xerial snappy exceeds %d bytes: %w", x.limit, ErrTooLarge)
		}
		if cap(x.buf) < n {
			x.buf = make([]byte, n)
		}
		if x.buf, err = s2.Decode(x.buf[:n], block); err != nil {
			return 0, err
		}
		x.off = 0
	}
	n := copy(p, x.buf[x.off:])
	x.off += n
	return n, nil
}

// scanner reads records from a decompressed stream, counting the bytes.
type scanner struct {
	br    *bufio.Reader
	n     int // bytes read so far
	limit int
	key   []byte
}

var scanners = sync.Pool{New: func() any { return &scanner{br: bufio.NewReaderSize(nil, 32<<10)} }}

func (s *scanner) reset(r io.Reader) {
	s.br.Reset(r)
	s.n = 0
	s.key = s.key[:0]
}

// errShort: the stream ended inside a record.
var errShort = fmt.Errorf("records end early: %w", ErrCorrupt)

func (s *scanner) byte() (byte, error) {
	c, err := s.br.ReadByte()
	if err != nil {
		return 0, s.readErr(err)
	}
	s.n++
	if s.n > s.limit {
		return 0, fmt.Errorf("decompressed size above %d bytes: %w", s.limit, ErrTooLarge)
	}
	return c, nil
}

func (s *scanner) readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errShort
	}
	return err
}

// varint reads a zigzag varint of at most 10 bytes.
func (s *scanner) varint() (int64, error) {
	var ux uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c, err := s.byte()
		if err != nil {
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			return 0, fmt.Errorf("bad varint: %w", ErrCorrupt)
		}
		ux |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			x := int64(ux >> 1)
			if ux&1 != 0 {
				x = ^x
			}
			return x, nil
		}
	}
	return 0, fmt.Errorf("bad varint: %w", ErrCorrupt)
}

func (s *scanner) varint32() (int32, error) {
	v, err := s.varint()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("bad varint: %w", ErrCorrupt)
	}
	return int32(v), nil
}

// skip discards n bytes.
func (s *scanner) skip(n int) error {
	if s.n+n > s.limit {
		return fmt.Errorf("decompressed size above %d bytes: %w", s.limit, ErrTooLarge)
	}
	m, err := s.br.Discard(n)
	s.n += m
	if err != nil {
		return s.readErr(err)
	}
	return nil
}

// nullable reads a nullable length that must fit in left bytes and
// returns it (-1: null).
func (s *scanner) nullable(left int) (int, error) {
	l, err := s.varint32()
	if err != nil {
		return 0, err
	}
	if l < -1 || int(l) > left {
		return 0, fmt.Errorf("length %d out of range: %w", l, ErrCorrupt)
	}
	return int(l), nil
}

// records scans n records, then expects the end of the stream.
func (s *scanner) records(n int32, fn func([]byte) error) error {
	if n < 0 {
		return fmt.Errorf("header says %d records: %w", n, ErrRecordCount)
	}
	for i := int32(0); i < n; i++ {
		if _, err := s.br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("record %d of %d missing: %w", i, n, ErrRecordCount)
			}
			return s.readErr(err)
		}
		l, err := s.varint32()
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if l < minRecordBodySize {
			return fmt.Errorf("record %d: length %d out of range: %w", i, l, ErrCorrupt)
		}
		if err := s.record(int(l), fn); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	if _, err := s.br.Peek(1); err == nil {
		return fmt.Errorf("bytes after the %d records the header counts: %w", n, ErrRecordCount)
	} else if !errors.Is(err, io.EOF) {
		return s.readErr(err)
	}
	return nil
}

// record scans one record body of l bytes.
func (s *scanner) record(l int, fn func([]byte) error) error {
	end := s.n + l
	if end > s.limit {
		// Reading it would pass the bound anyway.
		return fmt.Errorf("decompressed size above %d bytes: %w", s.limit, ErrTooLarge)
	}
	if _, err := s.byte(); err != nil { // attributes
		return err
	}
	if _, err := s.varint(); err != nil { // timestamp delta
		return err
	}
	if _, err := s.varint32(); err != nil { // offset delta
		return err
	}
	if err := s.checkEnd(end); err != nil {
		return err
	}
	for _, what := range []string{"key", "value"} {
		n, err := s.nullable(end - s.n)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n > 0 {
			if err := s.skip(n); err != nil {
				return err
			}
		}
	}
	if err := s.checkEnd(end); err != nil {
		return err
	}
	nh, err := s.varint32()
	if err != nil {
		return fmt.Errorf("header count: %w", err)
	}
	if err := s.checkEnd(end); err != nil {
		return err
	}
	if nh < 0 || int(nh)*2 > end-s.n {
		return fmt.Errorf("header count %d with %d bytes left: %w", nh, end-s.n, ErrCorrupt)
	}
	for j := 0; j < int(nh); j++ {
		k, err := s.nullable(end - s.n)
		if err != nil {
			return fmt.Errorf("header %d key: %w", j, err)
		}
		if k < 0 {
			return fmt.Errorf("header %d: null key: %w", j, ErrCorrupt)
		}
		if cap(s.key) < k {
			s.key = make([]byte, k)
		}
		s.key = s.key[:k]
		if _, err := io.ReadFull(s.br, s.key); err != nil {
			return s.readErr(err)
		}
		s.n += k
		v, err := s.nullable(end - s.n)
		if err != nil {
			return fmt.Errorf("header %d value: %w", j, err)
		}
		if v > 0 {
			if err := s.skip(v); err != nil {
				return err
			}
		}
		if err := fn(s.key); err != nil {
			return err
		}
	}
	if s.n != end {
		return fmt.Errorf("%d bytes after the last header: %w", end-s.n, ErrCorrupt)
	}
	return nil
}

// checkEnd fails once a record's fields ran past its length.
func (s *scanner) checkEnd(end int) error {
	if s.n > end {
		return fmt.Errorf("fields run %d bytes past the record: %w", s.n-end, ErrCorrupt)
	}
	return nil
}
