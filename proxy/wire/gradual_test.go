package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
)

// trickle returns a frame prefix announcing size bytes followed by sent
// body bytes, then an error: a client that announced a huge frame and
// stopped sending.
type trickle struct {
	data []byte
	err  error
}

func (t *trickle) Read(b []byte) (int, error) {
	if len(t.data) == 0 {
		return 0, t.err
	}
	n := copy(b, t.data)
	t.data = t.data[n:]
	return n, nil
}

func announce(size int32, sent int) *trickle {
	d := binary.BigEndian.AppendUint32(nil, uint32(size))
	return &trickle{data: append(d, make([]byte, sent)...), err: errors.New("client stalled")}
}

// TestReadFrameGradualAllocatesWhatArrived: a frame that announces 100 MiB
// but delivers 100 KiB costs about 100 KiB, not 100 MiB. The bound is
// what arrived plus a constant (one chunk and bookkeeping).
func TestReadFrameGradualAllocatesWhatArrived(t *testing.T) {
	const sent = 100 << 10
	bound := uint64(sent + 2*EagerFrameBytes + 4<<10)
	for _, tc := range []struct {
		name string
		read func(io.Reader, *Pool, int32) (Frame, error)
	}{{"gradual", ReadFrameGradual}} {
		p := NewPool()
		in := announce(100<<20, sent)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := tc.read(in, p, DefaultMaxFrame)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("%s: stalled frame: %v", tc.name, err)
		}
		got := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: 100 MiB announced, %d KiB sent: %d KiB allocated (bound %d KiB)", tc.name, sent>>10, got>>10, bound>>10)
		if got > bound {
			t.Fatalf("%s: allocated %d bytes for %d that arrived; bound %d", tc.name, got, sent, bound)
		}
	}
}

// TestReadFrameGradualRoundTrip reads frames of every size around the chunk
// boundaries back byte for byte, from a reader that returns one byte at a
// time for some of them.
func TestReadFrameGradualRoundTrip(t *testing.T) {
	p := NewPool()
	var stream []byte
	var bodies [][]byte
	for _, n := range []int{0, 1, EagerFrameBytes - 1, EagerFrameBytes, EagerFrameBytes + 1, 3*EagerFrameBytes - 4, 3 * EagerFrameBytes, 5<<20 + 7} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + n)
		}
		bodies = append(bodies, b)
		stream = AppendFrame(stream, b)
	}
	r := bytes.NewReader(stream)
	for i, want := range bodies {
		f, err := ReadFrameGradual(r, p, 10<<20)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(f.Body(), want) || int(binary.BigEndian.Uint32(f.Buf)) != len(want) {
			t.Fatalf("frame %d (%d bytes): body or prefix differs", i, len(want))
		}
		f.Release()
	}
	if _, err := ReadFrameGradual(r, p, 10<<20); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
	// over the cap: refused before any body byte is read
	cr := &countingReader{r: bytes.NewReader(AppendFrame(nil, make([]byte, 2000)))}
	if _, err := ReadFrameGradual(cr, p, 1000); !errors.Is(err, ErrFrameTooLarge) || cr.n != 4 {
		t.Fatalf("over cap: %v after %d bytes", err, cr.n)
	}
	if _, err := ReadFrameGradual(bytes.NewReader([]byte{0xff, 0, 0, 0}), p, 1000); !errors.Is(err, ErrBadFrameSize) {
		t.Fatalf("negative size: %v", err)
	}
}

// FuzzReadFrameGradual: whatever the bytes, ReadFrameGradual returns the
// same frames as ReadFrame, or an error, never a panic.
func FuzzReadFrameGradual(f *testing.F) {
	f.Add(AppendFrame(nil, []byte("hello")), uint16(1))
	f.Add(AppendFrame(nil, make([]byte, EagerFrameBytes+3)), uint16(100))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(0))
	f.Add([]byte{0, 1, 0, 0, 1, 2}, uint16(5))
	p := NewPool()
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		if int(cut) < len(in) {
			in = in[:len(in)-int(cut)] // truncated streams too
		}
		a, b := bytes.NewReader(in), bytes.NewReader(in)
		for {
			fa, errA := ReadFrame(a, p, 1<<17)
			fb, errB := ReadFrameGradual(b, p, 1<<17)
			if (errA == nil) != (errB == nil) {
				t.Fatalf("ReadFrame error %v, ReadFrameGradual error %v", errA, errB)
			}
			if errA != nil {
				return
			}
			if !bytes.Equal(fa.Buf, fb.Buf) {
				t.Fatalf("frames differ: %d and %d bytes", len(fa.Buf), len(fb.Buf))
			}
			fa.Release()
			fb.Release()
		}
	})
}

// BenchmarkReadFrame compares reading a frame at once (upstream frames)
// with reading it as it arrives (client frames).
func BenchmarkReadFrame(b *testing.B) {
	for _, size := range []int{4 << 10, 256 << 10, 1 << 20, 16 << 20} {
		frame := AppendFrame(nil, make([]byte, size))
		for _, tc := range []struct {
			name string
			read func(io.Reader, *Pool, int32) (Frame, error)
		}{{"eager", ReadFrame}, {"gradual", ReadFrameGradual}} {
			b.Run(fmt.Sprintf("%s/%dKiB", tc.name, size>>10), func(b *testing.B) {
				p := NewPool()
				r := bytes.NewReader(frame)
				b.SetBytes(int64(len(frame)))
				b.ReportAllocs()
				for b.Loop() {
					r.Reset(frame)
					f, err := tc.read(r, p, DefaultMaxFrame)
					if err != nil {
						b.Fatal(err)
					}
					f.Release()
				}
			})
		}
	}
}
