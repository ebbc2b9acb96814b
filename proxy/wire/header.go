package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrMalformedHeader is wrapped by every header parse error.
var ErrMalformedHeader = errors.New("malformed request header")

// RequestHeader is a parsed Kafka request header (v0, v1 or v2).
type RequestHeader struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	// ClientID is the client id; HasClientID is false for a null client id
	// or a v0 header.
	ClientID    string
	HasClientID bool
	// Flexible reports whether this request version uses KIP-482 flexible
	// encoding (request header v2, compact body).
	Flexible bool
	// BodyOffset is where the request body starts within the frame body.
	BodyOffset int
	// FutureVersion is set for an ApiVersions request newer than kmsg
	// knows. KIP-511 says such a request must still be answered (with
	// UNSUPPORTED_VERSION and the supported range), so its header is
	// parsed as flexible, as every ApiVersions version from 3 on is.
	FutureVersion bool
}

// versionTable is immutable after construction: for every api key kmsg
// knows, its maximum version and the first flexible version.
type versionTable struct {
	max       [MaxAPIKey + 1]int16 // -1: unknown key
	firstFlex [MaxAPIKey + 1]int16 // -1: never flexible
}

// MaxAPIKey bounds the api keys kguard will ever look up.
const MaxAPIKey = 127

var table = func() *versionTable {
	t := &versionTable{}
	for k := range t.max {
		t.max[k], t.firstFlex[k] = -1, -1
		req := kmsg.RequestForKey(int16(k))
		if req == nil {
			continue
		}
		t.max[k] = req.MaxVersion()
		for v := int16(0); v <= t.max[k]; v++ {
			req.SetVersion(v)
			if req.IsFlexible() {
				t.firstFlex[k] = v
				break
			}
		}
	}
	return t
}()

// KmsgMaxVersion returns the highest version kmsg can encode and decode for
// key, or -1 when kmsg does not know the key.
func KmsgMaxVersion(key int16) int16 {
	if key < 0 || key > MaxAPIKey {
		return -1
	}
	return table.max[key]
}

// Known reports whether kmsg can encode and decode this api key at this
// version, and whether it is flexible there. Unknown keys return ok false.
func Known(key, version int16) (flexible, ok bool) {
	if key < 0 || key > MaxAPIKey || version < 0 || version > table.max[key] {
		return false, false
	}
	ff := table.firstFlex[key]
	return ff >= 0 && version >= ff, true
}

// ParseRequestHeader parses the request header at the start of body (a frame
// without its size prefix). The api key and version must be known to kmsg,
// since the header version depends on them; anything else is an error, and
// such a request must never be forwarded.
func ParseRequestHeader(body []byte) (RequestHeader, error) {
	var h RequestHeader
	if len(body) < 8 {
		return h, fmt.Errorf("%w: %d bytes, need at least 8", ErrMalformedHeader, len(body))
	}
	h.APIKey = int16(binary.BigEndian.Uint16(body[0:]))
	h.APIVersion = int16(binary.BigEndian.Uint16(body[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(body[4:]))
	flexible, ok := Known(h.APIKey, h.APIVersion)
	if !ok && h.APIKey == 18 && h.APIVersion > KmsgMaxVersion(18) {
		flexible, ok, h.FutureVersion = true, true, true
	}
	if !ok {
		return h, fmt.Errorf("%w: api key %d version %d is not supported", ErrMalformedHeader, h.APIKey, h.APIVersion)
	}
	h.Flexible = flexible
	// ControlledShutdown v0 is the only request with header v0; kguard
	// never advertises it, but parse it right all the same.
	if h.APIKey == 7 && h.APIVersion == 0 {
		h.BodyOffset = 8
		return h, nil
	}
	off := 8
	if len(body) < off+2 {
		return h, fmt.Errorf("%w: truncated client id length", ErrMalformedHeader)
	}
	// The client id is a non-compact nullable string even in header v2.
	n := int(int16(binary.BigEndian.Uint16(body[off:])))
	off += 2
	switch {
	case n == -1:
	case n < -1:
		return h, fmt.Errorf("%w: client id length %d", ErrMalformedHeader, n)
	default:
		if len(body) < off+n {
			return h, fmt.Errorf("%w: client id length %d beyond frame", ErrMalformedHeader, n)
		}
		h.ClientID, h.HasClientID = string(body[off:off+n]), true
		off += n
	}
	if flexible {
		end, err := SkipTags(body, off)
		if err != nil {
			return h, fmt.Errorf("%w: header tagged fields: %v", ErrMalformedHeader, err)
		}
		off = end
	}
	h.BodyOffset = off
	return h, nil
}

// Uvarint decodes an unsigned varint at b[off:] and returns it with the
// offset past it.
func Uvarint(b []byte, off int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); shift < 35; shift += 7 {
		if off >= len(b) {
			return 0, off, errors.New("truncated varint")
		}
		c := b[off]
		off++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, off, nil
		}
	}
	return 0, off, errors.New("varint too long")
}

// SkipTags skips a tagged-field section at b[off:] and returns the offset
// past it.
func SkipTags(b []byte, off int) (int, error) {
	n, off, err := Uvarint(b, off)
	if err != nil {
		return off, err
	}
	if n > uint64(len(b)) {
		return off, fmt.Errorf("%d tagged fields in %d bytes", n, len(b))
	}
	for i := uint64(0); i < n; i++ {
		if _, off, err = Uvarint(b, off); err != nil { // tag
			return off, err
		}
		var sz uint64
		if sz, off, err = Uvarint(b, off); err != nil {
			return off, err
		}
		if sz > uint64(len(b)-off) {
			return off, fmt.Errorf("tagged field of %d bytes beyond frame", sz)
		}
		off += int(sz)
	}
	return off, nil
}

// ResponseHeaderFlexible reports whether the response to (key, version) has
// a flexible response header (v1, with tagged fields). ApiVersions responses
// always use header v0 so that any client can parse them.
func ResponseHeaderFlexible(key int16, flexible bool) bool {
	return flexible && key != 18
}

// ParseResponseHeader returns the correlation id of a response body (frame
// without size prefix) and where the response body begins.
func ParseResponseHeader(body []byte, flexibleHeader bool) (corr int32, bodyOff int, err error) {
	if len(body) < 4 {
		return 0, 0, fmt.Errorf("response of %d bytes has no correlation id", len(body))
	}
	corr = int32(binary.BigEndian.Uint32(body))
	off := 4
	if flexibleHeader {
		if off, err = SkipTags(body, off); err != nil {
			return corr, 0, fmt.Errorf("response header tagged fields: %w", err)
		}
	}
	return corr, off, nil
}

// AppendResponse appends a complete response frame (size, header, body) for
// the response message resp answering correlation id corr.
func AppendResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	dst, off := BeginFrame(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if ResponseHeaderFlexible(resp.Key(), resp.IsFlexible()) {
		dst = append(dst, 0) // no header tags
	}
	dst = resp.AppendTo(dst)
	return EndFrame(dst, off)
}

// AppendRequest appends a complete request frame for req (header v1 or v2
// according to its version), as kguard sends its own requests upstream.
func AppendRequest(dst []byte, corr int32, clientID string, req kmsg.Request) []byte {
	dst, off := BeginFrame(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if req.Key() == 7 && req.GetVersion() == 0 { // header v0: no client id
		return EndFrame(req.AppendTo(dst), off)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	if req.IsFlexible() {
		dst = append(dst, 0)
	}
	dst = req.AppendTo(dst)
	return EndFrame(dst, off)
}

// ProduceAcks reads the acks field of a Produce request body (the frame body
// from the header's BodyOffset on) without decoding the rest. A Produce with
// acks 0 gets no response from the broker.
func ProduceAcks(body []byte, version int16, flexible bool) (int16, error) {
	off := 0
	if version >= 3 { // transactional_id, nullable string
		if flexible {
			n, o, err := Uvarint(body, off)
			if err != nil {
				return 0, fmt.Errorf("produce transactional id: %w", err)
			}
			off = o
			if n > uint64(len(body)) {
				return 0, fmt.Errorf("produce transactional id length %d beyond frame", n)
			}
			if n > 0 {
				off += int(n - 1)
			}
		} else {
			if len(body) < 2 {
				return 0, errors.New("produce request truncated before transactional id")
			}
			n := int(int16(binary.BigEndian.Uint16(body)))
			off = 2
			if n > 0 {
				off += n
			}
		}
	}
	if off < 0 || len(body) < off+2 {
		return 0, errors.New("produce request truncated before acks")
	}
	return int16(binary.BigEndian.Uint16(body[off:])), nil
}
