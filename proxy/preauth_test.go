package proxy_test

import (
	"context"
	"crypto/x509/pkix"
	"encoding/binary"
	"net"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/test/harness"
)

// limitsFor sets the connection and login limits of a test proxy.
func limitsFor(maxConns, maxUnauth, perAddr int, login time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Limits.MaxConnections = maxConns
		c.Limits.MaxUnauthenticatedConnections = maxUnauth
		c.Limits.MaxUnauthenticatedPerAddress = perAddr
		if login > 0 {
			c.Limits.LoginTimeout = login
		}
	}
}

func startPreAuthEnv(t *testing.T, mutate func(*config.Config)) *authEnv {
	t.Helper()
	e := startAuthEnv(t, mutate)
	e.events.mu = make(chan struct{}, 1)
	return e
}

// dialFrom connects to addr from a given loopback source address, so a
// test can play several client hosts.
func dialFrom(t *testing.T, src, addr string) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// closeReason waits for the connection.close event of the connection from
// client and returns its reason.
func closeReason(t *testing.T, e *authEnv, client string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range e.events.of(audit.EventConnectionClose) {
			if ev.Where.Client == client {
				return ev.Details["reason"]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no connection.close event for %s", client)
	return ""
}

// TestPreAuthFrameCap: before authentication a frame may be at most
// limits.max_preauth_frame_bytes (Kafka: 512 KiB); a larger announcement
// closes the connection without kguard reading or allocating the body.
// After login the full max_frame_bytes applies.
func TestPreAuthFrameCap(t *testing.T) {
	e := startPreAuthEnv(t, nil)
	r := dialRaw(t, e.Bootstrap())
	apiVersions(t, r, 3)
	if _, err := r.c.Write(binary.BigEndian.AppendUint32(nil, 600<<10)); err != nil {
		t.Fatal(err)
	}
	r.expectClosed()
	if why := closeReason(t, e, r.c.LocalAddr().String()); why != "bad frame" {
		t.Fatalf("close reason %q, want bad frame", why)
	}
	// The same after SaslHandshake v0, where bare SASL tokens follow.
	v0 := dialRaw(t, e.Bootstrap())
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(0)
	hs.Mechanism = "PLAIN"
	if hr := v0.roundTrip(hs).(*kmsg.SASLHandshakeResponse); hr.ErrorCode != 0 {
		t.Fatalf("SaslHandshake v0: %d", hr.ErrorCode)
	}
	if _, err := v0.c.Write(binary.BigEndian.AppendUint32(nil, 600<<10)); err != nil {
		t.Fatal(err)
	}
	v0.expectClosed()
	if why := closeReason(t, e, v0.c.LocalAddr().String()); why != "bad frame" {
		t.Fatalf("raw token: close reason %q, want bad frame", why)
	}
	// An authenticated client may send a 600 KiB request.
	a := dialRaw(t, e.Bootstrap())
	if _, ar := saslRaw(t, a, "PLAIN", []byte("\x00alice\x00alice-secret")); ar == nil || ar.ErrorCode != 0 {
		t.Fatalf("login: %+v", ar)
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = -1, 5000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = recordBatch(string(make([]byte, 600<<10)))
	tp.Partitions = append(tp.Partitions, pp)
	req.Topics = append(req.Topics, tp)
	// (answered by the broker: the bootstrap connection's broker may not
	// lead the partition)
	if resp := a.roundTrip(req).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 && resp.Topics[0].Partitions[0].ErrorCode != 6 {
		t.Fatalf("600 KiB produce after login: error %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
}

// TestPreAuthHoldsNoUpstream: a connection that has not authenticated has
// no upstream connection; kguard answers its ApiVersions from what the
// brokers told it earlier and dials only once the client has logged in.
func TestPreAuthHoldsNoUpstream(t *testing.T) {
	e := startPreAuthEnv(t, limitsFor(1000, 500, 100, 0))
	var dials atomic.Int64
	e.Cluster.ControlKey(18, func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster.KeepControl()
		if av := req.(*kmsg.ApiVersionsRequest); av.ClientSoftwareName == "kguard" {
			dials.Add(1)
		}
		return nil, nil, false
	})
	const idle = 20
	for range idle {
		r := dialRaw(t, e.Bootstrap())
		if av := apiVersions(t, r, 3); av.ErrorCode != 0 || len(av.ApiKeys) == 0 {
			t.Fatalf("pre-auth ApiVersions: %+v", av)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := dials.Load(); n != 0 {
		t.Fatalf("%d unauthenticated connections made %d upstream connections, want 0", idle, n)
	}
	a := dialRaw(t, e.Bootstrap())
	if _, ar := saslRaw(t, a, "PLAIN", []byte("\x00alice\x00alice-secret")); ar == nil || ar.ErrorCode != 0 {
		t.Fatalf("login: %+v", ar)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	if resp := a.roundTrip(md).(*kmsg.MetadataResponse); len(resp.Brokers) == 0 {
		t.Fatal("no brokers after login")
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("one login made %d upstream connections, want 1", n)
	}
}

// TestLoginTimeout: a client that starts a frame and trickles its bytes
// (slowloris), or logs in half way (SCRAM's first message only), is closed
// at limits.login_timeout, far before idle_timeout.
func TestLoginTimeout(t *testing.T) {
	e := startPreAuthEnv(t, func(c *config.Config) { c.Limits.LoginTimeout = 400 * time.Millisecond })
	t.Run("trickle", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		start := time.Now()
		if _, err := r.c.Write(binary.BigEndian.AppendUint32(nil, 100)); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tk := time.NewTicker(50 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					if _, err := r.c.Write([]byte{0}); err != nil {
						return
					}
				}
			}
		}()
		r.expectClosed()
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("closed after %v", d)
		}
		if why := closeReason(t, e, r.c.LocalAddr().String()); why != "login timeout" {
			t.Fatalf("close reason %q, want login timeout", why)
		}
	})
	t.Run("half a SCRAM exchange", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		if _, ar := saslRaw(t, r, "SCRAM-SHA-256", []byte("n,,n=alice,r=abcdefghijkl")); ar == nil || ar.ErrorCode != 0 {
			t.Fatalf("SCRAM client-first: %+v", ar)
		}
		r.expectClosed()
		if why := closeReason(t, e, r.c.LocalAddr().String()); why != "login timeout" {
			t.Fatalf("close reason %q, want login timeout", why)
		}
	})
	t.Run("logged in clients are not timed out", func(t *testing.T) {
		a := dialRaw(t, e.Bootstrap())
		if _, ar := saslRaw(t, a, "PLAIN", []byte("\x00alice\x00alice-secret")); ar == nil || ar.ErrorCode != 0 {
			t.Fatalf("login: %+v", ar)
		}
		time.Sleep(600 * time.Millisecond)
		apiVersions(t, a, 3)
	})
}

// TestUnauthenticatedCannotLockOut: idle unauthenticated sockets from one
// host take at most max_unauthenticated_per_address login slots, and all
// unauthenticated sockets together at most max_unauthenticated_connections
// of max_connections, so a client that logs in still gets in.
func TestUnauthenticatedCannotLockOut(t *testing.T) {
	e := startPreAuthEnv(t, limitsFor(8, 4, 2, time.Minute))
	held := 0
	for range 20 {
		c, err := dialFrom(t, "127.0.0.2", e.Bootstrap())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(binary.BigEndian.AppendUint32(nil, 100)); err != nil {
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				held++ // still open: kguard holds it
			}
		}
	}
	t.Logf("20 idle sockets from one host: %d held by kguard", held)
	if held > 2 {
		t.Fatalf("one host holds %d unauthenticated connections, limit 2", held)
	}
	// all hosts together hold at most max_unauthenticated_connections
	var kept []net.Conn
	for _, host := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		for range 2 {
			c, err := dialFrom(t, host, e.Bootstrap())
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					kept = append(kept, c)
				}
			}
		}
	}
	t.Logf("6 idle sockets from three more hosts: %d held by kguard", len(kept))
	if len(kept) != 2 {
		t.Fatalf("%d more unauthenticated connections held, want 2 (4 in all)", len(kept))
	}
	kept[0].Close() // one login slot frees up for the client below
	time.Sleep(200 * time.Millisecond)
	// authenticated clients keep the other half of max_connections
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Bootstrap()), kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()),
		kgo.DialTimeout(2*time.Second), kgo.RetryTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("a client that logs in is locked out while unauthenticated sockets are held: %v", err)
	}
}

// TestPreAuthMemory: unauthenticated connections that announce the largest
// frame allowed before login and send a few bytes cost kguard about what
// they sent, not what they announced.
func TestPreAuthMemory(t *testing.T) {
	const conns, sent = 40, 1 << 10
	e := startPreAuthEnv(t, limitsFor(1000, 500, 100, time.Minute))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		r := dialRaw(t, e.Bootstrap())
		frame := binary.BigEndian.AppendUint32(nil, 512<<10)
		if _, err := r.c.Write(append(frame, make([]byte, sent)...)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	per := grew / conns
	t.Logf("%d unauthenticated connections announcing 512 KiB frames, %d bytes sent each: heap in use grew %d KiB (%d KiB per connection)",
		conns, sent, grew>>10, per>>10)
	if per > 96<<10 {
		t.Fatalf("each unauthenticated connection costs %d KiB for %d bytes sent", per>>10, sent)
	}
}

// TestTLSHandshakeLoginTimeout: a client that opens a TLS listener's
// socket and stalls in the handshake (here: half a record header) is
// closed at limits.login_timeout.
func TestTLSHandshakeLoginTimeout(t *testing.T) {
	p := newPKI(t)
	p.issue(t, "server", pkix.Name{CommonName: "kguard"}, true, false)
	env := harness.Start(t, harness.Options{
		Brokers: 1, NoAnonymous: true,
		Mutate: func(c *config.Config) {
			c.Listen.TLS = &config.ServerTLS{CertFile: filepath.Join(p.dir, "server.pem"), KeyFile: filepath.Join(p.dir, "server-key.pem"),
				ClientCAFile: filepath.Join(p.dir, "ca.pem")}
			c.Listen.Auth.MappingRules = []string{"RULE:^CN=([^,]+),OU=clients$/$1/L"}
			c.Limits.LoginTimeout = 300 * time.Millisecond
		},
	})
	r := dialRaw(t, env.Bootstrap())
	start := time.Now()
	if _, err := r.c.Write([]byte{0x16, 0x03}); err != nil {
		t.Fatal(err)
	}
	r.expectClosed()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stalled TLS handshake closed after %v, login timeout 300ms", d)
	}
}

// The answer that completes a login is sent only once the upstream
// connection is up: with every broker gone, a client that presents valid
// credentials gets a reset instead of SASL success (it would otherwise
// send requests on a connection about to be reset, and they would be lost
// without a decision or an audit event).
func TestLoginAnsweredAfterUpstreamDial(t *testing.T) {
	e := startAzEnv(t)
	e.login(t, "alice") // kguard knows the broker's versions now
	e.Cluster.Close()
	c := dialRaw(t, e.Bootstrap())
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "PLAIN"
	if hr := c.roundTrip(hs).(*kmsg.SASLHandshakeResponse); hr.ErrorCode != 0 {
		t.Fatalf("handshake: %d", hr.ErrorCode)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(2)
	au.SASLAuthBytes = []byte("\x00alice\x00alice-pw")
	c.send(au)
	c.expectClosed()
}
