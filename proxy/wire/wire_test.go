package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestReadFrameRoundTrip(t *testing.T) {
	p := NewPool()
	var stream []byte
	bodies := [][]byte{{}, []byte("x"), bytes.Repeat([]byte("a"), 5000), bytes.Repeat([]byte("b"), 5<<20)}
	for _, b := range bodies {
		stream = AppendFrame(stream, b)
	}
	r := bytes.NewReader(stream)
	for i, want := range bodies {
		f, err := ReadFrame(r, p, 10<<20)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(f.Body(), want) {
			t.Fatalf("frame %d: body differs (len %d want %d)", i, len(f.Body()), len(want))
		}
		if got := binary.BigEndian.Uint32(f.Buf); int(got) != len(want) {
			t.Fatalf("frame %d: prefix %d", i, got)
		}
		f.Release()
	}
	if _, err := ReadFrame(r, p, 10<<20); !errors.Is(err, io.EOF) {
		t.Fatalf("after last frame: %v, want EOF", err)
	}
}

func TestReadFrameRejectsBadSizes(t *testing.T) {
	p := NewPool()
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"negative", []byte{0xff, 0xff, 0xff, 0xfe}, ErrBadFrameSize},
		{"over cap", []byte{0x10, 0, 0, 0}, ErrFrameTooLarge},
		{"truncated body", []byte{0, 0, 0, 9, 1, 2}, io.ErrUnexpectedEOF},
		{"truncated size", []byte{0, 0}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tc.in), p, 1<<20)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// A frame over the cap must be refused before its body is read, so a
// hostile size cannot make kguard allocate or wait for it.
func TestReadFrameOverCapReadsNoBody(t *testing.T) {
	r := &countingReader{r: bytes.NewReader(append([]byte{0x7f, 0xff, 0xff, 0xff}, make([]byte, 100)...))}
	if _, err := ReadFrame(r, NewPool(), 1<<20); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v", err)
	}
	if r.n != 4 {
		t.Fatalf("read %d bytes, want only the 4-byte size", r.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

// Every request kmsg can encode, at every version, must parse back to the
// same header fields and body offset.
func TestParseRequestHeaderAllKeysAllVersions(t *testing.T) {
	n := 0
	for key := int16(0); key <= MaxAPIKey; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			for _, cid := range []string{"", "client-ü"} {
				frame := AppendRequest(nil, 12345, cid, req)
				body := frame[4:]
				h, err := ParseRequestHeader(body)
				if err != nil {
					t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), v, err)
				}
				wantCID := cid
				if key == 7 && v == 0 {
					wantCID = "" // header v0 has no client id
				}
				if h.APIKey != key || h.APIVersion != v || h.CorrelationID != 12345 || h.ClientID != wantCID || h.Flexible != req.IsFlexible() {
					t.Fatalf("%s v%d: parsed %+v", kmsg.NameForKey(key), v, h)
				}
				fresh := kmsg.RequestForKey(key)
				fresh.SetVersion(v)
				if err := fresh.ReadFrom(body[h.BodyOffset:]); err != nil {
					t.Fatalf("%s v%d: body at offset %d does not decode: %v", kmsg.NameForKey(key), v, h.BodyOffset, err)
				}
				n++
			}
		}
	}
	if n < 500 {
		t.Fatalf("only %d key/version pairs checked", n)
	}
}

func TestParseRequestHeaderErrors(t *testing.T) {
	hdr := func(key, version int16, rest ...byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 7)
		return append(b, rest...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"short", []byte{0, 1, 0}},
		{"unknown key", hdr(30000, 0, 0, 0)},
		{"negative key", hdr(-1, 0, 0, 0)},
		{"version too new", hdr(3, 999, 0, 0)},
		{"negative version", hdr(3, -1, 0, 0)},
		{"no client id", hdr(3, 1)},
		{"client id beyond frame", hdr(3, 1, 0, 50, 'a')},
		{"client id length < -1", hdr(3, 1, 0xff, 0xfe)},
		{"flexible, missing tags", hdr(3, 12, 0xff, 0xff)},
		{"flexible, tag beyond frame", hdr(3, 12, 0xff, 0xff, 1, 0, 9)},
		{"flexible, endless varint", hdr(3, 12, 0xff, 0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseRequestHeader(tc.in); !errors.Is(err, ErrMalformedHeader) {
				t.Fatalf("got %v, want ErrMalformedHeader", err)
			}
		})
	}
}

func TestProduceAcks(t *testing.T) {
	for v := int16(0); v <= KmsgMaxVersion(0); v++ {
		for _, acks := range []int16{0, 1, -1} {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(v)
			req.Acks = acks
			if v >= 3 {
				req.TransactionID = kmsg.StringPtr("txn-id")
			}
			frame := AppendRequest(nil, 1, "c", req)
			h, err := ParseRequestHeader(frame[4:])
			if err != nil {
				t.Fatal(err)
			}
			got, err := ProduceAcks(frame[4+h.BodyOffset:], v, h.Flexible)
			if err != nil || got != acks {
				t.Fatalf("v%d acks %d: got %d, %v", v, acks, got, err)
			}
		}
	}
	if _, err := ProduceAcks([]byte{0x7f}, 9, true); err == nil {
		t.Fatal("truncated flexible produce: no error")
	}
	if _, err := ProduceAcks([]byte{0, 50, 1}, 3, false); err == nil {
		t.Fatal("transactional id beyond frame: no error")
	}
}

func TestResponseHeader(t *testing.T) {
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(12)
	frame := AppendResponse(nil, 99, resp)
	corr, off, err := ParseResponseHeader(frame[4:], true)
	if err != nil || corr != 99 {
		t.Fatalf("corr %d err %v", corr, err)
	}
	back := kmsg.NewPtrMetadataResponse()
	back.SetVersion(12)
	if err := back.ReadFrom(frame[4+off:]); err != nil {
		t.Fatal(err)
	}
	// ApiVersions always uses response header v0, even when flexible.
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(3)
	frame = AppendResponse(nil, 5, av)
	if _, off, _ := ParseResponseHeader(frame[4:], ResponseHeaderFlexible(18, true)); off != 4 {
		t.Fatalf("ApiVersions response body at %d, want 4", off)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, []byte("hello")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 1})
	p := NewPool()
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			fr, err := ReadFrame(r, p, 1<<16)
			if err != nil {
				return
			}
			if len(fr.Buf) < 4 || int(binary.BigEndian.Uint32(fr.Buf)) != len(fr.Body()) {
				t.Fatalf("frame prefix %x does not match body length %d", fr.Buf[:4], len(fr.Body()))
			}
			fr.Release()
		}
	})
}

func FuzzParseRequestHeader(f *testing.F) {
	for _, req := range []kmsg.Request{kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest(), kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrFetchRequest()} {
		for _, v := range []int16{0, 1, req.MaxVersion()} {
			req.SetVersion(v)
			f.Add(AppendRequest(nil, 1, "fuzz", req)[4:])
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ParseRequestHeader(in)
		if err != nil {
			return
		}
		if h.BodyOffset < 8 || h.BodyOffset > len(in) {
			t.Fatalf("body offset %d outside [8, %d]", h.BodyOffset, len(in))
		}
		if _, ok := Known(h.APIKey, h.APIVersion); !ok && !h.FutureVersion {
			t.Fatalf("accepted unknown key %d v%d", h.APIKey, h.APIVersion)
		}
		if h.APIKey == 0 {
			_, _ = ProduceAcks(in[h.BodyOffset:], h.APIVersion, h.Flexible)
		}
	})
}
