package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
)

// loopReader serves the same bytes over and over (an upstream that keeps
// answering with one response).
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

// relayBench is a session whose upstream answers resp to every request and
// whose client discards what it gets, for the responder's relay alone.
func relayBench(b testing.TB, req kmsg.Request, resp kmsg.Response) (*session, *pending) {
	b.Helper()
	cfg, err := config.Parse([]byte("upstream:\n  bootstrap: [127.0.0.1:1]\n"))
	if err != nil {
		b.Fatal(err)
	}
	p := &Proxy{cfg: cfg, log: zap.NewNop(), apis: newRegistry(), pool: wire.NewPool(), metrics: newMetrics(nil)}
	// TCP, not net.Pipe: the relay sets read deadlines, which cost
	// net.Pipe an allocation each and a socket nothing.
	c1, c2 := tcpPair(b)
	raw := wire.AppendRequest(nil, 7, "bench-client", req)
	f, err := wire.ReadFrame(bytes.NewReader(raw), p.pool, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	hdr, err := wire.ParseRequestHeader(f.Body())
	if err != nil {
		b.Fatal(err)
	}
	s := &session{p: p, client: c1, up: &upConn{Conn: c2}, log: zap.NewNop(), uw: bufio.NewWriter(io.Discard)}
	pend, _, err := s.handle(&hdr, &f)
	if err != nil || pend == nil {
		b.Fatalf("handle: %v", err)
	}
	resp.SetVersion(req.GetVersion())
	frame := p.appendResponse(nil, hdr, resp)
	s.ur = bufio.NewReaderSize(&loopReader{b: frame}, 64<<10)
	s.cw, s.cwRaw = bufio.NewWriterSize(io.Discard, 64<<10), io.Discard
	return s, pend
}

// benchFetchResponse is a Fetch response with parts partitions of size
// bytes of (opaque) record batches each.
func benchFetchResponse(parts, size int) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	t := kmsg.NewFetchResponseTopic()
	t.Topic, t.TopicID = "bench", [16]byte{1}
	for i := range parts {
		p := kmsg.NewFetchResponseTopicPartition()
		p.Partition, p.HighWatermark = int32(i), 1000
		p.RecordBatches = make([]byte, size)
		rand.Read(p.RecordBatches)
		t.Partitions = append(t.Partitions, p)
	}
	resp.Topics = append(resp.Topics, t)
	return resp
}

// BenchmarkRelay measures the responder relaying one upstream response to
// the client: a 1 MiB Fetch response with no change (v11) and with only
// the KIP-951 node-endpoint rewrite to check (v17), and a Produce v11
// response (node-endpoint rewrite only).
func BenchmarkRelay(b *testing.B) {
	fetch := func(v int16) kmsg.Request {
		r := benchFetch("bench")
		r.SetVersion(v)
		return r
	}
	produce := benchProduce("bench")
	produce.SetVersion(11)
	presp := kmsg.NewPtrProduceResponse()
	pt := kmsg.NewProduceResponseTopic()
	pt.Topic = "bench"
	pp := kmsg.NewProduceResponseTopicPartition()
	pp.BaseOffset = 42
	pt.Partitions = append(pt.Partitions, pp)
	presp.Topics = append(presp.Topics, pt)
	for _, bc := range []struct {
		name string
		req  kmsg.Request
		resp kmsg.Response
	}{
		{"fetch-v11-1MiB", fetch(11), benchFetchResponse(6, 170<<10)},
		{"fetch-v17-1MiB", fetch(17), benchFetchResponse(6, 170<<10)},
		{"produce-v11", produce, presp},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, p := relayBench(b, bc.req, bc.resp)
			limits := &s.p.cfg.Limits
			var scratch []byte
			var err error
			size := int64(len(s.p.appendResponse(nil, p.hdr, bc.resp)))
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if scratch, err = s.relay(p, scratch[:0], limits); err != nil {
					b.Fatal(fmt.Errorf("relay: %w", err))
				}
			}
		})
	}
}

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(b testing.TB) (net.Conn, net.Conn) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c2, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c1.Close(); c2.Close() })
	return c1, c2
}
