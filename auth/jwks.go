package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// maxJWKSSize caps a JWKS document.
const maxJWKSSize = 1 << 20

// minRSABits is the smallest RSA modulus accepted in a JWKS.
const minRSABits = 2048

// errUnknownKey is the reason when no JWKS key matches a token's kid/alg.
var errUnknownKey = errors.New("no JWKS key matches the token's kid and alg")

// JWK is one usable public key from a JWKS.
type JWK struct {
	KID string
	Alg string // optional "alg" member; when set the token alg must equal it
	Key crypto.PublicKey
}

// JWKS is a parsed JSON Web Key Set, with only the keys usable for
// signature verification (RSA, EC P-256/384/521, OKP Ed25519).
type JWKS struct {
	Keys []JWK
	// Skipped counts keys left out (private, symmetric, encryption-only,
	// unknown type or malformed).
	Skipped int
}

type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// ParseJWKS parses a JWKS document (RFC 7517). Keys that cannot be used for
// signature verification are skipped and counted; a document with no usable
// key is an error.
func ParseJWKS(data []byte) (*JWKS, error) {
	if len(data) > maxJWKSSize {
		return nil, fmt.Errorf("JWKS of %d bytes exceeds %d", len(data), maxJWKSSize)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	out := &JWKS{}
	for _, raw := range doc.Keys {
		var k rawJWK
		if err := json.Unmarshal(raw, &k); err != nil {
			out.Skipped++
			continue
		}
		pub, err := k.publicKey()
		if err != nil {
			out.Skipped++
			continue
		}
		out.Keys = append(out.Keys, JWK{KID: k.Kid, Alg: k.Alg, Key: pub})
	}
	if len(out.Keys) == 0 {
		return nil, fmt.Errorf("JWKS has no usable signature keys (%d skipped)", out.Skipped)
	}
	return out, nil
}

func (k *rawJWK) publicKey() (crypto.PublicKey, error) {
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Errorf("key use %q", k.Use)
	}
	if k.D != "" {
		return nil, errors.New("private key in JWKS")
	}
	switch k.Kty {
	case "RSA":
		n, err := b64url(k.N)
		if err != nil || len(n) == 0 {
			return nil, errors.New("bad RSA modulus")
		}
		e, err := b64url(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA exponent")
		}
		var exp int
		for _, b := range e {
			exp = exp<<8 | int(b)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
		if pub.N.BitLen() < minRSABits || exp < 3 || exp%2 == 0 {
			return nil, errors.New("weak RSA key")
		}
		return pub, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("EC curve %q", k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := b64url(k.X)
		y, err2 := b64url(k.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad EC coordinates")
		}
		pt := make([]byte, 0, 1+2*size)
		pt = append(pt, 4)
		pt = append(pt, x...)
		pt = append(pt, y...)
		return ecdsa.ParseUncompressedPublicKey(curve, pt)
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("OKP curve %q", k.Crv)
		}
		x, err := b64url(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("key type %q", k.Kty)
}

// keyFitsAlg reports whether a key can verify JWS algorithm alg.
func keyFitsAlg(k JWK, alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			return alg == "ES256"
		case elliptic.P384():
			return alg == "ES384"
		case elliptic.P521():
			return alg == "ES512"
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// find returns the key for kid and alg. Without a kid, the key is used only
// when exactly one key fits alg.
func (s *JWKS) find(kid, alg string) (crypto.PublicKey, bool) {
	var found crypto.PublicKey
	n := 0
	for _, k := range s.Keys {
		if kid != "" && k.KID != kid {
			continue
		}
		if !keyFitsAlg(k, alg) {
			continue
		}
		if kid != "" {
			return k.Key, true
		}
		found = k.Key
		n++
	}
	return found, n == 1
}

// jwksCache holds the current key set, refreshes it periodically (on use)
// and on an unknown kid (rate-limited).
type jwksCache struct {
	source          string
	fetch           func(ctx context.Context) ([]byte, error)
	refreshInterval time.Duration
	minRefresh      time.Duration
	now             func() time.Time
	logger          *zap.Logger

	set       atomic.Pointer[JWKS]
	fetchedAt atomic.Int64 // unix nanos of the last successful fetch

	mu          sync.Mutex // serializes fetches
	lastAttempt time.Time  // last fetch attempt (for rate limiting)
	fetches     atomic.Int64
}

func newFileFetcher(path string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open JWKS file: %w", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxJWKSSize+1))
		if err != nil {
			return nil, fmt.Errorf("read JWKS file: %w", err)
		}
		return data, nil
	}
}

func newURLFetcher(url string, client *http.Client) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("JWKS request: %w", err)
		}
		req.Header.Set("Accept", "application/json, application/jwk-set+json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch JWKS: HTTP status %d", resp.StatusCode)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
		if err != nil {
			return nil, fmt.Errorf("read JWKS: %w", err)
		}
		return data, nil
	}
}

// refreshLocked fetches and installs a new key set; c.mu must be held.
func (c *jwksCache) refreshLocked(ctx context.Context, why string) error {
	c.lastAttempt = c.now()
	c.fetches.Add(1)
	data, err := c.fetch(ctx)
	if err == nil {
		var set *JWKS
		set, err = ParseJWKS(data)
		if err == nil {
			c.set.Store(set)
			c.fetchedAt.Store(c.now().UnixNano())
			c.logger.Info("JWKS refreshed", zap.String("source", c.source), zap.String("why", why),
				zap.Int("keys", len(set.Keys)), zap.Int("skipped", set.Skipped))
			return nil
		}
	}
	c.logger.Warn("JWKS refresh failed; keeping previous keys", zap.String("source", c.source), zap.String("why", why), zap.Error(err))
	return err
}

// Refresh fetches the key set now.
func (c *jwksCache) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshLocked(ctx, "explicit")
}

// key returns the public key for a token's kid and alg.
func (c *jwksCache) key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	now := c.now()
	// Periodic refresh: one login does it while the others go on with the
	// cached keys (TryLock), so a slow or failing IdP does not stall logins.
	if now.Sub(time.Unix(0, c.fetchedAt.Load())) > c.refreshInterval && c.mu.TryLock() {
		// A failed periodic refresh is retried no more often than minRefresh.
		if now.Sub(time.Unix(0, c.fetchedAt.Load())) > c.refreshInterval && now.Sub(c.lastAttempt) >= c.minRefresh {
			_ = c.refreshLocked(ctx, "periodic")
		}
		c.mu.Unlock()
	}
	if set := c.set.Load(); set != nil {
		if k, ok := set.find(kid, alg); ok {
			return k, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Another login may have refreshed while we waited.
	if set := c.set.Load(); set != nil {
		if k, ok := set.find(kid, alg); ok {
			return k, nil
		}
	}
	if c.now().Sub(c.lastAttempt) < c.minRefresh {
		return nil, fmt.Errorf("%w (kid %q, alg %s; refresh rate-limited)", errUnknownKey, kid, alg)
	}
	if err := c.refreshLocked(ctx, "unknown kid"); err != nil {
		return nil, fmt.Errorf("%w (kid %q, alg %s): %w", errUnknownKey, kid, alg, err)
	}
	if k, ok := c.set.Load().find(kid, alg); ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w (kid %q, alg %s)", errUnknownKey, kid, alg)
}
