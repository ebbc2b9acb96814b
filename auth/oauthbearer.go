package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// DefaultAlgorithms are the JWS algorithms accepted when OAuthConfig lists
// none. Symmetric (HS*) algorithms and "none" are never accepted.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// OAuthConfig configures OAUTHBEARER token validation.
type OAuthConfig struct {
	// JWKSFile or JWKSURL (exactly one) is where the signing keys are.
	JWKSFile string
	JWKSURL  string
	// HTTPClient fetches JWKSURL; nil means a client with a 10s timeout.
	HTTPClient *http.Client
	// AllowInsecureHTTP permits an http:// JWKSURL (default: https only).
	AllowInsecureHTTP bool
	// RefreshInterval is how old the key set may get before a login
	// refreshes it (default 1h).
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two fetches triggered by
	// unknown kids or failed refreshes (default 10s).
	MinRefreshInterval time.Duration
	// Issuer is the required "iss" (required).
	Issuer string
	// Audiences: the token's "aud" must contain one of them (required).
	Audiences []string
	// ClockSkew is the leeway for exp/nbf/iat. 0 means the default of 30s;
	// a negative value means no leeway.
	ClockSkew time.Duration
	// Algorithms lists the accepted JWS algorithms (default
	// DefaultAlgorithms). Only asymmetric algorithms are allowed.
	Algorithms []string
	// PrincipalClaim names the string claim that becomes the principal name
	// (default "sub").
	PrincipalClaim string
	// Logger receives JWKS refresh logs.
	Logger *zap.Logger

	now func() time.Time // tests
}

// TokenValidator validates OAUTHBEARER JWTs against a JWKS.
type TokenValidator struct {
	cfg    OAuthConfig
	keys   *jwksCache
	parser *jwt.Parser
	now    func() time.Time
}

// NewTokenValidator checks cfg and loads the JWKS once; it fails when the key
// set cannot be loaded (fail closed).
func NewTokenValidator(ctx context.Context, cfg OAuthConfig) (*TokenValidator, error) {
	if (cfg.JWKSFile == "") == (cfg.JWKSURL == "") {
		return nil, errors.New("auth: OAUTHBEARER needs exactly one of a JWKS file or a JWKS URL")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("auth: OAUTHBEARER needs an expected issuer")
	}
	if len(cfg.Audiences) == 0 || slices.Contains(cfg.Audiences, "") {
		return nil, errors.New("auth: OAUTHBEARER needs one or more non-empty expected audiences")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = time.Hour
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 10 * time.Second
	}
	switch {
	case cfg.ClockSkew == 0:
		cfg.ClockSkew = 30 * time.Second
	case cfg.ClockSkew < 0:
		cfg.ClockSkew = 0
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	for _, a := range cfg.Algorithms {
		if !slices.Contains(DefaultAlgorithms, a) {
			return nil, fmt.Errorf("auth: JWS algorithm %q not allowed (asymmetric algorithms only: %v)", a, DefaultAlgorithms)
		}
	}
	if cfg.PrincipalClaim == "" {
		cfg.PrincipalClaim = "sub"
	}
	c := &jwksCache{
		refreshInterval: cfg.RefreshInterval,
		minRefresh:      cfg.MinRefreshInterval,
		now:             cfg.now,
		logger:          cfg.Logger,
	}
	if cfg.JWKSFile != "" {
		c.source = cfg.JWKSFile
		c.fetch = newFileFetcher(cfg.JWKSFile)
	} else {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS URL: %w", err)
		}
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && cfg.AllowInsecureHTTP:
			cfg.Logger.Warn("JWKS fetched over plain http", zap.String("url", cfg.JWKSURL))
		default:
			return nil, fmt.Errorf("auth: JWKS URL scheme %q not allowed (https, or http with AllowInsecureHTTP)", u.Scheme)
		}
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		c.source = u.Redacted()
		c.fetch = newURLFetcher(cfg.JWKSURL, client)
	}
	if err := c.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("auth: load JWKS: %w", err)
	}
	v := &TokenValidator{cfg: cfg, keys: c, now: cfg.now}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audiences...),
		jwt.WithLeeway(cfg.ClockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(cfg.now),
	)
	return v, nil
}

// RefreshKeys fetches the JWKS now.
func (v *TokenValidator) RefreshKeys(ctx context.Context) error { return v.keys.Refresh(ctx) }

// Validate checks a compact JWS token and returns its principal. A failure
// is an *AuthError whose Reason wraps the jwt/v5 error (errors.Is with
// jwt.ErrTokenExpired, jwt.ErrTokenInvalidAudience, ...).
func (v *TokenValidator) Validate(ctx context.Context, token string) (*Principal, error) {
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return v.keys.key(ctx, kid, t.Method.Alg())
	})
	if err != nil {
		return nil, authFailed("Authentication failed: invalid OAUTHBEARER token ("+tokenFailure(err)+")", err)
	}
	name, _ := claims[v.cfg.PrincipalClaim].(string)
	if name == "" {
		return nil, authFailed("Authentication failed: invalid OAUTHBEARER token (no principal claim)",
			fmt.Errorf("claim %q missing or not a non-empty string", v.cfg.PrincipalClaim))
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, authFailed("Authentication failed: invalid OAUTHBEARER token (no expiry)", errors.New("exp missing"))
	}
	return &Principal{Name: name, Mechanism: MechOAUTHBEARER, ExpiresAt: exp.Time}, nil
}

// tokenFailure names the failed check, safe to show to the client.
func tokenFailure(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, errUnknownKey):
		return "unknown signing key"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "invalid signature"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not yet valid"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "invalid issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "invalid audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing required claim"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable token"
	}
	return "invalid token"
}

// OAuthBearerMessage is a parsed OAUTHBEARER client initial response.
type OAuthBearerMessage struct {
	AuthzID    string
	Token      string
	Extensions map[string]string // SASL extensions (KIP-342), without "auth"
}

var (
	oauthKeyRe   = regexp.MustCompile(`^[A-Za-z]+$`)
	oauthValueRe = regexp.MustCompile(`^[\x21-\x7E \t\r\n]+$`)
	b64tokenRe   = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)
)

// ParseOAuthBearer parses an OAUTHBEARER client initial response (RFC 7628
// section 3.1): a GS2 header `n,[a=authzid],` followed by
// `\x01key=value\x01...\x01` with a mandatory `auth=Bearer <token>`.
// Channel binding ("p=") is not supported.
func ParseOAuthBearer(msg []byte) (*OAuthBearerMessage, error) {
	if len(msg) > maxSASLMessage {
		return nil, fmt.Errorf("OAUTHBEARER message of %d bytes exceeds %d", len(msg), maxSASLMessage)
	}
	s := string(msg)
	// gs2-cb-flag
	if len(s) < 2 || (s[0] != 'n' && s[0] != 'y') || s[1] != ',' {
		if strings.HasPrefix(s, "p=") {
			return nil, errors.New("OAUTHBEARER channel binding is not supported")
		}
		return nil, errors.New("OAUTHBEARER message does not start with a GS2 header")
	}
	s = s[2:]
	end := strings.IndexByte(s, ',')
	if end < 0 {
		return nil, errors.New("OAUTHBEARER GS2 header is not terminated")
	}
	out := &OAuthBearerMessage{}
	if zid := s[:end]; zid != "" {
		if !strings.HasPrefix(zid, "a=") {
			return nil, errors.New("OAUTHBEARER GS2 header has an invalid authzid")
		}
		name, err := decodeSASLName(zid[2:])
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, errors.New("OAUTHBEARER authzid is empty")
		}
		out.AuthzID = name
	}
	s = s[end+1:]
	if !strings.HasPrefix(s, "\x01") || !strings.HasSuffix(s, "\x01\x01") || len(s) < 3 {
		return nil, errors.New("OAUTHBEARER key/value pairs are not framed by \\x01")
	}
	body := s[1 : len(s)-2]
	seen := map[string]bool{}
	for _, kv := range strings.Split(body, "\x01") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !oauthKeyRe.MatchString(k) {
			return nil, errors.New("OAUTHBEARER has an invalid key/value pair")
		}
		if !oauthValueRe.MatchString(v) {
			return nil, fmt.Errorf("OAUTHBEARER value of %q is invalid", k)
		}
		if seen[k] {
			return nil, fmt.Errorf("OAUTHBEARER key %q repeated", k)
		}
		seen[k] = true
		if k == "auth" {
			scheme, tok, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || !b64tokenRe.MatchString(tok) {
				return nil, errors.New("OAUTHBEARER auth value is not `Bearer <token>`")
			}
			out.Token = tok
			continue
		}
		if out.Extensions == nil {
			out.Extensions = map[string]string{}
		}
		out.Extensions[k] = v
	}
	if out.Token == "" {
		return nil, errors.New("OAUTHBEARER message has no auth key")
	}
	return out, nil
}

// decodeSASLName reverses the =2C / =3D escaping of a GS2 saslname.
func decodeSASLName(s string) (string, error) {
	if strings.IndexByte(s, ',') >= 0 {
		return "", errors.New("unescaped comma in saslname")
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("invalid escape in saslname")
		}
		i += 2
	}
	return b.String(), nil
}

// oauthErrorStatus is the RFC 7628 section 3.2.2 error the server sends
// before failing the exchange.
var oauthErrorStatus = []byte(`{"status":"invalid_token"}`)

type oauthMechanism struct {
	v *TokenValidator
}

// NewOAuthBearer returns the OAUTHBEARER mechanism validating tokens with v.
func NewOAuthBearer(v *TokenValidator) Mechanism {
	return &oauthMechanism{v: v}
}

func (m *oauthMechanism) Name() string { return MechOAUTHBEARER }

func (m *oauthMechanism) Start(context.Context) Exchange { return &oauthExchange{m: m} }

type oauthExchange struct {
	m       *oauthMechanism
	state   int // 0 initial, 1 error status sent, 2 done
	pending error
}

func (e *oauthExchange) Step(ctx context.Context, in []byte) ([]byte, bool, *Principal, error) {
	switch e.state {
	case 0:
		msg, err := ParseOAuthBearer(in)
		if err != nil {
			e.state = 2
			return nil, true, nil, authFailed("Authentication failed: invalid OAUTHBEARER message", err)
		}
		p, err := e.m.v.Validate(ctx, msg.Token)
		if err != nil {
			if !IsAuthError(err) {
				e.state = 2
				return nil, true, nil, err
			}
			// RFC 7628: send the error status; the client answers with a
			// lone \x01 and only then does the exchange fail.
			e.state = 1
			e.pending = err
			return bytes.Clone(oauthErrorStatus), false, nil, nil
		}
		e.state = 2
		if msg.AuthzID != "" && msg.AuthzID != p.Name {
			return nil, true, nil, authFailed("Authentication failed: authorization id differs from the token's principal",
				fmt.Errorf("OAUTHBEARER authzid %q differs from principal %q", msg.AuthzID, p.Name))
		}
		return nil, true, p, nil
	case 1:
		e.state = 2
		if !bytes.Equal(in, []byte{0x01}) {
			return nil, true, nil, authFailed(e.pending.Error(), fmt.Errorf("client did not acknowledge the error status: %w", e.pending))
		}
		return nil, true, nil, e.pending
	}
	return nil, true, nil, errExchangeDone(MechOAUTHBEARER)
}
