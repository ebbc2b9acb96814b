// Package wire holds kguard's Kafka framing: size-capped frame reads with
// pooled buffers, request and response header parsing (header versions 0, 1
// and 2, tagged fields) and the version-flexibility rules that depend on them.
//
// Nothing here knows about sockets beyond io.Reader/io.Writer, and nothing
// here allocates per frame on the fast path except through the buffer pool.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultMaxFrame is the default cap on one frame's size (Kafka's
// socket.request.max.bytes is 100 MiB by default).
const DefaultMaxFrame = 100 << 20

// ErrFrameTooLarge is returned when a frame announces a size over the cap.
var ErrFrameTooLarge = errors.New("frame size over limit")

// ErrBadFrameSize is returned when a frame announces a negative or too
// small size.
var ErrBadFrameSize = errors.New("invalid frame size")

// Frame is one size-prefixed Kafka message. Buf holds the 4-byte size prefix
// followed by the message, so forwarding a frame unchanged is one write of
// Buf. Body returns the message without the prefix.
type Frame struct {
	Buf  []byte
	pool *Pool
	slot *[]byte
}

// Body is the frame without its 4-byte size prefix.
func (f *Frame) Body() []byte { return f.Buf[4:] }

// Release returns the frame's buffer to its pool. The frame must not be used
// afterwards. Release on a zero Frame is a no-op.
func (f *Frame) Release() {
	if f.pool != nil && f.slot != nil {
		f.pool.Put(f.slot)
	}
	f.pool, f.slot, f.Buf = nil, nil, nil
}

// Pool is a set of size-classed buffer pools for frames. Buffers larger than
// the largest class are allocated and dropped, so a rare huge frame does not
// pin memory. A Pool is safe for concurrent use; the zero value is not.
type Pool struct {
	classes []int
	pools   []sync.Pool
}

// NewPool returns a pool with power-of-four classes from 1 KiB to 64 MiB
// (large Fetch responses are common: a consumer asks for up to 50 MiB).
func NewPool() *Pool {
	p := &Pool{}
	for sz := 1 << 10; sz <= 64<<20; sz <<= 2 {
		p.classes = append(p.classes, sz)
	}
	p.pools = make([]sync.Pool, len(p.classes))
	for i := range p.pools {
		sz := p.classes[i]
		p.pools[i].New = func() any { b := make([]byte, sz); return &b }
	}
	return p
}

// Get returns a buffer of length n, pooled when n fits a class.
func (p *Pool) Get(n int) (buf []byte, slot *[]byte) {
	for i, sz := range p.classes {
		if n <= sz {
			s := p.pools[i].Get().(*[]byte)
			return (*s)[:n], s
		}
	}
	return make([]byte, n), nil
}

// Put returns a buffer Get handed out with a non-nil slot; the buffer must
// not be used afterwards. Buffers of no class are dropped.
func (p *Pool) Put(s *[]byte) {
	c := cap(*s)
	for i, sz := range p.classes {
		if c == sz {
			p.pools[i].Put(s)
			return
		}
	}
}

// ReadFrame reads one size-prefixed frame from r into a pooled buffer, of
// the announced size at once: for a trusted peer (the upstream broker); see
// ReadFrameGradual for clients. A
// size over maxSize or under minSize is an error and nothing more is read;
// the caller must then close the connection, since the stream is no longer
// in sync. The returned frame must be released by the caller.
func ReadFrame(r io.Reader, p *Pool, maxSize int32) (Frame, error) {
	szb, size, err := readSize(r, maxSize)
	if err != nil {
		return Frame{}, err
	}
	return readBody(r, p, szb, size)
}

// EagerFrameBytes is the largest frame body ReadFrameGradual allocates in
// full before it has arrived; a larger one is read in chunks of this size.
const EagerFrameBytes = 16 << 10

// DefaultMaxPreAuthFrame caps a frame before the client has authenticated
// (Kafka's broker allows 512 KiB before SASL completes).
const DefaultMaxPreAuthFrame = 512 << 10

// ReadFrameGradual is ReadFrame for frames from an untrusted peer: memory
// grows with the bytes that have arrived, never with the size a frame
// announces. A frame body up to EagerFrameBytes is read as ReadFrame does;
// a larger one is read into pooled chunks of EagerFrameBytes, and its
// full-size buffer is taken only once every byte has arrived. A client
// that announces 100 MiB and sends a trickle holds one chunk per
// EagerFrameBytes it sent, plus one.
func ReadFrameGradual(r io.Reader, p *Pool, maxSize int32) (Frame, error) {
	szb, size, err := readSize(r, maxSize)
	if err != nil {
		return Frame{}, err
	}
	if size <= EagerFrameBytes {
		return readBody(r, p, szb, size)
	}
	chunks := make([]*[]byte, 0, 8)
	defer func() {
		for _, c := range chunks {
			p.Put(c)
		}
	}()
	for left := int(size); left > 0; {
		n := min(left, EagerFrameBytes)
		buf, slot := p.Get(EagerFrameBytes)
		chunks = append(chunks, slot)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, fmt.Errorf("reading %d-byte frame body after %d bytes: %w", size, int(size)-left, err)
		}
		left -= n
	}
	buf, slot := p.Get(int(size) + 4)
	copy(buf, szb[:])
	at := 4
	for _, c := range chunks {
		at += copy(buf[at:], (*c)[:min(EagerFrameBytes, len(buf)-at)])
	}
	return Frame{Buf: buf, pool: p, slot: slot}, nil
}

// readSize reads a frame's size prefix and checks it against maxSize.
func readSize(r io.Reader, maxSize int32) ([4]byte, int32, error) {
	var szb [4]byte
	if _, err := io.ReadFull(r, szb[:]); err != nil {
		return szb, 0, err
	}
	size := int32(binary.BigEndian.Uint32(szb[:]))
	if size < 0 {
		return szb, 0, fmt.Errorf("%w: %d", ErrBadFrameSize, size)
	}
	if size > maxSize {
		return szb, 0, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, size, maxSize)
	}
	return szb, size, nil
}

// readBody reads a size-byte frame body after its prefix szb into a
// buffer of the full size.
func readBody(r io.Reader, p *Pool, szb [4]byte, size int32) (Frame, error) {
	buf, slot := p.Get(int(size) + 4)
	copy(buf, szb[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		if slot != nil {
			p.Put(slot)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("reading %d-byte frame body: %w", size, err)
	}
	return Frame{Buf: buf, pool: p, slot: slot}, nil
}

// AppendFrame appends body to dst with its 4-byte size prefix.
func AppendFrame(dst, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// BeginFrame appends a 4-byte placeholder for a frame size to dst and
// returns the new slice and the placeholder's offset, for use with EndFrame.
func BeginFrame(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0), len(dst)
}

// EndFrame fills the size placeholder at off written by BeginFrame.
func EndFrame(dst []byte, off int) []byte {
	binary.BigEndian.PutUint32(dst[off:], uint32(len(dst)-off-4))
	return dst
}
