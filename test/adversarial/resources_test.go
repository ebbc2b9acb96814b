package adversarial_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
)

// Issue 10 findings 4 (unauthenticated clients hold resources), 5
// (decompression memory) and 12 (batch sanity).

// procKiB reads a "VmRSS"/"VmHWM" figure of kguard's process, in KiB.
func (s *stack) procKiB(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading kguard's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

// clientCloseEvent matches the connection.close event of the connection from
// client with reason.
func clientCloseEvent(client, reason string) func(audit.Event) bool {
	return func(ev audit.Event) bool {
		return ev.Type == audit.EventConnectionClose && ev.Where.Client == client && ev.Details["reason"] == reason
	}
}

// dialFrom connects to addr from a loopback source address of its own, so
// a case can play several client hosts.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stillOpen reports whether kguard keeps c open for wait.
func stillOpen(c net.Conn, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	_, err := c.Read(b[:])
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestPreAuthHugeFrames: before login a frame may be at most 512 KiB.
// Sockets announcing 100 MiB are closed at once (nothing allocated);
// sockets announcing 500 KiB and stalling cost what they sent; logged-in
// sockets announcing 100 MiB and stalling cost what they sent too.
func TestPreAuthHugeFrames(t *testing.T) {
	s := fresh(t, stackOpts{})
	a := attack(t, s, "unauthenticated sockets announcing huge frames")
	rss0 := s.procKiB(t, "VmRSS")
	var clients []string
	for range 6 {
		rc, err := dialRaw(s.bootstrap)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.close()
		if err := rc.write(binary.BigEndian.AppendUint32(nil, 100<<20)); err != nil {
			t.Fatal(err)
		}
		if !rc.closedByPeer(5 * time.Second) {
			t.Fatal("a pre-auth socket announcing a 100 MiB frame was kept open")
		}
		clients = append(clients, rc.c.LocalAddr().String())
	}
	a.Sent("6 unauthenticated sockets, each a 100 MiB frame size and nothing more")
	a.Got("each closed at once")
	ev := s.waitAudit(t, "closing the pre-auth socket", clientCloseEvent(clients[0], "bad frame"))
	a.Got("audited: connection.close %s reason %q", ev.Where.Client, ev.Details["reason"])

	stall := func(login bool, size int) {
		for range 6 {
			rc, err := dialRaw(s.bootstrap)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(rc.close)
			if login {
				if err := rc.login(acme, s.passwords[acme]); err != nil {
					t.Fatal(err)
				}
			}
			frame := binary.BigEndian.AppendUint32(nil, uint32(size))
			if err := rc.write(append(frame, make([]byte, 1<<10)...)); err != nil {
				t.Fatal(err)
			}
		}
	}
	stall(false, 500<<10)
	stall(true, 100<<20)
	time.Sleep(time.Second)
	grew := s.procKiB(t, "VmRSS") - rss0
	a.Sent("6 unauthenticated sockets announcing 500 KiB and 6 logged-in ones announcing 100 MiB, 1 KiB sent each, then silence")
	a.Got("kguard's RSS grew by %d KiB", grew)
	// Before: 6 x 100 MiB were allocated up front (51 -> 627 MiB).
	if grew > 32<<10 {
		t.Fatalf("kguard's RSS grew by %d MiB for 12 stalled frames", grew>>10)
	}
}

// TestIdleSocketsCannotLockOut: 80 sockets that never log in, against
// max_connections 64. From one host they get at most 8 login slots; from
// many hosts at most 32 (half of max_connections) and only until the login
// deadline; none of them makes kguard open an upstream connection; the
// canary (attack's check) still logs in and works.
func TestIdleSocketsCannotLockOut(t *testing.T) {
	s := fresh(t, stackOpts{limits: "  max_connections: 64\n  login_timeout: 4s\n"})
	var dials atomic.Int64
	s.cluster.ControlKey(18, func(req kmsg.Request) (kmsg.Response, error, bool) {
		s.cluster.KeepControl()
		if req.(*kmsg.ApiVersionsRequest).ClientSoftwareName == "kguard" {
			dials.Add(1)
		}
		return nil, nil, false
	})
	a := attack(t, s, "idle unauthenticated sockets")
	held := 0
	var conns []net.Conn
	for range 80 {
		c := dialFrom(t, "127.0.0.2", s.bootstrap)
		conns = append(conns, c)
	}
	for _, c := range conns {
		if stillOpen(c, 50*time.Millisecond) {
			held++
		}
	}
	a.Sent("80 sockets from 127.0.0.2 that never log in (max_connections 64)")
	a.Got("%d kept open", held)
	if held > 8 {
		t.Fatalf("one host holds %d unauthenticated sockets, limit 8", held)
	}
	if n := dials.Load(); n != 0 {
		t.Fatalf("unauthenticated sockets made kguard open %d upstream connections", n)
	}
	if err := s.canaryRoundTrip(); err != nil {
		t.Fatalf("the canary is locked out by one host's idle sockets: %v", err)
	}
	a.Got("the canary logs in and round-trips a record")
	canaryDials := dials.Load()
	many := 0
	for h := 3; h < 13; h++ {
		for range 8 {
			c := dialFrom(t, fmt.Sprintf("127.0.0.%d", h), s.bootstrap)
			if stillOpen(c, 20*time.Millisecond) {
				many++
			}
		}
	}
	a.Sent("80 more from 10 hosts, 8 each")
	a.Got("%d kept open (with the first host's, at most 32 logging in)", many)
	if held+many > 32 {
		t.Fatalf("%d unauthenticated sockets held, limit 32", held+many)
	}
	if n := dials.Load() - canaryDials; n != 0 {
		t.Fatalf("unauthenticated sockets made kguard open %d upstream connections", n)
	}
	a.Got("upstream connections opened for the 160 sockets: 0 (the canary's login: %d)", canaryDials)
	// every held socket is dropped at the login deadline
	first := conns[0]
	for _, c := range conns {
		if stillOpen(c, 10*time.Millisecond) {
			first = c
			break
		}
	}
	start := time.Now()
	if stillOpen(first, 8*time.Second) {
		t.Fatal("an unauthenticated socket outlived the 4s login deadline")
	}
	a.Got("held sockets closed at the login deadline (after %v more)", time.Since(start).Round(100*time.Millisecond))
	ev := s.waitAudit(t, "closing the idle socket", clientCloseEvent(first.LocalAddr().String(), "login timeout"))
	a.Got("audited: connection.close %s reason %q", ev.Where.Client, ev.Details["reason"])
}

// TestSlowLogin: a frame header, then one byte every 200ms (slowloris);
// and half a SCRAM exchange. Both are closed at the login deadline.
func TestSlowLogin(t *testing.T) {
	s := fresh(t, stackOpts{limits: "  login_timeout: 2s\n"})
	a := attack(t, s, "slow login")
	rc, err := dialRaw(s.bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.close()
	start := time.Now()
	_ = rc.write(binary.BigEndian.AppendUint32(nil, 1000))
	for time.Since(start) < 6*time.Second {
		if err := rc.write([]byte{0}); err != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	a.Sent("a 1000-byte frame header, then one byte every 200ms")
	if !rc.closedByPeer(2 * time.Second) {
		t.Fatal("trickling socket still open after 6s with a 2s login deadline")
	}
	a.Got("closed after %v", time.Since(start).Round(100*time.Millisecond))
	s.waitAudit(t, "closing the trickling socket", clientCloseEvent(rc.c.LocalAddr().String(), "login timeout"))

	sc, err := dialRaw(s.bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.close()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "SCRAM-SHA-512"
	if _, err := sc.send(hs); err != nil {
		t.Fatal(err)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(2)
	au.SASLAuthBytes = []byte("n,,n=" + acme + ",r=0123456789abcdef")
	if _, err := sc.send(au); err != nil {
		t.Fatal(err)
	}
	a.Sent("SCRAM client-first, then nothing")
	if !sc.closedByPeer(4 * time.Second) {
		t.Fatal("half a SCRAM exchange outlived the login deadline")
	}
	s.waitAudit(t, "closing the half login", clientCloseEvent(sc.c.LocalAddr().String(), "login timeout"))
	a.Got("closed at the login deadline, audited")
}

// bomb is a RecordBatch v2 holding one well-formed record whose value is
// size zero bytes (plus one header named hdr), compressed with codec.
func bomb(t *testing.T, codec int16, hdr string, size int) []byte {
	t.Helper()
	tail := binary.AppendVarint(nil, 1)
	tail = binary.AppendVarint(tail, int64(len(hdr)))
	tail = append(tail, hdr...)
	tail = binary.AppendVarint(tail, -1)
	rec := []byte{0}
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, -1)
	rec = binary.AppendVarint(rec, int64(size))
	body := binary.AppendVarint(nil, int64(len(rec)+size+len(tail)))
	body = append(body, rec...)
	var buf bytes.Buffer
	var w io.WriteCloser
	if codec == 1 {
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	} else {
		w, _ = zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(8<<20))
	}
	_, _ = w.Write(body)
	zero := make([]byte, 1<<20)
	for left := size; left > 0; left -= len(zero) {
		_, _ = w.Write(zero[:min(left, len(zero))])
	}
	_, _ = w.Write(tail)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return batchOf(codec, 0, 1, buf.Bytes())
}

// batchOf frames records bytes as a RecordBatch v2 with a valid CRC.
func batchOf(codec int16, lastDelta, n int32, recs []byte) []byte {
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, Attributes: codec, LastOffsetDelta: lastDelta,
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: n, Records: recs}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

func produceReq(topic string, part int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = -1, 5000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition, pp.Records = part, records
	tp.Partitions = append(tp.Partitions, pp)
	req.Topics = append(req.Topics, tp)
	return req
}

// TestDecompressionBombs: batches of a few hundred KiB that inflate to
// 1 GiB, to an unprotected topic (kguard scans them for forged kguard.*
// headers) and to the protected one (kguard decrypts-and-signs them), four
// at once. Each is refused (INVALID_RECORD) and audited; kguard's peak RSS
// grows by about the 64 MiB bound per batch decompressed at once, not by
// the 360 + 170 MiB measured before.
func TestDecompressionBombs(t *testing.T) {
	s := fresh(t, stackOpts{limits: "  max_concurrent_decompressions: 2\n"})
	a := attack(t, s, "decompression bombs")
	hwm0 := s.procKiB(t, "VmHWM")
	cases := []struct {
		topic string
		codec int16
	}{{"acme.orders", 1}, {"acme.orders", 4}, {"acme.payments", 4}, {"acme.payments", 1}}
	type result struct {
		code int16
		err  error
	}
	results := make(chan result, len(cases))
	for _, c := range cases {
		req := produceReq(c.topic, 0, bomb(t, c.codec, "h", 1<<30))
		a.Sent("User:%s Produce v9 %s[0]: one %s batch of %d KiB inflating to 1 GiB", acme, c.topic,
			map[int16]string{1: "gzip", 4: "zstd"}[c.codec], len(req.Topics[0].Partitions[0].Records)>>10)
		rc := s.login(t, acme, s.leaderOf(t, c.topic, 0))
		go func() {
			resp, err := rc.send(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{code: resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode}
		}()
	}
	for range cases {
		r := <-results
		if r.err != nil {
			t.Fatalf("bomb produce: %v", r.err)
		}
		a.Got("%v", kerr.ErrorForCode(r.code))
		if r.code != kerr.InvalidRecord.Code {
			t.Fatalf("bomb answered %v, want INVALID_RECORD", kerr.ErrorForCode(r.code))
		}
	}
	grew := s.procKiB(t, "VmHWM") - hwm0
	a.Got("kguard's peak RSS grew by %d MiB", grew>>10)
	if grew > 200<<10 {
		t.Fatalf("kguard's peak RSS grew by %d MiB for four bombs, two decompressed at once", grew>>10)
	}
	for _, topic := range []string{"acme.orders", "acme.payments"} {
		ev := s.waitAudit(t, "refusing the bomb on "+topic, denial(acme, "Produce", topic))
		a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
	}
}

// TestRepeatedOffsetDelta: a batch for the protected topic whose two
// records share offset delta 0 (and other misnumberings) is refused before
// kguard re-encodes and re-signs it; the partition's end offset does not
// move.
func TestRepeatedOffsetDelta(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			a := attack(t, s, "batch with repeated offset deltas")
			rc := s.login(t, acme, s.leaderOf(t, "acme.payments", 1))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			before, err := listEnds(ctx, s.directClient(t), "acme.payments")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name   string
				last   int32
				deltas []int32
			}{{"deltas 0,0", 1, []int32{0, 0}}, {"deltas 0,2,1", 2, []int32{0, 2, 1}}, {"deltas 0,1, last delta 5", 5, []int32{0, 1}}} {
				var recs []byte
				for i, d := range c.deltas {
					r := kmsg.NewRecord()
					r.OffsetDelta = d
					r.Value = []byte(fmt.Sprintf(`{"card":"4111111111111111","n":%d}`, i))
					r.Length = int32(len(r.AppendTo(nil)) - 1)
					recs = r.AppendTo(recs)
				}
				resp, err := rc.send(produceReq("acme.payments", 1, batchOf(0, c.last, int32(len(c.deltas)), recs)))
				if err != nil {
					t.Fatal(err)
				}
				p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
				a.Sent("User:%s Produce v9 acme.payments[1]: %s", acme, c.name)
				a.Got("%v", kerr.ErrorForCode(p.ErrorCode))
				if p.ErrorCode != kerr.InvalidRecord.Code {
					t.Fatalf("%s: %v, want INVALID_RECORD", c.name, kerr.ErrorForCode(p.ErrorCode))
				}
			}
			after, err := listEnds(ctx, s.directClient(t), "acme.payments")
			if err != nil {
				t.Fatal(err)
			}
			if after[1] != before[1] {
				t.Fatalf("acme.payments[1] end offset moved %d -> %d", before[1], after[1])
			}
			ev := s.waitAudit(t, "refusing the misnumbered batch", func(ev audit.Event) bool {
				return denial(acme, "Produce", "acme.payments")(ev) && strings.Contains(strings.Join(ev.Outcome.Reasons, " "), "offset delta")
			})
			a.Got("end offset unchanged; audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
		})
	}
}
