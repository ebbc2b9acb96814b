package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/kguard/kguard/proxy/wire"
)

// TestWriteForwardSegments: a frame encoded in segments reaches the
// upstream byte for byte after what was buffered before it, over TCP
// (writev) and over a connection that is not a *net.TCPConn (through the
// buffered writer, as TLS).
func TestWriteForwardSegments(t *testing.T) {
	big := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	head := []byte("0123456789abcdefghij")
	segs := []wire.Segment{{At: 0, Data: big('A', 3)}, {At: 5, Data: big('B', 200<<10)}, {At: 5, Data: big('C', 70<<10)}, {At: 12, Data: big('D', 1)}}
	f := wire.Segmented{Head: head, Segs: segs}
	want := append([]byte("earlier request;"), bytes.Join(f.Buffers(nil), nil)...)
	want = append(want, "later request"...)

	pipes := map[string]func(t *testing.T) (net.Conn, net.Conn){
		"tcp":  func(t *testing.T) (net.Conn, net.Conn) { return tcpPair(t) },
		"pipe": func(*testing.T) (net.Conn, net.Conn) { return net.Pipe() },
	}
	for name, mk := range pipes {
		t.Run(name, func(t *testing.T) {
			c, srv := mk(t)
			defer c.Close()
			defer srv.Close()
			got := make(chan []byte, 1)
			go func() { b, _ := io.ReadAll(srv); got <- b }()
			s := &session{uw: bufio.NewWriterSize(c, 64<<10), up: &upConn{Conn: c}}
			s.uw.WriteString("earlier request;")
			s.fwdSegs = append(s.fwdSegs, segs...)
			if err := s.writeForward(head); err != nil {
				t.Fatal(err)
			}
			s.fwdSegs = s.fwdSegs[:0]
			if err := s.writeForward([]byte("later request")); err != nil {
				t.Fatal(err)
			}
			if err := s.uw.Flush(); err != nil {
				t.Fatal(err)
			}
			c.Close()
			if b := <-got; !bytes.Equal(b, want) {
				t.Fatalf("upstream got %d bytes, want %d (or out of order)", len(b), len(want))
			}
		})
	}
}
