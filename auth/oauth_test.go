package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

const (
	testIssuer   = "https://idp.example.com/realms/kafka"
	testAudience = "kguard"
)

type signer struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

var (
	keysOnce sync.Once
	rsa1     signer
	rsa2     signer
	ec1      signer
	ed1      signer
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		mk := func() *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			return k
		}
		rsa1 = signer{"rsa-1", jwt.SigningMethodRS256, mk()}
		rsa2 = signer{"rsa-2", jwt.SigningMethodRS256, mk()}
		eck, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ec1 = signer{"ec-1", jwt.SigningMethodES256, eck}
		_, edk, _ := ed25519.GenerateKey(rand.Reader)
		ed1 = signer{"ed-1", jwt.SigningMethodEdDSA, edk}
	})
}

// jwksJSON encodes the public keys with go-jose (an independent JWK encoder).
func jwksJSON(t testing.TB, signers ...signer) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, s := range signers {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: s.priv.Public(), KeyID: s.kid, Algorithm: s.method.Alg(), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func token(t testing.TB, s signer, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.method, claims)
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func claims(now time.Time, mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": testIssuer,
		"aud": []string{"other", testAudience},
		"sub": "svc-orders",
		"iat": now.Add(-time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// jwksServer is an https JWKS endpoint whose content can be rotated.
type jwksServer struct {
	*httptest.Server
	body atomic.Pointer[[]byte]
	hits atomic.Int64
	// gate, when set, makes requests announce themselves on entered and
	// wait for release.
	gate atomic.Pointer[jwksGate]
}

type jwksGate struct{ entered, release chan struct{} }

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.body.Store(&body)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if g := s.gate.Load(); g != nil {
			g.entered <- struct{}{}
			<-g.release
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*s.body.Load())
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte) { s.body.Store(&body) }

// fakeClock is a settable clock for refresh and expiry tests.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newValidator(t testing.TB, srv *jwksServer, clk *fakeClock, mod func(*OAuthConfig)) *TokenValidator {
	t.Helper()
	cfg := OAuthConfig{
		JWKSURL:            srv.URL + "/jwks.json",
		HTTPClient:         srv.Client(),
		Issuer:             testIssuer,
		Audiences:          []string{testAudience},
		MinRefreshInterval: 5 * time.Second,
		now:                clk.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewTokenValidator(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func oauthLogin(t testing.TB, v *TokenValidator, zid, tok string) (*Principal, error) {
	t.Helper()
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechOAUTHBEARER}, OAuthBearer: v})
	return runSASL(context.Background(), oauth.Auth{Zid: zid, Token: tok}.AsMechanism(), mustStart(t, a, MechOAUTHBEARER))
}

func TestOAuthBearerWithFranzGoClient(t *testing.T) {
	testKeys(t)
	clk := newFakeClock()
	srv := newJWKSServer(t, jwksJSON(t, rsa1, ec1, ed1))
	v := newValidator(t, srv, clk, nil)
	now := clk.Now()

	for _, s := range []signer{rsa1, ec1, ed1} {
		exp := now.Add(7 * time.Minute).Truncate(time.Second)
		p, err := oauthLogin(t, v, "", token(t, s, claims(now, func(c jwt.MapClaims) { c["exp"] = exp.Unix() })))
		if err != nil {
			t.Fatalf("%s: valid token refused: %v", s.method.Alg(), err)
		}
		if p.Name != "svc-orders" || p.Mechanism != MechOAUTHBEARER || !p.ExpiresAt.Equal(exp) {
			t.Fatalf("%s: principal %+v", s.method.Alg(), p)
		}
		if got := sessionLifetimeAt(p, time.Hour, now); got != exp.Sub(now) {
			t.Fatalf("session lifetime %v, want %v", got, exp.Sub(now))
		}
		if got := sessionLifetimeAt(p, time.Minute, now); got != time.Minute {
			t.Fatalf("session lifetime capped %v, want 1m", got)
		}
	}
	// authzid equal to the principal is fine, another one is refused.
	if _, err := oauthLogin(t, v, "svc-orders", token(t, rsa1, claims(now, nil))); err != nil {
		t.Fatalf("matching authzid: %v", err)
	}
	if _, err := oauthLogin(t, v, "admin", token(t, rsa1, claims(now, nil))); !IsAuthError(err) {
		t.Fatalf("mismatching authzid: %v", err)
	}
	// A token expired by less than the 30s default clock skew is accepted.
	if _, err := oauthLogin(t, v, "", token(t, rsa1, claims(now, func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }))); err != nil {
		t.Fatalf("token within clock skew refused: %v", err)
	}
}

func TestOAuthBearerRejections(t *testing.T) {
	testKeys(t)
	clk := newFakeClock()
	srv := newJWKSServer(t, jwksJSON(t, rsa1, ec1))
	v := newValidator(t, srv, clk, nil)
	now := clk.Now()
	forged := signer{kid: rsa1.kid, method: jwt.SigningMethodRS256, priv: rsa2.priv}

	cases := []struct {
		name    string
		tok     string
		wantErr error
		wantMsg string
	}{
		{"expired", token(t, rsa1, claims(now, func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), jwt.ErrTokenExpired, "token expired"},
		{"no exp", token(t, rsa1, claims(now, func(c jwt.MapClaims) { delete(c, "exp") })), jwt.ErrTokenRequiredClaimMissing, "missing required claim"},
		{"not yet valid", token(t, rsa1, claims(now, func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() })), jwt.ErrTokenNotValidYet, "not yet valid"},
		{"wrong audience", token(t, rsa1, claims(now, func(c jwt.MapClaims) { c["aud"] = "someone-else" })), jwt.ErrTokenInvalidAudience, "invalid audience"},
		{"no audience", token(t, rsa1, claims(now, func(c jwt.MapClaims) { delete(c, "aud") })), jwt.ErrTokenRequiredClaimMissing, "missing required claim"},
		{"wrong issuer", token(t, rsa1, claims(now, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), jwt.ErrTokenInvalidIssuer, "invalid issuer"},
		{"bad signature", token(t, forged, claims(now, nil)), jwt.ErrTokenSignatureInvalid, "invalid signature"},
		{"unknown kid", token(t, rsa2, claims(now, nil)), errUnknownKey, "unknown signing key"},
		{"alg/key mismatch", token(t, signer{kid: ec1.kid, method: jwt.SigningMethodRS256, priv: rsa1.priv}, claims(now, nil)), errUnknownKey, "unknown signing key"},
		{"no principal", token(t, rsa1, claims(now, func(c jwt.MapClaims) { delete(c, "sub") })), nil, "no principal claim"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := oauthLogin(t, v, "", c.tok)
			if err == nil || !IsAuthError(err) {
				t.Fatalf("err = %v, want AuthError", err)
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v (%s), want %v", err, err.(*AuthError).LogString(), c.wantErr)
			}
			if !strings.Contains(ClientMessage(err), c.wantMsg) {
				t.Fatalf("client message %q lacks %q", ClientMessage(err), c.wantMsg)
			}
			if strings.Contains(ClientMessage(err), c.tok) {
				t.Fatal("token leaked into the client message")
			}
		})
	}
}

func TestOAuthBearerAlgorithmConfusion(t *testing.T) {
	testKeys(t)
	clk := newFakeClock()
	srv := newJWKSServer(t, jwksJSON(t, rsa1))
	v := newValidator(t, srv, clk, func(c *OAuthConfig) { c.Algorithms = []string{"RS256"} })
	now := clk.Now()
	// HS256 "signed" with the RSA public key bytes (classic key confusion).
	pubJSON := jwksJSON(t, rsa1)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(now, nil))
	hs.Header["kid"] = rsa1.kid
	hsTok, _ := hs.SignedString(pubJSON)
	// alg none.
	none := jwt.NewWithClaims(jwt.SigningMethodNone, claims(now, nil))
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	// ES256 while only RS256 is allowed.
	for name, tok := range map[string]string{"HS256": hsTok, "none": noneTok} {
		if _, err := v.Validate(context.Background(), tok); !IsAuthError(err) {
			t.Errorf("%s token: %v", name, err)
		}
	}
	if _, err := NewTokenValidator(context.Background(), OAuthConfig{JWKSURL: srv.URL, HTTPClient: srv.Client(), Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"HS256"}}); err == nil {
		t.Error("HS256 accepted in config")
	}
}

func TestOAuthBearerKeyRotation(t *testing.T) {
	testKeys(t)
	clk := newFakeClock()
	srv := newJWKSServer(t, jwksJSON(t, rsa1))
	v := newValidator(t, srv, clk, nil)
	now := clk.Now()
	if srv.hits.Load() != 1 {
		t.Fatalf("initial fetches = %d, want 1", srv.hits.Load())
	}
	tok2 := token(t, rsa2, claims(now, nil))

	// Unknown kid right after the initial load: rate-limited, no fetch.
	if _, err := oauthLogin(t, v, "", tok2); !errors.Is(err, errUnknownKey) || srv.hits.Load() != 1 {
		t.Fatalf("rsa-2 at start: err %v fetches %d", err, srv.hits.Load())
	}
	clk.Advance(6 * time.Second)
	// Unknown kid: one refresh, still unknown.
	if _, err := oauthLogin(t, v, "", tok2); !errors.Is(err, errUnknownKey) {
		t.Fatalf("rsa-2 before rotation: %v", err)
	}
	if srv.hits.Load() != 2 {
		t.Fatalf("unknown kid should trigger one refresh; fetches = %d", srv.hits.Load())
	}
	// The IdP rotates; within the rate limit no new fetch happens.
	srv.set(jwksJSON(t, rsa1, rsa2))
	clk.Advance(time.Second)
	if _, err := oauthLogin(t, v, "", tok2); !errors.Is(err, errUnknownKey) {
		t.Fatalf("rate-limited refresh: %v", err)
	}
	if srv.hits.Load() != 2 {
		t.Fatalf("refresh not rate-limited: fetches = %d", srv.hits.Load())
	}
	// After the rate limit, the unknown kid triggers a refresh that finds it.
	clk.Advance(5 * time.Second)
	p, err := oauthLogin(t, v, "", tok2)
	if err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if p.Name != "svc-orders" || srv.hits.Load() != 3 {
		t.Fatalf("principal %+v fetches %d", p, srv.hits.Load())
	}
	// Known kids need no fetch.
	if _, err := oauthLogin(t, v, "", token(t, rsa1, claims(clk.Now(), nil))); err != nil || srv.hits.Load() != 3 {
		t.Fatalf("known kid: err %v fetches %d", err, srv.hits.Load())
	}
	// Periodic refresh: after RefreshInterval (1h) the next login refetches;
	// the old key is gone from the IdP and stops working.
	srv.set(jwksJSON(t, rsa2))
	clk.Advance(time.Hour + time.Second)
	if _, err := oauthLogin(t, v, "", token(t, rsa1, claims(clk.Now(), nil))); !errors.Is(err, errUnknownKey) {
		t.Fatalf("removed key still accepted: %v", err)
	}
	if srv.hits.Load() != 4 {
		t.Fatalf("periodic refresh: fetches = %d, want 4", srv.hits.Load())
	}
	// A failing endpoint keeps the cached keys.
	srv.set([]byte("not json"))
	clk.Advance(2 * time.Hour)
	if _, err := oauthLogin(t, v, "", token(t, rsa2, claims(clk.Now(), nil))); err != nil {
		t.Fatalf("cached keys dropped after a failed refresh: %v", err)
	}
}

func TestOAuthBearerConcurrentUnknownKidSingleFetch(t *testing.T) {
	testKeys(t)
	clk := newFakeClock()
	srv := newJWKSServer(t, jwksJSON(t, rsa1))
	v := newValidator(t, srv, clk, nil)
	srv.set(jwksJSON(t, rsa1, rsa2))
	clk.Advance(10 * time.Second)
	tok := token(t, rsa2, claims(clk.Now(), nil))
	var wg sync.WaitGroup
	var fails atomic.Int64
	for range 16 {
		wg.Go(func() {
			if _, err := v.Validate(context.Background(), tok); err != nil {
				fails.Add(1)
			}
		})
	}
	wg.Wait()
	if fails.Load() != 0 || srv.hits.Load() != 2 {
		t.Fatalf("fails %d, fetches %d (want 0 and 2)", fails.Load(), srv.hits.Load())
	}
}

func TestOAuthBearerFileJWKSAndPrincipalClaim(t *testing.T) {
	testKeys(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksJSON(t, ed1), 0o644); err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	v, err := NewTokenValidator(context.Background(), OAuthConfig{
		JWKSFile: path, Issuer: testIssuer, Audiences: []string{testAudience},
		PrincipalClaim: "preferred_username", ClockSkew: -1, now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	p, err := oauthLogin(t, v, "", token(t, ed1, claims(now, func(c jwt.MapClaims) { c["preferred_username"] = "orders-app" })))
	if err != nil || p.Name != "orders-app" {
		t.Fatalf("p %+v err %v", p, err)
	}
	if _, err := oauthLogin(t, v, "", token(t, ed1, claims(now, nil))); !IsAuthError(err) {
		t.Fatalf("missing principal claim: %v", err)
	}
	// ClockSkew < 0: no leeway at all.
	if _, err := oauthLogin(t, v, "", token(t, ed1, claims(now, func(c jwt.MapClaims) {
		c["preferred_username"] = "x"
		c["exp"] = now.Add(-2 * time.Second).Unix()
	}))); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("expired token with no skew: %v", err)
	}
}

func TestOAuthBearerConfigErrors(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, rsa1))
	ctx := context.Background()
	base := OAuthConfig{JWKSURL: srv.URL, HTTPClient: srv.Client(), Issuer: testIssuer, Audiences: []string{testAudience}}
	if _, err := NewTokenValidator(ctx, base); err != nil {
		t.Fatalf("base config: %v", err)
	}
	for name, mod := range map[string]func(*OAuthConfig){
		"no source":     func(c *OAuthConfig) { c.JWKSURL = "" },
		"two sources":   func(c *OAuthConfig) { c.JWKSFile = "/x" },
		"plain http":    func(c *OAuthConfig) { c.JWKSURL = "http://127.0.0.1:1/jwks" },
		"no issuer":     func(c *OAuthConfig) { c.Issuer = "" },
		"no audience":   func(c *OAuthConfig) { c.Audiences = nil },
		"unreachable":   func(c *OAuthConfig) { c.JWKSURL = "https://127.0.0.1:1/jwks" },
		"untrusted TLS": func(c *OAuthConfig) { c.HTTPClient = &http.Client{} },
		"bad alg":       func(c *OAuthConfig) { c.Algorithms = []string{"none"} },
	} {
		cfg := base
		mod(&cfg)
		if _, err := NewTokenValidator(ctx, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOAuthBearerExchangeProtocol(t *testing.T) {
	testKeys(t)
	clk := newFakeClock()
	srv := newJWKSServer(t, jwksJSON(t, rsa1))
	v := newValidator(t, srv, clk, nil)
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechOAUTHBEARER}, OAuthBearer: v})
	ctx := context.Background()
	expired := token(t, rsa1, claims(clk.Now(), func(c jwt.MapClaims) { c["exp"] = clk.Now().Add(-time.Hour).Unix() }))

	ex := mustStart(t, a, MechOAUTHBEARER)
	out, done, p, err := ex.Step(ctx, []byte("n,,\x01auth=Bearer "+expired+"\x01\x01"))
	if err != nil || done || p != nil {
		t.Fatalf("first step on a bad token: done %v err %v", done, err)
	}
	var status map[string]string
	if json.Unmarshal(out, &status) != nil || status["status"] != "invalid_token" {
		t.Fatalf("error status %q", out)
	}
	_, done, p, err = ex.Step(ctx, []byte{0x01})
	if !done || p != nil || !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("second step: done %v p %v err %v", done, p, err)
	}
	if _, _, _, err := ex.Step(ctx, []byte{0x01}); err == nil {
		t.Fatal("step after done accepted")
	}
	// Malformed messages fail at once, without the JSON round trip.
	for _, m := range []string{"", "\x01", "n,,\x01\x01", "p=tls-unique,,\x01auth=Bearer x\x01\x01", "n,,\x01auth=Basic abc\x01\x01", "n,,auth=Bearer abc\x01\x01"} {
		_, done, _, err := mustStart(t, a, MechOAUTHBEARER).Step(ctx, []byte(m))
		if !done || !IsAuthError(err) {
			t.Errorf("message %q: done %v err %v", m, done, err)
		}
	}
}

func TestParseOAuthBearer(t *testing.T) {
	m, err := ParseOAuthBearer([]byte("n,a=us=2Cer=3D1,\x01auth=bearer abc.def-_~+/==\x01traceid=42 x\x01\x01"))
	if err != nil {
		t.Fatal(err)
	}
	if m.AuthzID != "us,er=1" || m.Token != "abc.def-_~+/==" || m.Extensions["traceid"] != "42 x" {
		t.Fatalf("%+v", m)
	}
	for _, bad := range []string{
		"n,a=x\x01auth=Bearer t\x01\x01",                // unterminated gs2 header
		"n,a=,\x01auth=Bearer t\x01\x01",                // empty authzid
		"n,b=x,\x01auth=Bearer t\x01\x01",               // not a=
		"n,a=a=2,\x01auth=Bearer t\x01\x01",             // bad escape
		"n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01", // duplicate
		"n,,\x01auth=Bearer t t\x01\x01",                // token with space
		"n,,\x01a1=x\x01auth=Bearer t\x01\x01",          // bad key
		"n,,\x01k=\x01auth=Bearer t\x01\x01",            // empty value
		"n,,\x01auth=Bearer t\x01\x01\x01",              // extra separator
		"n,,\x01k=v\x01\x01",                            // no auth
		"y",
	} {
		if _, err := ParseOAuthBearer([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOAuthBearerSlowPeriodicRefreshDoesNotBlockLogins(t *testing.T) {
	testKeys(t)
	clk := newFakeClock()
	srv := newJWKSServer(t, jwksJSON(t, rsa1))
	v := newValidator(t, srv, clk, nil)
	clk.Advance(2 * time.Hour) // keys are stale: the next login refreshes
	tok := token(t, rsa1, claims(clk.Now(), nil))
	g := &jwksGate{entered: make(chan struct{}), release: make(chan struct{})}
	srv.gate.Store(g)
	first := make(chan error, 1)
	go func() {
		_, err := v.Validate(context.Background(), tok)
		first <- err
	}()
	<-g.entered // the first login is now fetching, holding the refresh lock
	done := make(chan error, 1)
	go func() {
		_, err := v.Validate(context.Background(), tok)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("login during refresh: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a login with a cached key waited for the periodic JWKS refresh")
	}
	srv.gate.Store(nil)
	close(g.release)
	if err := <-first; err != nil {
		t.Fatalf("refreshing login: %v", err)
	}
}
