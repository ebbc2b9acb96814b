package proxy_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
)

// tryLogin logs in as user with PLAIN and reports whether kguard answered
// the login (the connection is then usable) or closed the connection.
func (e *azEnv) tryLogin(t *testing.T, user string) (*raw, bool) {
	t.Helper()
	r := dialRaw(t, e.Bootstrap())
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "PLAIN"
	if hr := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse); hr.ErrorCode != 0 {
		t.Fatalf("handshake as %s: error %d", user, hr.ErrorCode)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(2)
	au.SASLAuthBytes = []byte("\x00" + user + "\x00" + user + "-pw")
	corr := r.send(au)
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := wire.ReadFrame(r.c, r.pool, 1<<20)
	if errors.Is(err, io.EOF) || isReset(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	defer f.Release()
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.SetVersion(2)
	got, off, err := wire.ParseResponseHeader(f.Body(), true)
	if err != nil || got != corr || resp.ReadFrom(f.Body()[off:]) != nil || resp.ErrorCode != 0 {
		t.Fatalf("login as %s: corr %d/%d, %v, error code %d", user, got, corr, err, resp.ErrorCode)
	}
	return r, true
}

// metricSum adds up the samples of a metric whose labels include want.
func metricSum(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestQuotaConnectionLimitFromPolicy: the configuration caps tenant acme
// at one connection until the policy data's quotas document (which wins)
// raises it to two; a malformed document is refused and the limit in force
// stays; a connection over the limit is closed during authentication (no
// SaslAuthenticate answer); closing a connection frees its place; tenant
// globex, without a limit, is not counted.
func TestQuotaConnectionLimitFromPolicy(t *testing.T) {
	e := startAzEnvWith(t, func(c *config.Config) {
		c.Quotas = config.Quotas{Sample: 100 * time.Millisecond, Samples: 2,
			Rules: []config.QuotaRule{{Tenant: "acme", MaxConnections: 1}}}
	})
	first, ok := e.tryLogin(t, "acme-app")
	if !ok {
		t.Fatal("first acme connection refused")
	}
	if _, ok := e.tryLogin(t, "acme-app"); ok {
		t.Fatal("second acme connection admitted over the configuration's max_connections 1")
	}
	for range 3 {
		if _, ok := e.tryLogin(t, "globex-app"); !ok {
			t.Fatal("globex (no limit) refused")
		}
	}
	doc := filepath.Join(e.dir, "config", "quotas.json")
	writeFile(t, doc, `{"quotas": {"rules": [{"tenant": "acme", "max_connections": 2}]}}`)
	if err := e.eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.tryLogin(t, "acme-app"); !ok {
		t.Fatal("second acme connection refused under the policy's max_connections 2")
	}
	if _, ok := e.tryLogin(t, "acme-app"); ok {
		t.Fatal("third acme connection admitted over the policy's max_connections 2")
	}
	writeFile(t, doc, `{"quotas": {"rules": [{"tenant": "acme", "max_connections": 20, "typo": 1}]}}`)
	if err := e.eng.Reload(context.Background()); err == nil {
		t.Fatal("a malformed quotas document was accepted")
	}
	if _, ok := e.tryLogin(t, "acme-app"); ok {
		t.Fatal("third acme connection admitted after a refused reload")
	}
	if n := metricSum(t, e.Registry, "kguard_quota_connections_refused_total", map[string]string{"tenant": "acme", "reason": "max_connections"}); n != 3 {
		t.Errorf("kguard_quota_connections_refused_total{acme} = %v, want 3", n)
	}
	if n := metricSum(t, e.Registry, "kguard_quota_connections", map[string]string{"tenant": "acme"}); n != 2 {
		t.Errorf("kguard_quota_connections{acme} = %v, want 2", n)
	}
	first.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := e.tryLogin(t, "acme-app"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed acme connection did not free its place")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.Remove(doc); err != nil {
		t.Fatal(err)
	}
}

// TestQuotaConnectionRate: tenant acme may authenticate 2 connections per
// second: its logins beyond the window's allowance are held back for the
// rate's throttle time; globex's logins are not held. A throttle longer
// than half the login timeout closes the connection.
func TestQuotaConnectionRate(t *testing.T) {
	e := startAzEnvWith(t, func(c *config.Config) {
		c.Quotas = config.Quotas{Sample: time.Second, Samples: 2,
			Rules: []config.QuotaRule{{Tenant: "acme", ConnectionsPerSecond: 2}}}
	})
	timed := func(user string, n int) (time.Duration, int) {
		start := time.Now()
		admitted := 0
		for range n {
			if _, ok := e.tryLogin(t, user); ok {
				admitted++
			}
		}
		return time.Since(start), admitted
	}
	g, gn := timed("globex-app", 5)
	// The window's allowance is 2 (1 s minimum at 2/s); the third login
	// waits (3-2)/2 s, the fourth about 1 s more.
	a, an := timed("acme-app", 4)
	t.Logf("QUOTA connection rate: acme (2/s) 4 logins in %v (%d admitted), globex (none) 5 in %v", a, an, g)
	if an != 4 || gn != 5 {
		t.Fatalf("admitted acme %d of 4, globex %d of 5", an, gn)
	}
	if a < 1200*time.Millisecond {
		t.Errorf("acme's 4 logins at 2/s took %v, want at least 1.2 s", a)
	}
	if g > time.Second {
		t.Errorf("globex's unthrottled logins took %v", g)
	}
	// At 1/s with a 400 ms login timeout, the second login's throttle
	// (1 s) is beyond the 200 ms cap: held that long, then closed.
	e = startAzEnvWith(t, func(c *config.Config) {
		c.Quotas = config.Quotas{Sample: time.Second, Samples: 2,
			Rules: []config.QuotaRule{{Tenant: "acme", ConnectionsPerSecond: 1}}}
		c.Limits.LoginTimeout = 400 * time.Millisecond
	})
	if _, ok := e.tryLogin(t, "acme-app"); !ok {
		t.Fatal("first acme login at 1/s refused")
	}
	start := time.Now()
	if _, ok := e.tryLogin(t, "acme-app"); ok {
		t.Fatal("second acme login at 1/s admitted within the same second")
	}
	if held := time.Since(start); held < 150*time.Millisecond {
		t.Errorf("the refused login was closed after %v, want it held about 200 ms first", held)
	}
	if n := metricSum(t, e.Registry, "kguard_quota_connections_refused_total", map[string]string{"tenant": "acme", "reason": "connection_rate"}); n != 1 {
		t.Errorf("kguard_quota_connections_refused_total{acme,connection_rate} = %v, want 1", n)
	}
}

// TestQuotaRequestTime: tenant acme may use 1 % of a thread's time in
// kguard (10 ms per second): its Metadata requests soon come back with
// throttle_time_ms, and the connection is then muted for that long (the
// next request's answer waits); globex is never throttled.
func TestQuotaRequestTime(t *testing.T) {
	e := startAzEnvWith(t, func(c *config.Config) {
		c.Quotas = config.Quotas{Sample: 100 * time.Millisecond, Samples: 5,
			Rules: []config.QuotaRule{{Tenant: "acme", RequestPercentage: 1}}}
	})
	md := func() *kmsg.MetadataRequest {
		r := kmsg.NewPtrMetadataRequest()
		r.SetVersion(9)
		return r
	}
	g, _ := e.tryLogin(t, "globex-app")
	for range 30 {
		if th := g.roundTrip(md()).(*kmsg.MetadataResponse).ThrottleMillis; th != 0 {
			t.Fatalf("globex (no request quota) throttled %d ms", th)
		}
	}
	a, _ := e.tryLogin(t, "acme-app")
	// 1 % of the 500 ms window is 5 ms of kguard's time: a few hundred
	// Metadata requests on a quiet machine, fewer under load or -race.
	// Sent back to back for up to 3 s, that share is far above 1 %.
	var throttle time.Duration
	n, deadline := 0, time.Now().Add(3*time.Second)
	for ; throttle == 0 && time.Now().Before(deadline); n++ {
		throttle = time.Duration(a.roundTrip(md()).(*kmsg.MetadataResponse).ThrottleMillis) * time.Millisecond
	}
	if throttle == 0 {
		t.Fatalf("acme over 1 %% request time: no response throttled in %d requests (3 s)", n)
	}
	start := time.Now()
	a.roundTrip(md())
	waited := time.Since(start)
	t.Logf("QUOTA request time: acme (1 %%) throttled %v after %d requests, next answer after %v", throttle, n, waited)
	if waited < throttle*9/10 {
		t.Errorf("muted connection answered after %v, throttle was %v", waited, throttle)
	}
	if n := metricSum(t, e.Registry, "kguard_quota_throttled_total", map[string]string{"tenant": "acme", "kind": "request"}); n == 0 {
		t.Error("kguard_quota_throttled_total{acme,request} = 0")
	}
	if n := metricSum(t, e.Registry, "kguard_quota_request_seconds_total", map[string]string{"tenant": "acme"}); n == 0 {
		t.Error("kguard_quota_request_seconds_total{acme} = 0")
	}
}
