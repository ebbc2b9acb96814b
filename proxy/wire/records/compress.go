package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// xerialMagic starts a snappy stream written by snappy-java's
// SnappyOutputStream (Java producers): the magic, then int32 version and
// int32 minimum compatible version, then blocks of int32 length + snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderLen = 16
	xerialBlockSize = 32 << 10 // what snappy-java writes by default
)

func isXerial(src []byte) bool {
	return len(src) >= xerialHeaderLen && bytes.HasPrefix(src, xerialMagic)
}

// Buffer pool for decompression output and encoding scratch. Buffers above
// maxPooled are left to the garbage collector so one huge batch does not pin
// memory.
const maxPooled = 4 << 20

var bufPool sync.Pool

func getBuf(capHint int) *[]byte {
	if p, ok := bufPool.Get().(*[]byte); ok {
		if cap(*p) >= capHint {
			*p = (*p)[:0]
			return p
		}
		bufPool.Put(p)
	}
	b := make([]byte, 0, max(capHint, 4<<10))
	return &b
}

func putBuf(p *[]byte) {
	if cap(*p) <= maxPooled {
		*p = (*p)[:0]
		bufPool.Put(p)
	}
}

// decompress decodes src (codec) into a pooled buffer, failing with
// ErrTooLarge once the output would exceed limit.
func decompress(codec Codec, src []byte, limit int) (*[]byte, []byte, error) {
	var (
		buf *[]byte
		err error
	)
	switch codec {
	case CodecGzip:
		buf, err = gunzip(src, limit)
	case CodecSnappy:
		buf, err = unsnappy(src, limit)
	case CodecLz4:
		buf, err = unlz4(src, limit)
	case CodecZstd:
		buf, err = unzstd(src, limit)
	default:
		return nil, nil, fmt.Errorf("%s: %w", codec, ErrCorrupt)
	}
	if err != nil {
		if buf != nil {
			putBuf(buf)
		}
		if errors.Is(err, ErrTooLarge) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%s decompression: %w: %w", codec, ErrCorrupt, err)
	}
	return buf, *buf, nil
}

// outChunk is the size of the pooled chunks decompressed output goes to
// once it outgrows its first buffer.
const outChunk = 256 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, outChunk); return &b }}

// readLimited reads r to EOF into a pooled buffer, at most limit bytes.
// The first capHint+1 bytes go to one buffer; past that, output goes to
// pooled chunks and the result is assembled only once r ended within the
// limit. So a stream that exceeds the limit costs at most about limit
// bytes (most of them reused chunks), never a buffer grown by doubling
// past it, and a stream that fits costs its size (plus, when the hint was
// short, the chunks it passed through).
func readLimited(r io.Reader, capHint, limit int) (*[]byte, error) {
	hint := max(min(capHint, limit), 0)
	first := getBuf(hint + 1)
	b := (*first)[:hint+1]
	n, err := io.ReadFull(r, b)
	*first = b[:n]
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return first, nil
	case err != nil:
		return first, err
	}
	// More than the hint: go on in chunks.
	var chunks []*[]byte
	defer func() {
		for _, c := range chunks {
			chunkPool.Put(c)
		}
	}()
	total := n
	for {
		if total > limit {
			return first, fmt.Errorf("decompressed size above %d bytes: %w", limit, ErrTooLarge)
		}
		c := chunkPool.Get().(*[]byte)
		chunks = append(chunks, c)
		// Never read more than limit+1 bytes in total.
		m, err := io.ReadFull(r, (*c)[:min(outChunk, limit+1-total)])
		*c = (*c)[:m]
		total += m
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return first, err
		}
	}
	if total > limit {
		return first, fmt.Errorf("decompressed size above %d bytes: %w", limit, ErrTooLarge)
	}
	out := getBuf(total)
	o := append((*out)[:0], *first...)
	for _, c := range chunks {
		o = append(o, *c...)
		*c = (*c)[:cap(*c)]
	}
	*out = o
	putBuf(first)
	return out, nil
}

// sizeHint guesses the decompressed size from the compressed size.
func sizeHint(n int) int { return max(4*n, 16<<10) }

type gzipReader struct {
	src bytes.Reader
	zr  gzip.Reader
}

var gzipReaders sync.Pool

func gunzip(src []byte, limit int) (*[]byte, error) {
	gr, _ := gzipReaders.Get().(*gzipReader)
	if gr == nil {
		gr = new(gzipReader)
	}
	defer func() { gr.src.Reset(nil); gzipReaders.Put(gr) }()
	gr.src.Reset(src)
	if err := gr.zr.Reset(&gr.src); err != nil {
		return nil, err
	}
	hint := sizeHint(len(src))
	if len(src) >= 18 { // ISIZE trailer: size mod 2^32 of the last member
		if n := int(binary.LittleEndian.Uint32(src[len(src)-4:])); n > 0 && n <= limit {
			hint = n + 1 // +1 so the EOF read needs no growth
		}
	}
	return readLimited(&gr.zr, hint, limit)
}

type lz4Reader struct {
	src bytes.Reader
	zr  *lz4.Reader
}

var lz4Readers sync.Pool

func unlz4(src []byte, limit int) (*[]byte, error) {
	lr, _ := lz4Readers.Get().(*lz4Reader)
	if lr == nil {
		lr = &lz4Reader{zr: lz4.NewReader(nil)}
	}
	defer func() { lr.src.Reset(nil); lz4Readers.Put(lr) }()
	lr.src.Reset(src)
	lr.zr.Reset(&lr.src)
	return readLimited(lr.zr, sizeHint(len(src)), limit)
}

func unsnappy(src []byte, limit int) (*[]byte, error) {
	if !isXerial(src) {
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > limit {
			return nil, fmt.Errorf("snappy block declares %d bytes, limit %d: %w", n, limit, ErrTooLarge)
		}
		buf := getBuf(n)
		out, err := s2.Decode((*buf)[:n], src)
		if err != nil {
			return buf, err
		}
		*buf = out
		return buf, nil
	}
	// Xerial: header, then int32 length + snappy block, repeated. A stream
	// may be concatenated with another (a header in the middle is skipped).
	// The blocks' declared sizes are summed first, so the output is one
	// buffer of the final size.
	total, err := xerialSize(src, limit)
	if err != nil {
		return nil, err
	}
	buf := getBuf(total)
	b := *buf
	pos := xerialHeaderLen
	for pos < len(src) {
		if bytes.HasPrefix(src[pos:], xerialMagic) {
			if len(src)-pos < xerialHeaderLen {
				*buf = b
				return buf, errors.New("truncated xerial header")
			}
			pos += xerialHeaderLen
			continue
		}
		if len(src)-pos < 4 {
			*buf = b
			return buf, fmt.Errorf("truncated xerial block length at byte %d", pos)
		}
		l := int(binary.BigEndian.Uint32(src[pos:]))
		pos += 4
		if l < 0 || l > len(src)-pos {
			*buf = b
			return buf, fmt.Errorf("xerial block length %d at byte %d exceeds input", l, pos-4)
		}
		block := src[pos : pos+l]
		pos += l
		n, err := s2.DecodedLen(block)
		if err != nil {
			*buf = b
			return buf, err
		}
		if n > limit-len(b) {
			*buf = b
			return buf, fmt.Errorf("xerial snappy exceeds %d bytes: %w", limit, ErrTooLarge)
		}
		b = growLen(b, n)
		if _, err := s2.Decode(b[len(b)-n:], block); err != nil {
			*buf = b
			return buf, err
		}
	}
	*buf = b
	return buf, nil
}

// xerialSize sums the decoded sizes the blocks of a xerial stream declare,
// failing with ErrTooLarge past limit.
func xerialSize(src []byte, limit int) (int, error) {
	total := 0
	for pos := xerialHeaderLen; pos < len(src); {
		if bytes.HasPrefix(src[pos:], xerialMagic) {
			pos += xerialHeaderLen
			continue
		}
		if len(src)-pos < 4 {
			return 0, fmt.Errorf("truncated xerial block length at byte %d", pos)
		}
		l := int(binary.BigEndian.Uint32(src[pos:]))
		pos += 4
		if l < 0 || l > len(src)-pos {
			return 0, fmt.Errorf("xerial block length %d at byte %d exceeds input", l, pos-4)
		}
		n, err := s2.DecodedLen(src[pos : pos+l])
		if err != nil {
			return 0, err
		}
		pos += l
		if total += n; total > limit {
			return 0, fmt.Errorf("xerial snappy exceeds %d bytes: %w", limit, ErrTooLarge)
		}
	}
	return total, nil
}

// growLen extends b by n bytes (contents of the new bytes unspecified).
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), max(2*cap(b), len(b)+n))
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// Zstd decoders are pooled per effective bound. klauspost's decoder refuses
// windows larger than its bound, and Java producers declare windows of a few
// MiB, so the decoder bound never goes below zstdMinBound; the caller's exact
// limit is enforced on the output.
//
// Two paths keep memory bounded: a frame that declares its content size (as
// franz-go and EncodeAll write it) is decoded with DecodeAll into a buffer of
// exactly that size, the decoder being forbidden to grow it (a further frame
// that does not fit falls back to streaming); anything else is streamed
// through readLimited, which stops reading at the limit. DecodeAll on a frame
// of unknown size would grow its output many times over before noticing the
// bound.
const zstdMinBound = 8 << 20

// zstdMaxWindow caps the window a zstd frame may declare, which the decoder
// allocates as history: producers' default levels use 2-8 MiB windows
// (zstd level 19 uses 8 MiB), while a bomb would declare the largest the
// bound allows and cost that much on top of its output.
const zstdMaxWindow = 8 << 20

type zstdDecoder struct {
	src bytes.Reader
	d   *zstd.Decoder
}

var zstdDecoders sync.Map // uint64 bound -> *sync.Pool of *zstdDecoder

func zstdPool(bound uint64) *sync.Pool {
	if pv, ok := zstdDecoders.Load(bound); ok {
		return pv.(*sync.Pool)
	}
	pv, _ := zstdDecoders.LoadOrStore(bound, &sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(false),
			zstd.WithDecoderMaxMemory(bound),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecodeAllCapLimit(true),
		)
		if err != nil {
			return err
		}
		return &zstdDecoder{d: d}
	}})
	return pv.(*sync.Pool)
}

func unzstd(src []byte, limit int) (*[]byte, error) {
	pool := zstdPool(uint64(max(limit, zstdMinBound)))
	v := pool.Get()
	zd, ok := v.(*zstdDecoder)
	if !ok {
		return nil, fmt.Errorf("zstd decoder: %v", v)
	}
	defer pool.Put(zd)
	var h zstd.Header
	if h.Decode(src) == nil && h.HasFCS && h.FrameContentSize <= uint64(limit) {
		buf := getBuf(int(h.FrameContentSize))
		out, err := zd.d.DecodeAll(src, (*buf)[:0])
		if err == nil {
			*buf = out
			if len(out) > limit { // a pooled buffer may have room beyond limit
				return buf, fmt.Errorf("zstd output %d bytes exceeds %d: %w", len(out), limit, ErrTooLarge)
			}
			return buf, nil
		}
		putBuf(buf)
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, err
		}
		// More frames than the first one declared: stream.
	}
	zd.src.Reset(src)
	if err := zd.d.Reset(&zd.src); err != nil {
		return nil, err
	}
	defer func() {
		_ = zd.d.Reset(nil) // drop references to src before pooling
		zd.src.Reset(nil)
	}()
	buf, err := readLimited(zd.d, sizeHint(len(src)), limit)
	if err != nil && (errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded)) {
		return buf, fmt.Errorf("zstd exceeds %d bytes: %w: %w", limit, ErrTooLarge, err)
	}
	return buf, err
}

// ---- compression ----

// sliceWriter appends to b; it lets stream compressors write into dst.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

type gzipWriter struct {
	sw sliceWriter
	zw *gzip.Writer
}

var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return &gzipWriter{zw: zw}
}}

type lz4Writer struct {
	sw sliceWriter
	zw *lz4.Writer
}

var lz4Writers = sync.Pool{New: func() any { return &lz4Writer{zw: lz4.NewWriter(nil)} }}

var (
	zstdEncOnce sync.Once
	zstdEnc     *zstd.Encoder
	zstdEncErr  error
)

func zstdEncoder() (*zstd.Encoder, error) {
	zstdEncOnce.Do(func() {
		// EncodeAll is safe for concurrent use; the encoder keeps up to
		// GOMAXPROCS per-call states (the default concurrency).
		zstdEnc, zstdEncErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	})
	return zstdEnc, zstdEncErr
}

// compress appends src compressed with codec to dst. xerial selects the
// xerial framing for snappy.
func compress(dst []byte, codec Codec, xerial bool, src []byte) ([]byte, error) {
	switch codec {
	case CodecGzip:
		w := gzipWriters.Get().(*gzipWriter)
		defer gzipWriters.Put(w)
		w.sw.b = dst
		w.zw.Reset(&w.sw)
		if _, err := w.zw.Write(src); err != nil {
			return dst, fmt.Errorf("gzip: %w", err)
		}
		if err := w.zw.Close(); err != nil {
			return dst, fmt.Errorf("gzip: %w", err)
		}
		out := w.sw.b
		w.sw.b = nil
		w.zw.Reset(nil)
		return out, nil
	case CodecLz4:
		w := lz4Writers.Get().(*lz4Writer)
		defer lz4Writers.Put(w)
		w.sw.b = dst
		w.zw.Reset(&w.sw)
		if err := w.zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			return dst, fmt.Errorf("lz4: %w", err)
		}
		if _, err := w.zw.Write(src); err != nil {
			return dst, fmt.Errorf("lz4: %w", err)
		}
		if err := w.zw.Close(); err != nil {
			return dst, fmt.Errorf("lz4: %w", err)
		}
		out := w.sw.b
		w.sw.b = nil
		w.zw.Reset(nil)
		return out, nil
	case CodecZstd:
		enc, err := zstdEncoder()
		if err != nil {
			return dst, fmt.Errorf("zstd: %w", err)
		}
		return enc.EncodeAll(src, dst), nil
	case CodecSnappy:
		if !xerial {
			return appendSnappyBlock(dst, src), nil
		}
		dst = append(dst, xerialMagic...)
		dst = binary.BigEndian.AppendUint32(dst, 1) // version
		dst = binary.BigEndian.AppendUint32(dst, 1) // minimum compatible version
		for len(src) > 0 {
			chunk := src[:min(len(src), xerialBlockSize)]
			src = src[len(chunk):]
			at := len(dst)
			dst = append(dst, 0, 0, 0, 0)
			dst = appendSnappyBlock(dst, chunk)
			binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
		}
		return dst, nil
	}
	return dst, fmt.Errorf("%s: %w", codec, ErrCorrupt)
}

// appendSnappyBlock appends one plain snappy block (s2's snappy-compatible
// encoder) of src to dst.
func appendSnappyBlock(dst, src []byte) []byte {
	n := s2.MaxEncodedLen(len(src))
	at := len(dst)
	dst = growLen(dst, n)
	enc := s2.EncodeSnappy(dst[at:], src)
	return dst[:at+len(enc)]
}
