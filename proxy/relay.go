package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
)

// stream copies the bytes of one upstream response frame to the client as
// they arrive, through small reads of its structure where the caller
// needs them. Memory is the session's two buffers whatever the frame's
// size. Whatever is buffered for the client is flushed before waiting for
// the broker, and the broker's read deadline is renewed then, so a long
// transfer to a slow client is not an upstream timeout.
type stream struct {
	s       *session
	p       *pending
	timeout time.Duration
	left    int // bytes of the frame not yet read
}

// errStreamMalformed is a response whose structure runs past its frame.
var errStreamMalformed = errors.New("response structure runs past its frame")

// wait makes n bytes available in the upstream reader (n at most its
// buffer size and the bytes left).
func (st *stream) wait(n int) ([]byte, error) {
	if n > st.left {
		return nil, fmt.Errorf("%w: %d bytes needed, %d left", errStreamMalformed, n, st.left)
	}
	s := st.s
	if s.ur.Buffered() < n {
		// About to wait for the broker: what is buffered goes to the
		// client now, and the broker gets a fresh deadline.
		if err := s.cw.Flush(); err != nil {
			return nil, clientWriteError{err}
		}
		_ = s.up.SetReadDeadline(time.Now().Add(st.timeout))
	}
	b, err := s.ur.Peek(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// streamChunk is the most a stream reads from the broker at once into a
// pooled buffer, past the upstream read buffer: as large reads as reading
// the frame whole, with memory bounded per response being relayed (the
// buffer goes back to the pool when the response is through).
const streamChunk = 1 << 20

// pass copies the next n bytes of the frame to the client. What the
// upstream reader has buffered goes first; a large remainder is read
// straight into a pooled chunk (one copy in, one out, large syscalls),
// each read written to the client before the next.
func (st *stream) pass(n int) error {
	if n > st.left || n < 0 {
		return fmt.Errorf("%w: %d bytes to pass, %d left", errStreamMalformed, n, st.left)
	}
	s := st.s
	for n > 0 {
		if s.ur.Buffered() == 0 && n >= s.ur.Size() && s.cwRaw != nil {
			m, err := st.direct(n)
			n -= m
			if err != nil {
				return err
			}
			continue
		}
		if _, err := st.wait(1); err != nil {
			return err
		}
		chunk, _ := s.ur.Peek(min(n, s.ur.Buffered()))
		if err := st.write(chunk); err != nil {
			return err
		}
		_, _ = s.ur.Discard(len(chunk))
		n -= len(chunk)
		st.left -= len(chunk)
	}
	return nil
}

// direct reads up to n bytes (n at least the upstream reader's buffer
// size, which is empty) into a pooled chunk and writes them to the client.
func (st *stream) direct(n int) (int, error) {
	s := st.s
	if err := s.cw.Flush(); err != nil {
		return 0, clientWriteError{err}
	}
	buf, slot := s.p.pool.Get(min(n, streamChunk))
	if slot != nil {
		defer s.p.pool.Put(slot)
	}
	_ = s.up.SetReadDeadline(time.Now().Add(st.timeout))
	m, err := s.ur.Read(buf) // empty buffer, large read: straight from the socket
	st.left -= m
	if m > 0 {
		if _, werr := s.cwRaw.Write(buf[:m]); werr != nil {
			return m, clientWriteError{werr}
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return m, err
	}
	return m, nil
}

// write sends chunk to the client: a large one past the client buffer
// (one copy less of every byte of a large response), a small one through
// it.
func (st *stream) write(chunk []byte) error {
	s := st.s
	w := io.Writer(s.cw)
	if s.cwRaw != nil && len(chunk) >= directWriteMin {
		if err := s.cw.Flush(); err != nil {
			return clientWriteError{err}
		}
		w = s.cwRaw
	}
	if _, err := w.Write(chunk); err != nil {
		return clientWriteError{err}
	}
	return nil
}

// uvarint reads an unsigned varint and passes it on.
func (st *stream) uvarint() (uint64, error) {
	b, err := st.wait(min(5, st.left))
	if err != nil {
		return 0, err
	}
	v, n, err := wire.Uvarint(b, 0)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errStreamMalformed, err)
	}
	return v, st.pass(n)
}

// compact passes a compact (nullable) string or bytes, returning its
// length (-1: null).
func (st *stream) compact() error {
	n, err := st.uvarint()
	if err != nil || n == 0 {
		return err
	}
	if n-1 > uint64(st.left) {
		return fmt.Errorf("%w: %d-byte field", errStreamMalformed, n-1)
	}
	return st.pass(int(n - 1))
}

// count passes a compact array length and returns the number of entries
// (each at least minEntry bytes: a bogus count fails at once).
func (st *stream) count(minEntry int) (int, error) {
	n, err := st.uvarint()
	if err != nil || n == 0 {
		return 0, err
	}
	if n-1 > uint64(st.left/minEntry) {
		return 0, fmt.Errorf("%w: array of %d entries", errStreamMalformed, n-1)
	}
	return int(n - 1), nil
}

// tags passes a tagged-field section.
func (st *stream) tags() error {
	n, err := st.uvarint()
	for i := uint64(0); i < n && err == nil; i++ {
		if _, err = st.uvarint(); err != nil {
			break
		}
		var size uint64
		if size, err = st.uvarint(); err == nil {
			if size > uint64(st.left) {
				return fmt.Errorf("%w: %d-byte tagged field", errStreamMalformed, size)
			}
			err = st.pass(int(size))
		}
	}
	return err
}

// clientWriteError is a failed write to the client (not the broker's
// fault).
type clientWriteError struct{ err error }

func (e clientWriteError) Error() string { return "client write: " + e.err.Error() }
func (e clientWriteError) Unwrap() error { return e.err }

// maxStreamTail caps the top-level tagged fields of a streamed response
// kguard holds to rewrite (node endpoints: tens of bytes per broker).
const maxStreamTail = 1 << 20

// streamFetch relays a flexible Fetch response whose only change is the
// KIP-951 node-endpoint rewrite, cut through: the partitions and their
// records are streamed as they arrive; the top-level tagged fields, at the
// end, are held and, when they carry node endpoints, rewritten. The frame
// size went out first, so the rewritten section must keep its length:
// endpoints that come out shorter are padded with an unknown tagged field
// (clients skip those); ones that would not fit are dropped, and the
// client, seeing a new leader it has no address for, refreshes its
// metadata as before KIP-951. Upstream addresses never reach the client.
// done is false (nothing consumed) when the header does not fit
// cutThroughPeek: the caller reads the frame whole.
func (s *session) streamFetch(p *pending, limits *config.Limits, scratch []byte) (out []byte, done bool, err error) {
	st, ok, err := s.streamHead(p, limits)
	if err != nil || !ok {
		return scratch, err != nil, err
	}
	err = st.fetchBody(p.hdr.APIVersion)
	if err == nil {
		scratch, err = st.fetchTail(scratch)
	}
	return scratch, true, st.failed(err)
}

// streamHead checks the size and header of the next upstream response
// (which answers p) and returns the stream positioned after the header,
// the header already passed to the client. ok false without error: the
// header does not fit cutThroughPeek, nothing was consumed.
func (s *session) streamHead(p *pending, limits *config.Limits) (st stream, ok bool, err error) {
	szb, err := s.ur.Peek(4)
	if err != nil {
		s.upstreamReadFailed(p, err)
		return st, false, err
	}
	size := int32(binary.BigEndian.Uint32(szb))
	if size < 0 || size > limits.MaxFrameBytes {
		err := fmt.Errorf("%w: upstream response of %d bytes (limit %d)", wire.ErrFrameTooLarge, size, limits.MaxFrameBytes)
		s.fail(endBadUpstreamFrame, err)
		return st, false, err
	}
	head, err := s.ur.Peek(4 + min(int(size), cutThroughPeek-4))
	if err != nil {
		s.upstreamReadFailed(p, err)
		return st, false, err
	}
	flexHdr := wire.ResponseHeaderFlexible(p.hdr.APIKey, p.hdr.Flexible)
	if _, _, herr := wire.ParseResponseHeader(head[4:], flexHdr); herr != nil && len(head) < int(size)+4 {
		return st, false, nil // a header longer than the peek: read it whole
	}
	off, err := s.responseHeader(p, head[4:])
	if err != nil {
		return st, false, err
	}
	s.p.metrics.bytesOut.Add(float64(size) + 4)
	st = stream{s: s, p: p, timeout: limits.RequestTimeout, left: int(size) + 4}
	return st, true, st.failed(st.pass(4 + off))
}

// failed ends the session for a stream error (logged once) and returns it.
func (st *stream) failed(err error) error {
	if err == nil {
		return nil
	}
	s := st.s
	var cw clientWriteError
	switch {
	case errors.As(err, &cw):
		s.fail(endClientWrite, cw.err)
	case errors.Is(err, errStreamMalformed):
		s.fail(endBadUpstreamResponse, err, zap.Int16("api_key", st.p.hdr.APIKey))
	default:
		s.upstreamReadFailed(st.p, err)
	}
	return err
}

// fetchBody passes a flexible Fetch response up to its top-level tagged
// fields (the layout wire.NodeEndpointsTag scans).
func (st *stream) fetchBody(version int16) error {
	if err := st.pass(4 + 2 + 4); err != nil { // throttle, error code, session id
		return err
	}
	topics, err := st.count(2)
	for range topics {
		if err != nil {
			return err
		}
		if version >= 13 {
			err = st.pass(16)
		} else {
			err = st.compact()
		}
		var parts int
		if err == nil {
			parts, err = st.count(37)
		}
		for range parts {
			if err == nil {
				err = st.fetchPartition()
			}
		}
		if err == nil {
			err = st.tags()
		}
	}
	return err
}

// fetchPartition passes one partition of a flexible Fetch response.
func (st *stream) fetchPartition() error {
	// partition, error code, high watermark, last stable offset, log
	// start offset
	if err := st.pass(4 + 2 + 8 + 8 + 8); err != nil {
		return err
	}
	aborted, err := st.count(17)
	for range aborted {
		if err == nil {
			err = st.pass(8 + 8)
		}
		if err == nil {
			err = st.tags()
		}
	}
	if err == nil {
		err = st.pass(4) // preferred read replica
	}
	if err == nil {
		err = st.compact() // records
	}
	if err == nil {
		err = st.tags() // DivergingEpoch, CurrentLeader, SnapshotID
	}
	return err
}

// fetchTail reads the rest of the frame (the top-level tagged fields),
// rewrites node endpoints in it at the same length, and passes it on.
func (st *stream) fetchTail(scratch []byte) ([]byte, error) {
	if st.left > maxStreamTail {
		return scratch, fmt.Errorf("%w: %d bytes of top-level tagged fields", errStreamMalformed, st.left)
	}
	tail := scratch[:0]
	for st.left > 0 {
		b, err := st.wait(min(st.left, st.s.ur.Size()))
		if err != nil {
			return scratch, err
		}
		tail = append(tail, b...)
		_, _ = st.s.ur.Discard(len(b))
		st.left -= len(b)
	}
	out, err := st.s.rewriteTail(st.p, tail)
	if err != nil {
		return tail, fmt.Errorf("%w: top-level tagged fields: %v", errStreamMalformed, err)
	}
	if _, err := st.s.cw.Write(out); err != nil {
		return tail, clientWriteError{err}
	}
	return tail, nil
}

// padTag is the tagged field that pads rewritten node endpoints to the
// length the broker's had (no Kafka message defines it; clients skip
// unknown tags).
const padTag = 0x3fff

// rewriteTail returns the top-level tagged fields of a flexible Fetch
// response with p's node-endpoint rewrite applied, at exactly their
// original length (see streamFetch). A section without node endpoints is
// returned as it is.
func (s *session) rewriteTail(p *pending, tail []byte) ([]byte, error) {
	has, err := wire.TagsHaveNodeEndpoints(tail)
	if err != nil || !has {
		return tail, err
	}
	// A Fetch response with no topics and these tagged fields, decoded
	// and rewritten as any other (the API's rewrite).
	const prefix = 4 + 2 + 4 + 1 // throttle, error code, session id, no topics
	body := append(make([]byte, prefix-1, prefix+len(tail)), 1)
	body = append(body, tail...)
	resp, err := decodeResponse(p.hdr.APIKey, p.hdr.APIVersion, body)
	if err != nil {
		return nil, err
	}
	fr, ok := resp.(*kmsg.FetchResponse)
	if !ok || p.rewrite == nil {
		return nil, errors.New("not a fetch response")
	}
	if _, err := p.rewrite(resp); err != nil {
		return nil, err
	}
	orig := tagsOf(&fr.UnknownTags)
	enc := func() []byte { return fr.AppendTo(nil)[prefix:] }
	out := enc()
	if len(out) == len(tail) {
		return out, nil
	}
	if len(out) > len(tail) || !padTo(fr, orig, len(tail), enc) {
		// The rewritten endpoints do not fit: none, padded.
		s.log.Info("fetch response node endpoints dropped: kguard's addresses are longer than the broker's", zap.Int("brokers", len(fr.Brokers)))
		fr.Brokers = nil
		if !padTo(fr, orig, len(tail), enc) {
			return nil, errors.New("cannot keep the length of the node endpoints")
		}
	}
	return enc(), nil
}

// tagKV is one unknown tagged field.
type tagKV struct {
	key uint32
	val []byte
}

func tagsOf(t *kmsg.Tags) []tagKV {
	var out []tagKV
	t.Each(func(k uint32, v []byte) { out = append(out, tagKV{k, v}) })
	return out
}

// padTo sets fr's unknown tags to orig plus the pad tag sized so that
// enc's output is n bytes long, reporting whether it could (if not, fr
// has orig alone).
func padTo(fr *kmsg.FetchResponse, orig []tagKV, n int, enc func() []byte) bool {
	set := func(pad []byte) {
		fr.UnknownTags = kmsg.Tags{}
		for _, t := range orig {
			fr.UnknownTags.Set(t.key, t.val)
		}
		if pad != nil {
			fr.UnknownTags.Set(padTag, pad)
		}
	}
	set(nil)
	start := n - len(enc()) - 3 // the pad tag's number and size take 3 bytes or more
	for size := start; size >= 0 && size > start-6; size-- {
		set(make([]byte, size))
		if len(enc()) == n {
			return true
		}
	}
	set(nil)
	return false
}
