package proxy_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
	"github.com/kguard/kguard/test/harness"
)

// authEnv is kguard with PLAIN, SCRAM and OAUTHBEARER enabled for clients.
type authEnv struct {
	*harness.Env
	signKey ed25519.PrivateKey
	events  *eventLog
}

const (
	testIssuer   = "https://issuer.test"
	testAudience = "kafka"
)

func startAuthEnv(t *testing.T, mutate func(*config.Config)) *authEnv {
	t.Helper()
	dir := t.TempDir()
	creds := filepath.Join(dir, "users.yaml")
	for u, pw := range map[string]string{"alice": "alice-secret", "bob": "bob-secret"} {
		if err := auth.AddUser(creds, u, pw, 4096); err != nil {
			t.Fatal(err)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(dir, "jwks.json")
	body := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig","alg":"EdDSA","x":%q}]}`,
		base64.RawURLEncoding.EncodeToString(pub))
	if err := os.WriteFile(jwks, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	events := &eventLog{}
	env := harness.Start(t, harness.Options{
		NoAnonymous: true,
		Auditor:     events,
		Kfake:       []kfake.Opt{kfake.SeedTopics(3, "t")},
		Mutate: func(c *config.Config) {
			c.Listen.Auth.SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"}
			c.Listen.Auth.CredentialsFile = creds
			c.Listen.Auth.OAuth = &config.OAuth{JWKSFile: jwks, Issuer: testIssuer, Audiences: []string{testAudience}, ClockSkew: -1}
			if mutate != nil {
				mutate(c)
			}
		},
	})
	return &authEnv{Env: env, signKey: priv, events: events}
}

func (e *authEnv) token(t *testing.T, sub string, exp time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": sub, "exp": exp.Unix(), "iat": time.Now().Unix(),
	})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(e.signKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eventLog is an Auditor that keeps events in memory.
type eventLog struct {
	mu     chan struct{}
	events []audit.Event
}

func (l *eventLog) Record(ev audit.Event) error {
	if l.mu == nil {
		panic("eventLog used before init")
	}
	l.mu <- struct{}{}
	l.events = append(l.events, ev)
	<-l.mu
	return nil
}

func (l *eventLog) of(typ audit.EventType) []audit.Event {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	var out []audit.Event
	for _, e := range l.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// produceConsume logs in with mech through kgo, produces one record and
// reads it back.
func produceConsume(t *testing.T, bootstrap string, mech sasl.Mechanism, opts ...kgo.Opt) error {
	t.Helper()
	return produceConsumeWithin(t, 15*time.Second, bootstrap, mech, opts...)
}

func produceConsumeWithin(t *testing.T, d time.Duration, bootstrap string, mech sasl.Mechanism, opts ...kgo.Opt) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	base := []kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequestRetries(0), kgo.RetryTimeout(2 * time.Second)}
	if mech != nil {
		base = append(base, kgo.SASL(mech))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	val := []byte(t.Name())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: val}).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == string(val) })
		if found {
			return nil
		}
	}
}

func TestSASLLoginsWithFranzGo(t *testing.T) {
	e := startAuthEnv(t, nil)
	e.events.mu = make(chan struct{}, 1)
	good := map[string]sasl.Mechanism{
		"PLAIN":         plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(),
		"SCRAM-SHA-256": scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(),
		"SCRAM-SHA-512": scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism(),
		"OAUTHBEARER":   oauth.Auth{Token: e.token(t, "carol", time.Now().Add(time.Hour))}.AsMechanism(),
	}
	for name, m := range good {
		t.Run(name, func(t *testing.T) {
			if err := produceConsume(t, e.Bootstrap(), m); err != nil {
				t.Fatalf("%s login through kguard: %v", name, err)
			}
		})
	}
	bad := map[string]sasl.Mechanism{
		"PLAIN wrong password": plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(),
		"PLAIN unknown user":   plain.Auth{User: "mallory", Pass: "x"}.AsMechanism(),
		"SCRAM wrong password": scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism(),
		"expired token":        oauth.Auth{Token: e.token(t, "carol", time.Now().Add(-time.Minute))}.AsMechanism(),
	}
	for name, m := range bad {
		t.Run(name, func(t *testing.T) {
			before := len(e.events.of(audit.EventAuthnFailure))
			// kgo keeps retrying a refused login until its deadline.
			if err := produceConsumeWithin(t, 3*time.Second, e.Bootstrap(), m); err == nil {
				t.Fatalf("%s: login accepted", name)
			}
			fails := e.events.of(audit.EventAuthnFailure)
			if len(fails) == before {
				t.Fatalf("%s: no authentication failure recorded", name)
			}
			if last := fails[len(fails)-1]; last.Outcome == nil || last.Outcome.ErrorCode != kerr.SaslAuthenticationFailed.Code {
				t.Fatalf("%s: failure event %+v, want SASL_AUTHENTICATION_FAILED", name, last.Outcome)
			}
		})
	}
	t.Run("no SASL at all", func(t *testing.T) {
		if err := produceConsumeWithin(t, 3*time.Second, e.Bootstrap(), nil); err == nil {
			t.Fatal("unauthenticated client produced")
		}
	})
	if n := len(e.events.of(audit.EventAuthnFailure)); n < len(bad) {
		t.Fatalf("%d authentication failures audited, want at least %d", n, len(bad))
	}
	for _, ev := range e.events.of(audit.EventAuthnSuccess) {
		if ev.Who == nil || ev.Who.Principal == "" {
			t.Fatalf("success event without principal: %+v", ev)
		}
	}
}

// saslRaw logs in with PLAIN on a raw connection.
func saslRaw(t *testing.T, r *raw, mech string, token []byte) (*kmsg.SASLHandshakeResponse, *kmsg.SASLAuthenticateResponse) {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = mech
	hr := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse)
	if hr.ErrorCode != 0 {
		return hr, nil
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(2)
	au.SASLAuthBytes = token
	return hr, r.roundTrip(au).(*kmsg.SASLAuthenticateResponse)
}

func TestBypassAttemptsRefused(t *testing.T) {
	e := startAuthEnv(t, func(c *config.Config) { c.Listen.Auth.MaxSessionLifetime = 700 * time.Millisecond })
	e.events.mu = make(chan struct{}, 1)
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)

	t.Run("request before authentication", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		apiVersions(t, r, 3) // allowed before login
		r.send(md)
		r.expectClosed()
	})
	t.Run("authenticate without handshake", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		au := kmsg.NewPtrSASLAuthenticateRequest()
		au.SetVersion(2)
		au.SASLAuthBytes = []byte("\x00alice\x00alice-secret")
		resp := r.roundTrip(au).(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("error %d, want ILLEGAL_SASL_STATE", resp.ErrorCode)
		}
		r.expectClosed()
	})
	t.Run("unsupported mechanism", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		hr, _ := saslRaw(t, r, "GSSAPI", nil)
		if hr.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(hr.SupportedMechanisms) != 4 {
			t.Fatalf("handshake: %+v", hr)
		}
		r.expectClosed()
	})
	t.Run("failed login closes", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		_, ar := saslRaw(t, r, "PLAIN", []byte("\x00alice\x00wrong"))
		if ar.ErrorCode != kerr.SaslAuthenticationFailed.Code || ar.ErrorMessage == nil || strings.Contains(*ar.ErrorMessage, "wrong") {
			t.Fatalf("authenticate: %+v", ar)
		}
		r.expectClosed()
	})
	t.Run("mechanism switch on re-authentication", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		if _, ar := saslRaw(t, r, "PLAIN", []byte("\x00alice\x00alice-secret")); ar.ErrorCode != 0 {
			t.Fatalf("login: %d", ar.ErrorCode)
		}
		if resp := r.roundTrip(md).(*kmsg.MetadataResponse); len(resp.Brokers) != 3 {
			t.Fatalf("metadata after login: %d brokers", len(resp.Brokers))
		}
		hr, _ := saslRaw(t, r, "SCRAM-SHA-256", nil)
		if hr.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("switch to SCRAM: error %d, want ILLEGAL_SASL_STATE", hr.ErrorCode)
		}
		r.expectClosed()
	})
	t.Run("principal change on re-authentication", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		if _, ar := saslRaw(t, r, "PLAIN", []byte("\x00alice\x00alice-secret")); ar.ErrorCode != 0 {
			t.Fatalf("login: %d", ar.ErrorCode)
		}
		if _, ar := saslRaw(t, r, "PLAIN", []byte("\x00bob\x00bob-secret")); ar.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("re-auth as bob: error %d", ar.ErrorCode)
		}
		r.expectClosed()
	})
	t.Run("session expiry without re-authentication", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		_, ar := saslRaw(t, r, "PLAIN", []byte("\x00alice\x00alice-secret"))
		if ar.ErrorCode != 0 || ar.SessionLifetimeMillis <= 0 || ar.SessionLifetimeMillis > 700 {
			t.Fatalf("login: error %d, session lifetime %dms", ar.ErrorCode, ar.SessionLifetimeMillis)
		}
		r.roundTrip(md)
		time.Sleep(800 * time.Millisecond)
		r.send(md)
		r.expectClosed()
	})
	t.Run("re-authentication extends the session", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		for i := 0; i < 3; i++ {
			if _, ar := saslRaw(t, r, "PLAIN", []byte("\x00alice\x00alice-secret")); ar.ErrorCode != 0 {
				t.Fatalf("login %d: %d", i, ar.ErrorCode)
			}
			time.Sleep(400 * time.Millisecond)
			if resp := r.roundTrip(md).(*kmsg.MetadataResponse); len(resp.Brokers) != 3 {
				t.Fatalf("metadata %d", i)
			}
		}
	})
	t.Run("kgo re-authenticates by itself", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.Bootstrap()), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		deadline := time.Now().Add(2500 * time.Millisecond)
		n := 0
		for time.Now().Before(deadline) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatalf("produce %d across session lifetimes: %v", n, err)
			}
			n++
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// --- mTLS ---

type pki struct {
	caCert *x509.Certificate
	caKey  ed25519.PrivateKey
	dir    string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{caCert: ca, caKey: key, dir: t.TempDir()}
	writePEM(t, filepath.Join(p.dir, "ca.pem"), "CERTIFICATE", der)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes name.pem and name-key.pem signed by the CA (or self-signed
// when selfSigned) and returns the pair.
func (p *pki) issue(t *testing.T, name string, subject pkix.Name, server, selfSigned bool) tls.Certificate {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	parent, signer := p.caCert, p.caKey
	if selfSigned {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	writePEM(t, filepath.Join(p.dir, name+".pem"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(p.dir, name+"-key.pem"), "PRIVATE KEY", kder)
	c, err := tls.LoadX509KeyPair(filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMTLS(t *testing.T) {
	p := newPKI(t)
	p.issue(t, "server", pkix.Name{CommonName: "kguard"}, true, false)
	events := &eventLog{mu: make(chan struct{}, 1)}
	env := harness.Start(t, harness.Options{
		NoAnonymous: true, Auditor: events,
		Kfake: []kfake.Opt{kfake.SeedTopics(3, "t")},
		Mutate: func(c *config.Config) {
			c.Listen.TLS = &config.ServerTLS{CertFile: filepath.Join(p.dir, "server.pem"), KeyFile: filepath.Join(p.dir, "server-key.pem"),
				ClientCAFile: filepath.Join(p.dir, "ca.pem")}
			c.Listen.Auth.MappingRules = []string{"RULE:^CN=([^,]+),OU=payments.*$/$1/L", "DEFAULT"}
		},
	})
	roots := x509.NewCertPool()
	roots.AddCert(p.caCert)
	client := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	good := p.issue(t, "client", pkix.Name{CommonName: "Ledger-Svc", OrganizationalUnit: []string{"payments"}}, false, false)
	if err := produceConsume(t, env.Bootstrap(), nil, kgo.DialTLSConfig(client(good))); err != nil {
		t.Fatalf("trusted client certificate: %v", err)
	}
	var principals []string
	for _, ev := range events.of(audit.EventConnectionOpen) {
		principals = append(principals, ev.Who.Principal)
	}
	if !contains(principals, "User:ledger-svc") {
		t.Fatalf("mTLS principal not mapped by the rule: %v", principals)
	}
	rogue := p.issue(t, "rogue", pkix.Name{CommonName: "rogue"}, false, true)
	if err := produceConsumeWithin(t, 3*time.Second, env.Bootstrap(), nil, kgo.DialTLSConfig(client(rogue))); err == nil {
		t.Fatal("self-signed client certificate accepted")
	}
	if err := produceConsumeWithin(t, 3*time.Second, env.Bootstrap(), nil, kgo.DialTLSConfig(&tls.Config{RootCAs: roots})); err == nil {
		t.Fatal("client without certificate accepted")
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// kguard terminates SASL, so it advertises its own SASL ranges whatever the
// upstream says, and supports SaslHandshake v0 (bare tokens, KIP-43).
func TestSASLHandshakeV0BareTokens(t *testing.T) {
	e := startAuthEnv(t, nil)
	e.events.mu = make(chan struct{}, 1)
	r := dialRaw(t, e.Bootstrap())
	av := apiVersions(t, r, 3)
	ranges := map[int16][2]int16{}
	for _, k := range av.ApiKeys {
		ranges[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if ranges[17] != [2]int16{0, 1} || ranges[36] != [2]int16{0, 2} {
		t.Fatalf("SASL ranges advertised: handshake %v, authenticate %v", ranges[17], ranges[36])
	}
	login := func(r *raw, pass string) {
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.SetVersion(0)
		hs.Mechanism = "PLAIN"
		if hr := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse); hr.ErrorCode != 0 {
			t.Fatalf("handshake v0: error %d", hr.ErrorCode)
		}
		if _, err := r.c.Write(wire.AppendFrame(nil, []byte("\x00alice\x00"+pass))); err != nil {
			t.Fatal(err)
		}
	}
	login(r, "alice-secret")
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := wire.ReadFrame(r.c, r.pool, 1<<20)
	if err != nil {
		t.Fatalf("bare token answer: %v", err)
	}
	if len(f.Body()) != 0 {
		t.Fatalf("PLAIN answer %q, want empty", f.Body())
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	if resp := r.roundTrip(md).(*kmsg.MetadataResponse); len(resp.Brokers) != 3 {
		t.Fatalf("metadata after a v0 login: %d brokers", len(resp.Brokers))
	}
	bad := dialRaw(t, e.Bootstrap())
	login(bad, "wrong")
	bad.expectClosed()
}
