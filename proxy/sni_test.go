package proxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
	"github.com/kguard/kguard/test/harness"
)

// dialSNI opens a TLS connection to kguard's SNI listener sending name as
// the server name ("" sends none).
func dialSNI(t *testing.T, s *harness.SNITLS, addr, name string) (*tls.Conn, error) {
	t.Helper()
	cfg := &tls.Config{ServerName: name, RootCAs: s.Roots, MinVersion: tls.VersionTLS12}
	if name == "" {
		cfg.InsecureSkipVerify = true // no name: nothing to verify against
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn), nil
}

// One TLS port serves the bootstrap and every broker by SNI name: metadata
// advertises broker-{id} names at that port, franz-go produces and consumes
// through all brokers, a broker that joins later is served without a
// restart, and wrong or missing names are refused with unrecognized_name
// while kguard keeps serving.
func TestSNIRouting(t *testing.T) {
	s := harness.NewSNITLS(t)
	core, logs := observer.New(zapcore.WarnLevel)
	env := harness.Start(t, harness.Options{
		Kfake:  []kfake.Opt{kfake.SeedTopics(6, "t")},
		Logger: zap.New(core),
		Mutate: s.Configure,
	})
	if n := len(env.Proxy.BrokerAddrs()); n != 3 {
		t.Fatalf("kguard knows %d brokers, want 3", n)
	}
	_, port, _ := net.SplitHostPort(env.Bootstrap())
	names, err := config.NewSNINames(env.Config.Listen.SNI)
	if err != nil {
		t.Fatal(err)
	}
	seed := net.JoinHostPort(harness.SNIBootstrapName, port)

	// Metadata through the bootstrap name: every broker at its name and
	// the one port, no upstream address.
	c, err := dialSNI(t, s, env.Bootstrap(), harness.SNIBootstrapName)
	if err != nil {
		t.Fatalf("bootstrap name: %v", err)
	}
	r := &raw{t: t, c: c, pool: wire.NewPool()}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	resp := r.roundTrip(md).(*kmsg.MetadataResponse)
	if len(resp.Brokers) != 3 {
		t.Fatalf("%d brokers in metadata", len(resp.Brokers))
	}
	for _, b := range resp.Brokers {
		if got, want := net.JoinHostPort(b.Host, itoa(b.Port)), net.JoinHostPort(names.Broker(b.NodeID), port); got != want {
			t.Fatalf("broker %d advertised at %s, want %s", b.NodeID, got, want)
		}
	}

	// Each broker's name reaches that broker (kfake says which node
	// answered the forwarded request).
	for _, b := range resp.Brokers {
		served := make(chan int32, 1)
		env.Cluster.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
			env.Cluster.DropControl() // observe one request, then let it through
			served <- env.Cluster.CurrentNode()
			return nil, nil, false
		})
		cb, err := dialSNI(t, s, env.Bootstrap(), b.Host)
		if err != nil {
			t.Fatalf("broker name %s: %v", b.Host, err)
		}
		(&raw{t: t, c: cb, pool: wire.NewPool()}).roundTrip(md)
		select {
		case got := <-served:
			if got != b.NodeID {
				t.Fatalf("%s was served by broker %d, want %d", b.Host, got, b.NodeID)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no Metadata reached the cluster", b.Host)
		}
	}

	if err := produceConsume(t, seed, nil, kgo.Dialer(s.Dial)); err != nil {
		t.Fatalf("franz-go through the SNI listener: %v", err)
	}
	for id := range env.Proxy.BrokerAddrs() {
		if n := env.Counter(t, "kguard_sni_routed_total", "listener", "broker-"+itoa(id)); n == 0 {
			t.Errorf("no connection routed to broker %d", id)
		}
	}

	// A broker that joins is served by its name without a restart.
	id, _, err := env.Cluster.AddNode(7, 0)
	if err != nil {
		t.Fatal(err)
	}
	resp = r.roundTrip(md).(*kmsg.MetadataResponse)
	joined := false
	for _, b := range resp.Brokers {
		joined = joined || (b.NodeID == id && b.Host == names.Broker(id))
	}
	if !joined {
		t.Fatalf("broker %d not advertised as %s: %+v", id, names.Broker(id), resp.Brokers)
	}
	c7, err := dialSNI(t, s, env.Bootstrap(), names.Broker(id))
	if err != nil {
		t.Fatalf("joined broker's name: %v", err)
	}
	if av := apiVersions(t, &raw{t: t, c: c7, pool: wire.NewPool()}, 3); av.ErrorCode != 0 {
		t.Fatalf("joined broker: ApiVersions error %d", av.ErrorCode)
	}
	if n := env.Counter(t, "kguard_sni_routed_total", "listener", "broker-7"); n != 1 {
		t.Fatalf("kguard_sni_routed_total{listener=broker-7} = %v, want 1", n)
	}

	// The name of a broker kguard does not know passes the handshake and
	// the connection is reset once it needs its upstream; metric labels
	// do not take the id the client sent.
	cu, err := dialSNI(t, s, env.Bootstrap(), names.Broker(12345))
	if err != nil {
		t.Fatalf("unknown broker's name: %v", err)
	}
	// (An anonymous client is logged in at once: the reset may come
	// before the request is written.)
	_, _ = cu.Write(wire.AppendRequest(nil, 1, "raw-test", md))
	(&raw{t: t, c: cu, pool: wire.NewPool()}).expectClosed()
	waitFor(t, func() bool {
		return env.Counter(t, "kguard_sni_routed_total", "listener", "unknown_broker") == 1 &&
			env.Counter(t, "kguard_upstream_dial_errors_total", "broker", "unknown_broker") == 1
	})
	if n := env.Counter(t, "kguard_sni_routed_total", "listener", "broker-12345"); n != 0 {
		t.Fatalf("a metric series for the client-chosen id 12345")
	}

	// Wrong and missing names: the handshake fails with the alert
	// unrecognized_name, one log line each, counted; nothing forwarded.
	for _, tc := range []struct{ name, reason string }{
		{"evil.example.com", "unknown_name"},
		{"broker-01.kafka.localhost", "unknown_name"},
		{"", "no_name"},
	} {
		before := env.Counter(t, "kguard_sni_refused_total", "reason", tc.reason)
		logsBefore := logs.FilterMessage("TLS server name refused (alert unrecognized_name)").Len()
		failedBefore := logs.FilterMessage("TLS handshake failed").Len()
		_, err := dialSNI(t, s, env.Bootstrap(), tc.name)
		if err == nil || !strings.Contains(err.Error(), "remote error: tls: unrecognized name") {
			t.Fatalf("server name %q: %v, want the alert unrecognized_name", tc.name, err)
		}
		// Counted and logged as a refusal, not as a failed handshake.
		var counted, logged, failed int
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			counted = int(env.Counter(t, "kguard_sni_refused_total", "reason", tc.reason) - before)
			logged = logs.FilterMessage("TLS server name refused (alert unrecognized_name)").Len() - logsBefore
			failed = logs.FilterMessage("TLS handshake failed").Len() - failedBefore
			if counted == 1 && logged == 1 && failed == 0 || time.Now().After(end) {
				break
			}
		}
		if counted != 1 || logged != 1 || failed != 0 {
			var lines []string
			for _, e := range logs.All() {
				lines = append(lines, fmt.Sprintf("%s %v", e.Message, e.ContextMap()))
			}
			t.Fatalf("server name %q: refusals counted %d, logged %d, logged as failed handshakes %d (want 1, 1, 0); log:\n%s",
				tc.name, counted, logged, failed, strings.Join(lines, "\n"))
		}
	}
	if n := logs.FilterMessage("TLS handshake failed").Len(); n != 0 {
		for _, e := range logs.FilterMessage("TLS handshake failed").All() {
			t.Logf("TLS handshake failed %v", e.ContextMap())
		}
	}
	// kguard still serves the others.
	if resp := r.roundTrip(md).(*kmsg.MetadataResponse); len(resp.Brokers) != 4 {
		t.Fatalf("after the refusals: %d brokers", len(resp.Brokers))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("condition not met within 10s")
		}
	}
}

// kguard refuses to start when its certificate does not cover the
// bootstrap name.
func TestSNICertificateMustCoverBootstrapName(t *testing.T) {
	s := harness.NewSNITLS(t)
	_, err := harness.StartProxy([]string{"127.0.0.1:1"}, harness.Options{Mutate: func(c *config.Config) {
		s.Configure(c)
		c.Listen.SNI.BootstrapName = "kafka.example.com"
	}})
	if err == nil || !strings.Contains(err.Error(), "does not cover it") {
		t.Fatalf("start with a certificate not covering the bootstrap name: %v", err)
	}
}

// mTLS works on the SNI listener as on the others: a trusted client
// certificate is the principal on every broker's name, a connection
// without one is refused.
func TestSNIWithMTLS(t *testing.T) {
	s := harness.NewSNITLS(t)
	p := newPKI(t)
	events := &eventLog{mu: make(chan struct{}, 1)}
	env := harness.Start(t, harness.Options{
		NoAnonymous: true, Auditor: events,
		Kfake: []kfake.Opt{kfake.SeedTopics(3, "t")},
		Mutate: func(c *config.Config) {
			s.Configure(c)
			c.Listen.TLS.ClientCAFile = filepath.Join(p.dir, "ca.pem")
		},
	})
	_, port, _ := net.SplitHostPort(env.Bootstrap())
	seed := net.JoinHostPort(harness.SNIBootstrapName, port)
	good := p.issue(t, "client", pkix.Name{CommonName: "ledger"}, false, false)
	if err := produceConsume(t, seed, nil, kgo.Dialer(s.DialWith(good))); err != nil {
		t.Fatalf("trusted client certificate over SNI: %v", err)
	}
	n := 0
	for _, ev := range events.of(audit.EventConnectionOpen) {
		if ev.Who.Principal != "User:CN=ledger" {
			t.Fatalf("connection opened as %q, want User:CN=ledger", ev.Who.Principal)
		}
		n++
	}
	if n < 2 {
		t.Fatalf("%d connections audited, want the bootstrap's and a broker's", n)
	}
	if err := produceConsumeWithin(t, 3*time.Second, seed, nil, kgo.Dialer(s.Dial)); err == nil {
		t.Fatal("client without certificate accepted over SNI")
	}
}
