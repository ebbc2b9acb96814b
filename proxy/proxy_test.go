package proxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kguard/kguard/proxy/wire"
	"github.com/kguard/kguard/test/harness"
)

// raw is a hand-driven client connection for protocol-level tests.
type raw struct {
	t    *testing.T
	c    net.Conn
	corr int32
	pool *wire.Pool
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, pool: wire.NewPool()}
}

func (r *raw) send(req kmsg.Request) int32 {
	r.t.Helper()
	r.corr++
	if _, err := r.c.Write(wire.AppendRequest(nil, r.corr, "raw-test", req)); err != nil {
		r.t.Fatalf("write: %v", err)
	}
	return r.corr
}

// recv reads the response to req sent with correlation id corr.
func (r *raw) recv(req kmsg.Request, corr int32) kmsg.Response {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := wire.ReadFrame(r.c, r.pool, 64<<20)
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	defer f.Release()
	resp := req.ResponseKind()
	got, off, err := wire.ParseResponseHeader(f.Body(), wire.ResponseHeaderFlexible(req.Key(), req.IsFlexible()))
	if err != nil || got != corr {
		r.t.Fatalf("response header: corr %d want %d, %v", got, corr, err)
	}
	if err := resp.ReadFrom(f.Body()[off:]); err != nil {
		r.t.Fatalf("decode %T: %v", resp, err)
	}
	return resp
}

func (r *raw) roundTrip(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	return r.recv(req, r.send(req))
}

// expectClosed asserts kguard closes the connection without answering.
func (r *raw) expectClosed() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	n, err := r.c.Read(b[:])
	if n != 0 || !(errors.Is(err, io.EOF) || isReset(err)) {
		r.t.Fatalf("connection still open: read %d bytes, err %v", n, err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func apiVersions(t *testing.T, r *raw, v int16) *kmsg.ApiVersionsResponse {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(v)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "raw", "1"
	return r.roundTrip(req).(*kmsg.ApiVersionsResponse)
}

func TestApiVersionsIsIntersection(t *testing.T) {
	// The upstream supports Metadata only up to v9 and Fetch only up to
	// v11: kguard must not advertise more, whatever kmsg can parse.
	v := kversion.Stable()
	v.SetMaxKeyVersion(3, 9)
	v.SetMaxKeyVersion(1, 11)
	env := harness.Start(t, harness.Options{Kfake: []kfake.Opt{kfake.MaxVersions(v)}})
	r := dialRaw(t, env.Bootstrap())
	resp := apiVersions(t, r, 3)
	if resp.ErrorCode != 0 {
		t.Fatalf("error %d", resp.ErrorCode)
	}
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if got[3][1] != 9 || got[1][1] != 11 {
		t.Fatalf("Metadata max %d (want 9), Fetch max %d (want 11)", got[3][1], got[1][1])
	}
	if _, ok := got[55]; ok {
		t.Fatal("DescribeQuorum (controller endpoints) advertised")
	}
	for key, r := range got {
		if km := wire.KmsgMaxVersion(key); km < 0 || r[1] > km {
			t.Fatalf("key %d advertised up to v%d, kmsg parses up to v%d", key, r[1], km)
		}
	}
	if len(resp.FinalizedFeatures) == 0 && len(resp.SupportedFeatures) == 0 {
		t.Log("upstream reported no features")
	}

	// A version kguard did not advertise closes the connection unanswered.
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(10)
	r.send(md)
	r.expectClosed()
}

// KIP-511: an ApiVersions version newer than kguard knows is answered with
// UNSUPPORTED_VERSION in a v0 response naming the supported range, so the
// client can retry lower; the connection stays usable.
func TestApiVersionsFutureVersion(t *testing.T) {
	env := harness.Start(t, harness.Options{Brokers: 1})
	r := dialRaw(t, env.Bootstrap())
	r.corr++
	// Header v2 for ApiVersions v99: key, version, corr, client id, tags;
	// body: two compact strings and tags.
	body := []byte{0, 18, 0, 99, 0, 0, 0, byte(r.corr), 0, 1, 'x', 0, 2, 'a', 2, 'b', 0}
	if _, err := r.c.Write(wire.AppendFrame(nil, body)); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	resp := r.recv(req, r.corr).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 {
		t.Fatalf("got %+v", resp)
	}
	if again := apiVersions(t, r, resp.ApiKeys[0].MaxVersion); again.ErrorCode != 0 || len(again.ApiKeys) < 20 {
		t.Fatalf("retry at v%d: error %d, %d keys", resp.ApiKeys[0].MaxVersion, again.ErrorCode, len(again.ApiKeys))
	}
}

func TestMetadataRewritten(t *testing.T) {
	env := harness.Start(t, harness.Options{Kfake: []kfake.Opt{kfake.SeedTopics(3, "t")}})
	r := dialRaw(t, env.Bootstrap())
	for _, v := range []int16{0, 4, 9, 12} {
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(v)
		resp := r.roundTrip(md).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 3 {
			t.Fatalf("v%d: %d brokers", v, len(resp.Brokers))
		}
		served := env.Proxy.BrokerAddrs()
		for _, b := range resp.Brokers {
			addr := net.JoinHostPort(b.Host, itoa(b.Port))
			if served[b.NodeID] != addr {
				t.Fatalf("v%d: broker %d advertised at %s, kguard serves it at %s", v, b.NodeID, addr, served[b.NodeID])
			}
			for _, up := range env.Proxy.UpstreamAddrs() {
				if addr == up {
					t.Fatalf("v%d: upstream address %s leaked", v, up)
				}
			}
		}
	}
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }

// A broker that joins after kguard started gets a listener when a client's
// metadata names it, without a restart.
func TestBrokerJoinGetsListener(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	if n := len(env.Proxy.BrokerAddrs()); n != 3 {
		t.Fatalf("%d listeners at start", n)
	}
	id, _, err := env.Cluster.AddNode(7, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, env.Bootstrap())
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	resp := r.roundTrip(md).(*kmsg.MetadataResponse)
	var found bool
	for _, b := range resp.Brokers {
		if b.NodeID == id {
			found = true
			r2 := dialRaw(t, net.JoinHostPort(b.Host, itoa(b.Port)))
			if av := apiVersions(t, r2, 3); av.ErrorCode != 0 {
				t.Fatalf("new broker's listener: ApiVersions error %d", av.ErrorCode)
			}
		}
	}
	if !found {
		t.Fatalf("node %d not in metadata", id)
	}
}

func TestConnectionLimit(t *testing.T) {
	env := harness.Start(t, harness.Options{Brokers: 1, Config: "limits:\n  max_connections: 2\n"})
	// One at a time: with max_connections 2 only one connection may be
	// logging in at once (max_unauthenticated_connections defaults to
	// half), so b is dialed once a has been answered.
	a := dialRaw(t, env.Bootstrap())
	apiVersions(t, a, 3)
	b := dialRaw(t, env.Bootstrap())
	apiVersions(t, b, 3)
	c := dialRaw(t, env.Bootstrap())
	c.expectClosed()
	apiVersions(t, a, 3) // the first two keep working
}

func TestIdleTimeout(t *testing.T) {
	env := harness.Start(t, harness.Options{Brokers: 1, Config: "limits:\n  idle_timeout: 300ms\n"})
	r := dialRaw(t, env.Bootstrap())
	apiVersions(t, r, 3)
	start := time.Now()
	r.expectClosed()
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
}

// Shutdown lets an in-flight request finish, then closes the connection.
func TestShutdownDrainsInFlight(t *testing.T) {
	env := harness.Start(t, harness.Options{Brokers: 1, Kfake: []kfake.Opt{kfake.SeedTopics(1, "t")}})
	r := dialRaw(t, env.Bootstrap())
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	mresp := r.roundTrip(md).(*kmsg.MetadataResponse)
	var topicID [16]byte
	for _, tp := range mresp.Topics {
		topicID = tp.TopicID
	}
	// A fetch on an empty partition waits MaxWaitMillis at the broker.
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(13)
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 800, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = topicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	corr := r.send(fetch)
	time.Sleep(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- env.Proxy.Shutdown(ctx)
	}()
	resp := r.recv(fetch, corr).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 {
		t.Fatalf("drained fetch: error %d, %d topics", resp.ErrorCode, len(resp.Topics))
	}
	r.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", env.Bootstrap(), time.Second); err == nil {
		t.Fatal("bootstrap still accepting after shutdown")
	}
}

// A client pipelining more requests than limits.max_in_flight in one
// write gets every answer, in order, at once: forwarded requests and ones
// kguard answers itself (ApiVersions) interleaved. The reader, stopped by
// the full queue, must have sent upstream what it queued (the responder
// waits for those responses to make room), and a local answer queued
// while the responder waits on the broker must wake it.
func TestPipelinedPastMaxInFlight(t *testing.T) {
	env := harness.Start(t, harness.Options{Brokers: 1, Config: "limits:\n  max_in_flight: 2\n  request_timeout: 20s\n"})
	r := dialRaw(t, env.Bootstrap())
	apiVersions(t, r, 3)
	var batch []byte
	var reqs []kmsg.Request
	for i := range 60 {
		var req kmsg.Request
		if i%5 == 4 {
			av := kmsg.NewPtrApiVersionsRequest()
			av.SetVersion(3)
			av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
			req = av
		} else {
			md := kmsg.NewPtrMetadataRequest()
			md.SetVersion(12)
			req = md
		}
		r.corr++
		batch = wire.AppendRequest(batch, r.corr, "raw-test", req)
		reqs = append(reqs, req)
	}
	start := time.Now()
	if _, err := r.c.Write(batch); err != nil {
		t.Fatal(err)
	}
	for i, req := range reqs {
		r.recv(req, int32(i)+r.corr-int32(len(reqs))+1)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("60 pipelined requests answered in %v", d)
	}
	// Idle, then one local answer: the responder waits on the broker and
	// is woken for it.
	time.Sleep(50 * time.Millisecond)
	apiVersions(t, r, 3)
}
