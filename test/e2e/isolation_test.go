package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/proxy/wire"
	"github.com/kguard/kguard/test/harness"
)

// rawFrame builds a request frame: header v1 (or v2 with an empty tag
// section when flexible) followed by body.
func rawFrame(key, version int16, corr int32, flexible bool, body []byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len("raw")))
	b = append(b, "raw"...)
	if flexible {
		b = append(b, 0)
	}
	b = append(b, body...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func sizeOnly(size uint32) []byte { return binary.BigEndian.AppendUint32(nil, size) }

// apiVersionsRaw asks kguard for its ApiVersions (v0) on conn and decodes
// the answer, proving the connection works before it is broken.
func apiVersionsRaw(t *testing.T, conn net.Conn) *kmsg.ApiVersionsResponse {
	t.Helper()
	if _, err := conn.Write(rawFrame(18, 0, 1, false, nil)); err != nil {
		t.Fatalf("writing ApiVersions: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var sz [4]byte
	if _, err := io.ReadFull(conn, sz[:]); err != nil {
		t.Fatalf("reading ApiVersions response: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatalf("reading ApiVersions response: %v", err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 1 {
		t.Fatalf("ApiVersions answered with correlation id %d", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatalf("decoding ApiVersions response: %v", err)
	}
	return resp
}

// notAdvertised finds an api key and version kmsg (so kguard) can parse
// but kguard did not advertise.
func notAdvertised(t *testing.T, av *kmsg.ApiVersionsResponse) (int16, int16) {
	t.Helper()
	adv := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range av.ApiKeys {
		adv[k.ApiKey] = k
	}
	for key := int16(0); key <= wire.MaxAPIKey; key++ {
		km := wire.KmsgMaxVersion(key)
		if km < 0 {
			continue
		}
		a, ok := adv[key]
		if !ok {
			return key, 0
		}
		if a.MaxVersion < km {
			return key, a.MaxVersion + 1
		}
	}
	t.Fatal("kguard advertises every version kmsg knows; no unadvertised version to send")
	return 0, 0
}

// expectClosed fails unless kguard closes conn soon, without answering.
func expectClosed(t *testing.T, name string, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("%s: kguard kept the connection open", name)
	case len(b) > 0:
		t.Errorf("%s: kguard answered %d bytes instead of closing", name, len(b))
	}
}

// TestMalformedFrameClosesOnlyThatConnection sends malformed frames on raw
// connections while a kgo producer and consumer work on their own
// connections: each bad connection is closed with the matching reason, the
// clients see no error, and every record they produced is consumed once.
func TestMalformedFrameClosesOnlyThatConnection(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	const topic, parts = "isolation", 3
	createTopic(t, env, topic, parts)
	maxFrame := uint32(env.Config.Limits.MaxFrameBytes)

	// Background traffic on well-behaved connections.
	prod := client(t, env, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	cons := client(t, env, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := testCtx(t, 60*time.Second)
	stop := make(chan struct{})
	var sentMu sync.Mutex
	sent := seqs{}
	var prodWG, consWG sync.WaitGroup
	prodWG.Add(1)
	go func() {
		defer prodWG.Done()
		for i := int64(0); ; i += 30 {
			select {
			case <-stop:
				return
			default:
			}
			var rs []*kgo.Record
			for j := range int64(30) {
				rs = append(rs, &kgo.Record{Topic: topic, Partition: int32((i + j) % parts), Value: numbered(i + j)})
			}
			if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Errorf("producer on another connection failed: %v", err)
				return
			}
			sentMu.Lock()
			for _, r := range rs {
				seq, _ := parseNumbered(r.Value)
				sent[r.Partition] = append(sent[r.Partition], seq)
			}
			sentMu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	got := newCollector(-1)
	consCtx, stopCons := context.WithCancel(ctx)
	consWG.Add(1)
	go func() {
		defer consWG.Done()
		for consCtx.Err() == nil {
			fs := cons.PollFetches(consCtx)
			fs.EachError(func(tp string, p int32, err error) {
				if consCtx.Err() == nil {
					t.Errorf("consumer on another connection failed: %s/%d: %v", tp, p, err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) { got.add(t, r) })
		}
	}()

	// Find an api version kguard can parse but does not advertise.
	probe, err := net.Dial("tcp", env.Bootstrap())
	if err != nil {
		t.Fatal(err)
	}
	naKey, naVersion := notAdvertised(t, apiVersionsRaw(t, probe))
	probe.Close()
	t.Logf("unadvertised: %s v%d", kmsg.NameForKey(naKey), naVersion)

	cases := []struct {
		name, reason string
		frame        []byte
	}{
		{"negative size", "bad frame", sizeOnly(0xFFFFFFF0)},
		{"size over the cap", "bad frame", sizeOnly(maxFrame + 1)},
		{"huge size", "bad frame", sizeOnly(0x7FFFFFFF)},
		{"empty frame", "bad request header", sizeOnly(0)},
		{"garbage header", "bad request header", append(sizeOnly(5), 0xde, 0xad, 0xbe, 0xef, 0x00)},
		{"client id past the frame", "bad request header", append(sizeOnly(10), 0, 3, 0, 12, 0, 0, 0, 1, 0x7f, 0xff)},
		{"unknown api key", "bad request header", rawFrame(30000, 0, 7, false, []byte("xx"))},
		{"version kguard cannot parse", "bad request header", rawFrame(3, 999, 7, false, nil)},
		{"version not advertised", "unsupported api version", rawFrame(naKey, naVersion, 7, false, bytes.Repeat([]byte{0}, 16))},
	}
	reasons := map[string]int{}
	for _, c := range cases {
		reasons[c.reason]++
	}
	before := map[string]float64{}
	for r := range reasons {
		before[r] = counterValue(t, env.Registry, "kguard_connection_closes_total", map[string]string{"reason": r})
	}

	const rounds = 3
	for round := range rounds {
		var wg sync.WaitGroup
		for _, c := range cases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := net.Dial("tcp", env.Bootstrap())
				if err != nil {
					t.Errorf("%s: dial: %v", c.name, err)
					return
				}
				defer conn.Close()
				if round == 0 {
					apiVersionsRaw(t, conn) // the connection works, then breaks
				}
				if _, err := conn.Write(c.frame); err != nil {
					t.Errorf("%s: write: %v", c.name, err)
					return
				}
				expectClosed(t, c.name, conn)
			}()
		}
		wg.Wait()
		time.Sleep(100 * time.Millisecond) // background traffic runs between rounds
	}
	for r, n := range reasons {
		d := counterValue(t, env.Registry, "kguard_connection_closes_total", map[string]string{"reason": r}) - before[r]
		if d != float64(n*rounds) {
			t.Errorf("kguard closed %v connections for %q, want %d", d, r, n*rounds)
		}
	}

	// The well-behaved clients kept working throughout: everything the
	// producer sent arrives at the consumer, once and in order.
	close(stop)
	prodWG.Wait()
	sentMu.Lock()
	want := sent.total()
	sentMu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for got.snapshot().total() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // duplicates, if any
	stopCons()
	consWG.Wait()
	checkExact(t, "clients beside the malformed connections", sent, got.snapshot())
}

// rawRequest frames a kmsg request with a client id "raw".
func rawRequest(req kmsg.Request, corr int32) []byte {
	return rawFrame(req.Key(), req.GetVersion(), corr, req.IsFlexible(), req.AppendTo(nil))
}

// readResponse reads one response frame and returns its correlation id.
func readResponse(t *testing.T, conn net.Conn) int32 {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var sz [4]byte
	if _, err := io.ReadFull(conn, sz[:]); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	return int32(binary.BigEndian.Uint32(body))
}

// TestAcksZeroPipelined writes, in one burst on one connection, Metadata,
// an acks=0 Produce (no response), and Metadata again: kguard must answer
// exactly the two Metadata requests, in order, with their correlation ids.
func TestAcksZeroPipelined(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	createTopic(t, env, "acks0-raw", 1)
	conn, err := net.Dial("tcp", env.Bootstrap())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	av := apiVersionsRaw(t, conn)
	var produceMax, metadataMax int16 = -1, -1
	for _, k := range av.ApiKeys {
		switch k.ApiKey {
		case 0:
			produceMax = k.MaxVersion
		case 3:
			metadataMax = k.MaxVersion
		}
	}
	if produceMax < 3 || metadataMax < 1 {
		t.Fatalf("kguard advertises Produce up to v%d and Metadata up to v%d", produceMax, metadataMax)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(min(metadataMax, 12))
	prod := kmsg.NewPtrProduceRequest()
	prod.SetVersion(min(produceMax, 12)) // v13+ names topics by id
	prod.Acks = 0
	prod.TimeoutMillis = 1000
	var burst []byte
	burst = append(burst, rawRequest(md, 10)...)
	burst = append(burst, rawRequest(prod, 11)...)
	burst = append(burst, rawRequest(md, 12)...)
	if _, err := conn.Write(burst); err != nil {
		t.Fatal(err)
	}
	if got := readResponse(t, conn); got != 10 {
		t.Fatalf("first response has correlation id %d, want 10", got)
	}
	if got := readResponse(t, conn); got != 12 {
		t.Fatalf("second response has correlation id %d, want 12 (the acks=0 produce must get none)", got)
	}
	// Nothing else arrives.
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var one [1]byte
	if n, err := conn.Read(one[:]); n > 0 {
		t.Fatalf("unexpected extra response bytes (err %v)", err)
	}
}
