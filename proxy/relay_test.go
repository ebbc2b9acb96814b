package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
)

// relayEnv is a session's responder side over real sockets: the test
// plays the broker on broker and reads what the client gets from client.
type relayEnv struct {
	s      *session
	broker net.Conn // the test writes upstream responses here
	client net.Conn // the test reads what kguard relayed here
}

func newRelayEnv(t testing.TB) *relayEnv {
	t.Helper()
	cfg, err := config.Parse([]byte("listen:\n  bootstrap: 127.0.0.1:0\n  broker_port_base: 39100\n  advertised_host: kguard.test\nupstream:\n  bootstrap: [127.0.0.1:1]\nlimits:\n  max_frame_bytes: 4194304\n  request_timeout: 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{cfg: cfg, log: zap.NewNop(), apis: newRegistry(), pool: wire.NewPool(), metrics: newMetrics(nil),
		nodes: map[int32]string{}, listeners: map[int32]net.Listener{}, closing: true}
	cl, kc := tcpPair(t) // the client, kguard's client side
	ku, br := tcpPair(t) // kguard's upstream side, the broker
	s := &session{p: p, client: kc, up: &upConn{Conn: ku}, log: zap.NewNop(), done: make(chan struct{})}
	s.cw, s.cwRaw = bufio.NewWriterSize(kc, 64<<10), kc
	s.ur = bufio.NewReaderSize(ku, 64<<10)
	return &relayEnv{s: s, broker: br, client: cl}
}

// pendingFor is the pending entry session.handle makes for req (no
// authorizer: the API's rewrite only).
func (e *relayEnv) pendingFor(t testing.TB, req kmsg.Request, corr int32) *pending {
	t.Helper()
	raw := wire.AppendRequest(nil, corr, "relay-test", req)
	f, err := wire.ReadFrame(bytes.NewReader(raw), e.s.p.pool, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := wire.ParseRequestHeader(f.Body())
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := e.s.handle(&hdr, &f)
	if err != nil || p == nil {
		t.Fatalf("handle: %v", err)
	}
	return p
}

// relay runs the responder's relay for p and flushes.
func (e *relayEnv) relay(p *pending) error {
	_, err := e.s.relay(p, nil, &e.s.p.cfg.Limits)
	if err == nil {
		err = e.s.cw.Flush()
	}
	return err
}

// read reads n bytes the client got.
func (e *relayEnv) read(t *testing.T, n int) []byte {
	t.Helper()
	_ = e.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(e.client, b); err != nil {
		t.Fatalf("client read %d bytes: %v", n, err)
	}
	return b
}

func (e *relayEnv) send(t *testing.T, b []byte) {
	t.Helper()
	go func() { _, _ = e.broker.Write(b) }()
}

func fetchReq(v int16) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.SetVersion(v)
	r.ReplicaID, r.SessionEpoch = -1, -1
	return r
}

// Responses kguard does not change are relayed byte for byte, in order,
// whatever their size and however they are split over reads, behind
// bytes already buffered for the client.
func TestRelayCutThroughPipelined(t *testing.T) {
	e := newRelayEnv(t)
	var ps []*pending
	var want []byte
	for i, size := range []int{0, 10, 70 << 10, 1 << 20, 3} {
		p := e.pendingFor(t, fetchReq(11), int32(100+i))
		ps = append(ps, p)
		resp := benchFetchResponse(1, size)
		resp.SetVersion(11)
		want = append(want, e.s.p.appendResponse(nil, p.hdr, resp)...)
	}
	e.send(t, want)
	_, _ = e.s.cw.Write([]byte("earlier"))
	for _, p := range ps {
		if p.rewrite != nil || len(p.transforms) > 0 {
			t.Fatal("fetch v11 without authorization has response transforms")
		}
		if err := e.relay(p); err != nil {
			t.Fatal(err)
		}
	}
	got := e.read(t, len("earlier")+len(want))
	if !bytes.Equal(got, append([]byte("earlier"), want...)) {
		t.Fatal("relayed bytes differ from the broker's")
	}
}

// The client gets the start of a large response while the broker is still
// sending the rest (cut through, not read whole first).
func TestRelayCutThroughStreams(t *testing.T) {
	e := newRelayEnv(t)
	p := e.pendingFor(t, fetchReq(11), 7)
	resp := benchFetchResponse(1, 1<<20)
	resp.SetVersion(11)
	frame := e.s.p.appendResponse(nil, p.hdr, resp)
	if _, err := e.broker.Write(frame[:256<<10]); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- e.relay(p) }()
	first := e.read(t, 128<<10) // arrives before the broker sent the rest
	if !bytes.Equal(first, frame[:128<<10]) {
		t.Fatal("first bytes differ")
	}
	e.send(t, frame[256<<10:])
	rest := e.read(t, len(frame)-128<<10)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, frame[128<<10:]) {
		t.Fatal("rest differs")
	}
}

// fetchFrame is a Fetch v11 response frame answering p, with one
// partition of size bytes of record batches.
func (e *relayEnv) fetchFrame(p *pending, size int) []byte {
	resp := benchFetchResponse(1, size)
	resp.SetVersion(11)
	return e.s.p.appendResponse(nil, p.hdr, resp)
}

// A client that stops reading mid-response for longer than the request
// timeout still gets the whole response: the timeout is the broker's, not the
// client's.
func TestRelaySlowClient(t *testing.T) {
	e := newRelayEnv(t)
	e.s.p.cfg.Limits.RequestTimeout = 150 * time.Millisecond
	e.s.p.cfg.Limits.MaxFrameBytes = 32 << 20
	_ = e.client.(*net.TCPConn).SetReadBuffer(32 << 10)
	_ = e.s.client.(*net.TCPConn).SetWriteBuffer(32 << 10)
	p := e.pendingFor(t, fetchReq(11), 5)
	frame := e.fetchFrame(p, 8<<20)
	e.send(t, frame)
	errc := make(chan error, 1)
	go func() { errc <- e.relay(p) }()
	got := e.read(t, 64<<10)
	time.Sleep(500 * time.Millisecond) // > 3 request timeouts without reading
	got = append(got, e.read(t, len(frame)-len(got))...)
	if err := <-errc; err != nil {
		t.Fatalf("relay to a slow client: %v (session: %v)", err, e.s.reason.Load())
	}
	if !bytes.Equal(got, frame) {
		t.Fatal("relayed bytes differ")
	}
}

// A broker that stops mid-response for longer than the request timeout
// ends the session as an upstream timeout.
func TestRelayBrokerStalls(t *testing.T) {
	e := newRelayEnv(t)
	e.s.p.cfg.Limits.RequestTimeout = 150 * time.Millisecond
	p := e.pendingFor(t, fetchReq(11), 6)
	frame := e.fetchFrame(p, 1<<20)
	e.send(t, frame[:300<<10]) // and then nothing
	go func() { _, _ = io.Copy(io.Discard, e.client) }()
	err := e.relay(p)
	if err == nil {
		t.Fatal("relayed a response the broker never finished")
	}
	if got := e.s.reason.Load(); got != string(endUpstreamTimeout) {
		t.Fatalf("session ended with %v (%v), want %s", got, err, endUpstreamTimeout)
	}
}

// A client gone mid-response ends the session as a client write failure.
func TestRelayClientGone(t *testing.T) {
	e := newRelayEnv(t)
	e.s.p.cfg.Limits.MaxFrameBytes = 32 << 20
	p := e.pendingFor(t, fetchReq(11), 8)
	frame := e.fetchFrame(p, 16<<20)
	e.send(t, frame)
	errc := make(chan error, 1)
	go func() { errc <- e.relay(p) }()
	e.read(t, 64<<10)
	_ = e.client.(*net.TCPConn).SetLinger(0)
	_ = e.client.Close() // reset
	if err := <-errc; err == nil {
		t.Fatal("relayed to a client that is gone")
	}
	if got := e.s.reason.Load(); got != string(endClientWrite) {
		t.Fatalf("session ended with %v, want %s", got, endClientWrite)
	}
}

// A response header longer than the peek (header tagged fields) is read
// whole and relayed all the same.
func TestRelayLongHeader(t *testing.T) {
	e := newRelayEnv(t)
	p := e.pendingFor(t, fetchReq(12), 9) // flexible: response header v1
	resp := benchFetchResponse(1, 200<<10)
	resp.SetVersion(12)
	body := binary.BigEndian.AppendUint32(nil, 9)
	body = append(body, 1, 5, 100) // one header tag (5), 100 bytes
	body = append(body, make([]byte, 100)...)
	body = resp.AppendTo(body)
	frame := wire.AppendFrame(nil, body)
	e.send(t, frame)
	if err := e.relay(p); err != nil {
		t.Fatal(err)
	}
	if got := e.read(t, len(frame)); !bytes.Equal(got, frame) {
		t.Fatal("relayed bytes differ")
	}
}

// A wrong correlation id, an oversized frame and a broker gone mid-frame
// each close the session, and nothing of the bad response reaches the
// client.
func TestRelayCutThroughFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frame  func(e *relayEnv, p *pending) []byte
		reason endReason
	}{
		{"wrong correlation id", func(e *relayEnv, p *pending) []byte {
			r := benchFetchResponse(1, 100)
			r.SetVersion(11)
			h := p.hdr
			h.CorrelationID++
			return e.s.p.appendResponse(nil, h, r)
		}, endBadUpstreamResponse},
		{"over max frame bytes", func(*relayEnv, *pending) []byte {
			return binary.BigEndian.AppendUint32(nil, 5<<20)
		}, endBadUpstreamFrame},
		{"broker gone mid-frame", func(e *relayEnv, p *pending) []byte {
			r := benchFetchResponse(1, 300<<10)
			r.SetVersion(11)
			b := e.s.p.appendResponse(nil, p.hdr, r)
			return b[:200<<10]
		}, endUpstreamClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRelayEnv(t)
			p := e.pendingFor(t, fetchReq(11), 3)
			b := tc.frame(e, p)
			go func() { _, _ = e.broker.Write(b); e.broker.Close() }()
			if err := e.relay(p); err == nil {
				t.Fatal("relayed a bad response")
			}
			if got := e.s.reason.Load(); got != string(tc.reason) {
				t.Fatalf("session ended with %v, want %s", got, tc.reason)
			}
			if tc.reason != endUpstreamClosed {
				_ = e.client.SetReadDeadline(time.Now().Add(time.Second))
				if n, _ := io.ReadFull(e.client, make([]byte, 1)); n > 0 {
					t.Fatal("the client got bytes of a refused response")
				}
			}
		})
	}
}

// readFrame reads one response frame the client got.
func (e *relayEnv) readFrame(t *testing.T) []byte {
	t.Helper()
	size := e.read(t, 4)
	return append(size, e.read(t, int(binary.BigEndian.Uint32(size)))...)
}

// Fetch v16+ and Produce v10+ responses: relayed as their bytes without
// node endpoints, rewritten (kguard's addresses) with them. A Fetch
// response is streamed: its rewritten endpoints keep the broker's length
// (padded), or are dropped when kguard's addresses are longer.
func TestRelayNodeEndpoints(t *testing.T) {
	produce := benchProduce("t")
	produce.SetVersion(11)
	presp := func(host string) kmsg.Response {
		r := kmsg.NewPtrProduceResponse()
		pt := kmsg.NewProduceResponseTopic()
		pt.Topic = "t"
		pt.Partitions = append(pt.Partitions, kmsg.NewProduceResponseTopicPartition())
		r.Topics = append(r.Topics, pt)
		if host != "" {
			b := kmsg.NewProduceResponseBroker()
			b.NodeID, b.Host, b.Port = 2, host, 19092
			r.Brokers = append(r.Brokers, b)
		}
		return r
	}
	fresp := func(host string) kmsg.Response {
		r := benchFetchResponse(2, 100<<10)
		if host != "" {
			b := kmsg.NewFetchResponseBroker()
			b.NodeID, b.Host, b.Port = 2, host, 19092
			r.Brokers = append(r.Brokers, b)
			r.UnknownTags.Set(9, []byte("kept"))
		}
		return r
	}
	for _, tc := range []struct {
		name string
		req  kmsg.Request
		resp func(string) kmsg.Response
		host string // the broker's host in the node endpoints
		want string // kguard's, "" for none
	}{
		{"fetch-v17", fetchReq(17), fresp, "", ""},
		{"fetch-v17-endpoints", fetchReq(17), fresp, "broker-2.internal", "kguard.test"},
		{"fetch-v17-endpoints-same-length", fetchReq(17), fresp, "broker-2.ii", "kguard.test"},
		{"fetch-v17-endpoints-longer", fetchReq(17), fresp, "brk-2", ""},
		{"fetch-v16-endpoints", fetchReq(16), fresp, "broker-2.internal", "kguard.test"},
		{"produce-v11", produce, presp, "", ""},
		{"produce-v11-endpoints", produce, presp, "broker-2.internal", "kguard.test"},
		{"produce-v11-endpoints-longer", produce, presp, "brk-2", "kguard.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRelayEnv(t)
			p := e.pendingFor(t, tc.req, 5)
			if p.rewrite == nil {
				t.Fatal("no node-endpoint rewrite")
			}
			r := tc.resp(tc.host)
			r.SetVersion(tc.req.GetVersion())
			frame := e.s.p.appendResponse(nil, p.hdr, r)
			e.send(t, frame)
			if err := e.relay(p); err != nil {
				t.Fatal(err)
			}
			got := e.readFrame(t)
			if tc.host == "" {
				if !bytes.Equal(got, frame) {
					t.Fatal("a response without node endpoints was changed")
				}
				return
			}
			if strings.Contains(string(got), tc.host) {
				t.Fatal("the upstream broker's host reached the client")
			}
			if tc.req.Key() == 1 && len(got) != len(frame) {
				t.Fatalf("streamed fetch response is %d bytes, the broker's %d", len(got), len(frame))
			}
			dec, err := decodeResponse(p.hdr.APIKey, p.hdr.APIVersion, got[4+4+1:])
			if err != nil {
				t.Fatal(err)
			}
			var brokers []kmsg.FetchResponseBroker
			switch d := dec.(type) {
			case *kmsg.FetchResponse:
				brokers = d.Brokers
				if !bytes.Equal(d.Topics[0].Partitions[1].RecordBatches, r.(*kmsg.FetchResponse).Topics[0].Partitions[1].RecordBatches) {
					t.Fatal("records changed")
				}
				kept := false
				d.UnknownTags.Each(func(k uint32, v []byte) { kept = kept || k == 9 && string(v) == "kept" })
				if !kept {
					t.Fatal("the broker's unknown tagged field was lost")
				}
			case *kmsg.ProduceResponse:
				for _, b := range d.Brokers {
					brokers = append(brokers, kmsg.FetchResponseBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port})
				}
			}
			if tc.want == "" {
				if len(brokers) != 0 {
					t.Fatalf("node endpoints %v, want none (dropped)", brokers)
				}
				return
			}
			if len(brokers) != 1 || brokers[0].Host != tc.want || brokers[0].Port != 39102 {
				t.Fatalf("node endpoints %+v, want node 2 at %s:39102", brokers, tc.want)
			}
		})
	}
}

// A streamed Fetch v17 response reaches the client while the broker is
// still sending it, and one whose structure runs past its frame closes the
// session.
func TestRelayStreamFetch(t *testing.T) {
	e := newRelayEnv(t)
	p := e.pendingFor(t, fetchReq(17), 7)
	resp := benchFetchResponse(3, 300<<10)
	resp.SetVersion(17)
	frame := e.s.p.appendResponse(nil, p.hdr, resp)
	if _, err := e.broker.Write(frame[:256<<10]); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- e.relay(p) }()
	if first := e.read(t, 128<<10); !bytes.Equal(first, frame[:128<<10]) {
		t.Fatal("first bytes differ")
	}
	e.send(t, frame[256<<10:])
	if rest := e.read(t, len(frame)-128<<10); !bytes.Equal(rest, frame[128<<10:]) {
		t.Fatal("rest differs")
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	e = newRelayEnv(t)
	p = e.pendingFor(t, fetchReq(17), 8)
	frame = e.s.p.appendResponse(nil, p.hdr, resp)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4-1000)) // records run past the frame
	go func() { _, _ = e.broker.Write(frame[:len(frame)-1000]); e.broker.Close() }()
	if err := e.relay(p); err == nil {
		t.Fatal("relayed a response whose records run past its frame")
	}
	if got := e.s.reason.Load(); got != string(endBadUpstreamResponse) {
		t.Fatalf("session ended with %v, want %s", got, endBadUpstreamResponse)
	}
}

// FuzzStreamFetch relays fuzzed Fetch v16-18 response bodies through the
// streaming relay and compares with kmsg: a body kmsg decodes is relayed
// (or the session closed for trailing bytes or a malformed structure the
// scanner also refuses), and what the client gets decodes with kmsg to the
// same partitions and records, with node endpoints only at kguard's
// address.
func FuzzStreamFetch(f *testing.F) {
	for _, host := range []string{"", "broker-2.internal", "b"} {
		r := benchFetchResponse(2, 64)
		if host != "" {
			b := kmsg.NewFetchResponseBroker()
			b.NodeID, b.Host, b.Port = 2, host, 19092
			r.Brokers = append(r.Brokers, b)
		}
		r.SetVersion(17)
		f.Add(int16(17), r.AppendTo(nil))
	}
	e := newRelayEnv(f)
	ps := map[int16]*pending{}
	for v := int16(16); v <= 18; v++ {
		ps[v] = e.pendingFor(f, fetchReq(v), 1)
	}
	f.Fuzz(func(t *testing.T, v int16, body []byte) {
		v = 16 + (v&0x7fff)%3
		// A fresh session on the same sockets (a failed relay closes it).
		e := &relayEnv{s: &session{p: e.s.p, client: e.s.client, up: e.s.up, log: e.s.log, done: make(chan struct{})}}
		p := ps[v]
		frame := wire.AppendFrame(nil, append([]byte{0, 0, 0, 1, 0}, body...))
		e.s.ur = bufio.NewReaderSize(bytes.NewReader(frame), 64<<10)
		var out bytes.Buffer
		e.s.cw, e.s.cwRaw = bufio.NewWriterSize(&out, 64<<10), &out
		_, err := e.s.relay(p, nil, &e.s.p.cfg.Limits)
		_ = e.s.cw.Flush()
		up := kmsg.NewPtrFetchResponse()
		up.SetVersion(v)
		if kerr := up.ReadFrom(body); kerr != nil {
			return
		}
		if err != nil {
			if _, serr := wire.NodeEndpointsTag(1, v, body); serr != nil {
				return // trailing bytes kmsg ignores, or tags kmsg skips unread
			}
			t.Fatalf("kmsg decodes the response, the relay fails: %v", err)
		}
		got := out.Bytes()
		if len(got) != len(frame) {
			t.Fatalf("relayed %d bytes of a %d-byte frame", len(got), len(frame))
		}
		dec := kmsg.NewPtrFetchResponse()
		dec.SetVersion(v)
		if err := dec.ReadFrom(got[4+4+1:]); err != nil {
			t.Fatalf("the client's response does not decode: %v", err)
		}
		if len(dec.Topics) != len(up.Topics) {
			t.Fatal("topics differ")
		}
		for i := range up.Topics {
			for j := range up.Topics[i].Partitions {
				if !bytes.Equal(up.Topics[i].Partitions[j].RecordBatches, dec.Topics[i].Partitions[j].RecordBatches) {
					t.Fatal("records differ")
				}
			}
		}
		for _, b := range dec.Brokers {
			if b.Host != "kguard.test" {
				t.Fatalf("node endpoint %s:%d reached the client", b.Host, b.Port)
			}
		}
		// Without a NodeEndpoints tag the bytes are the broker's (an
		// empty one may come out re-encoded and padded).
		if has, _ := wire.NodeEndpointsTag(1, v, body); !has && !bytes.Equal(got, frame) {
			t.Fatal("a response without node endpoints was changed")
		}
	})
}

// The broker's share is observed for responses relayed as they arrive
// (cut through, streamed Fetch) as for ones read whole.
func TestRelayUpstreamLatency(t *testing.T) {
	e := newRelayEnv(t)
	count := func(api string) uint64 {
		var m dto.Metric
		if err := e.s.p.metrics.upLatency.WithLabelValues(api).(prometheus.Histogram).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	for i, v := range []int16{11, 17} { // cut through; streamed with the endpoint rewrite
		p := e.pendingFor(t, fetchReq(v), int32(20+i))
		p.sent = time.Now()
		resp := benchFetchResponse(1, 100<<10)
		resp.SetVersion(v)
		frame := e.s.p.appendResponse(nil, p.hdr, resp)
		e.send(t, frame)
		before := count("Fetch")
		if err := e.relay(p); err != nil {
			t.Fatal(err)
		}
		e.read(t, len(frame))
		if got := count("Fetch") - before; got != 1 {
			t.Fatalf("fetch v%d: %d upstream latency samples, want 1", v, got)
		}
	}
}
