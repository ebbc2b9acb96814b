package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
)

// authn is the client-facing authentication of one proxy.
type authn struct {
	sasl   *auth.Authenticator // nil: no SASL
	mapper *auth.PrincipalMapper
	tls    *tls.Config // downstream TLS, nil for plaintext
	// anonymous is the principal of unauthenticated clients, nil when
	// they are refused.
	anonymous *auth.Principal
	maxLife   time.Duration
}

func newAuthn(ctx context.Context, c *config.Config, log *zap.Logger) (*authn, error) {
	a := &authn{maxLife: c.Listen.Auth.MaxSessionLifetime}
	if c.Listen.Auth.AllowAnonymous {
		a.anonymous = &auth.Principal{Name: c.Listen.Auth.AnonymousPrincipal, Mechanism: "ANONYMOUS"}
	}
	ac := &c.Listen.Auth
	if t := c.Listen.TLS; t != nil {
		mode := auth.ClientAuthMode(t.ClientAuth)
		if t.ClientCAFile == "" {
			mode = auth.ClientCertNone
		} else if mode == "" {
			mode = auth.ClientCertRequired
		}
		cfg, _, err := auth.NewServerTLSConfig(auth.TLSServerOptions{
			CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile,
			ClientAuth: mode, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("listen.tls: %w", err)
		}
		a.tls = cfg
		if t.ClientCAFile != "" {
			if a.mapper, err = auth.NewPrincipalMapper(auth.CertNameSource(ac.PrincipalSource), ac.MappingRules); err != nil {
				return nil, fmt.Errorf("listen.auth.mapping_rules: %w", err)
			}
		}
	}
	if len(ac.SASLMechanisms) == 0 {
		return a, nil
	}
	cfg := auth.Config{Mechanisms: ac.SASLMechanisms}
	if ac.CredentialsFile != "" {
		store, err := auth.NewCredentialStore(ac.CredentialsFile, log)
		if err != nil {
			return nil, fmt.Errorf("listen.auth.credentials_file: %w", err)
		}
		cfg.Credentials = store
	}
	if o := ac.OAuth; o != nil {
		v, err := auth.NewTokenValidator(ctx, auth.OAuthConfig{
			JWKSFile: o.JWKSFile, JWKSURL: o.JWKSURL, AllowInsecureHTTP: o.AllowInsecureHTTP,
			RefreshInterval: o.RefreshInterval, Issuer: o.Issuer, Audiences: o.Audiences,
			ClockSkew: o.ClockSkew, Algorithms: o.Algorithms, PrincipalClaim: o.PrincipalClaim, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("listen.auth.oauth: %w", err)
		}
		cfg.OAuthBearer = v
	}
	sa, err := auth.NewAuthenticator(cfg)
	if err != nil {
		return nil, fmt.Errorf("listen.auth: %w", err)
	}
	a.sasl = sa
	return a, nil
}

// initial is the principal a new connection has before any SASL exchange:
// its mTLS identity when SASL is off, ANONYMOUS where allowed, else none.
func (a *authn) initial(c any) (*auth.Principal, error) {
	if a.sasl != nil {
		return nil, nil
	}
	if tc, ok := c.(*tls.Conn); ok && a.mapper != nil {
		p, err := auth.PrincipalFromTLS(tc.ConnectionState(), a.mapper)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, auth.ErrNoClientCertificate) {
			return nil, err
		}
	}
	if a.anonymous != nil {
		return a.anonymous, nil
	}
	return nil, errors.New("no client certificate, no SASL mechanism configured, and anonymous access is off")
}

// saslState is a session's SASL progress. Only the reader goroutine uses it.
type saslState struct {
	mechanism string        // from the last SaslHandshake
	exchange  auth.Exchange // between handshake and the end of authenticate
	expires   time.Time     // KIP-368 session end; zero: none
	// raw: a SaslHandshake v0 was answered, so the next frames are bare
	// SASL tokens until the exchange ends.
	raw bool
}

// handleSASL answers SaslHandshake and SaslAuthenticate locally: kguard
// terminates client authentication, and its upstream connection is already
// authenticated as kguard's own identity. It returns the response and
// whether the connection must close after sending it.
func (s *session) handleSASL(ctx context.Context, hdr *wire.RequestHeader, body []byte) (kmsg.Response, bool, error) {
	req := kmsg.RequestForKey(hdr.APIKey)
	req.SetVersion(hdr.APIVersion)
	if err := req.ReadFrom(body); err != nil {
		return nil, false, fmt.Errorf("decoding %s: %w", kmsg.NameForKey(hdr.APIKey), err)
	}
	switch r := req.(type) {
	case *kmsg.SASLHandshakeRequest:
		resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = s.p.authn.sasl.Mechanisms()
		if s.principal != nil && s.principal != s.p.authn.anonymous {
			if err := auth.CheckReauthMechanism(s.principal, r.Mechanism); err != nil {
				s.log.Warn("re-authentication tried to switch SASL mechanism", zap.String("from", s.principal.Mechanism), zap.String("to", r.Mechanism))
				resp.ErrorCode = kerr.IllegalSaslState.Code
				s.auditAuth(r.Mechanism, resp.ErrorCode, err)
				return resp, true, nil
			}
		}
		if !s.p.authn.sasl.Enabled(r.Mechanism) {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
			s.auditAuth(r.Mechanism, resp.ErrorCode, &saslProtocolError{"SASL mechanism not enabled"})
			return resp, true, nil
		}
		ex, err := s.p.authn.sasl.Start(ctx, r.Mechanism)
		if err != nil {
			return nil, false, err
		}
		s.sasl.mechanism, s.sasl.exchange = r.Mechanism, ex
		s.sasl.raw = hdr.APIVersion == 0
		return resp, false, nil
	case *kmsg.SASLAuthenticateRequest:
		resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		out, closeAfter := s.saslStep(ctx, r.SASLAuthBytes)
		resp.SASLAuthBytes = out.bytes
		resp.ErrorCode, resp.ErrorMessage, resp.SessionLifetimeMillis = out.code, out.message, out.lifetimeMs
		return resp, closeAfter, nil
	}
	return nil, false, fmt.Errorf("api key %d is not a SASL request", hdr.APIKey)
}

// saslResult is one step of a SASL exchange, before it is framed as a
// SaslAuthenticate response or a bare token.
type saslResult struct {
	bytes      []byte
	code       int16
	message    *string
	lifetimeMs int64
}

// rawSASLToken runs one bare token (SaslHandshake v0 mode) and returns its
// bare answer. A failed login closes the connection without an answer, as
// a broker in this mode does.
func (s *session) rawSASLToken(token []byte) *pending {
	out, closeAfter := s.saslStep(s.p.ctx, token)
	p := &pending{hdr: wire.RequestHeader{APIKey: 36}, start: time.Now(), closeAfter: closeAfter}
	if out.code == 0 {
		p.local = wire.AppendFrame(nil, out.bytes)
	} else {
		p.local = []byte{}
	}
	return p
}

// saslStep feeds one client token to the exchange begun by SaslHandshake.
func (s *session) saslStep(ctx context.Context, token []byte) (saslResult, bool) {
	var res saslResult
	if s.sasl.exchange == nil {
		res.code = kerr.IllegalSaslState.Code
		res.message = kmsg.StringPtr("SaslAuthenticate without a SaslHandshake")
		s.auditAuth("", res.code, &saslProtocolError{*res.message})
		return res, true
	}
	out, done, p, err := s.sasl.exchange.Step(ctx, token)
	res.bytes = out
	if err == nil && done && s.principal != nil && s.principal != s.p.authn.anonymous {
		err = auth.CheckReauthentication(s.principal, p)
	}
	if err != nil {
		s.sasl.exchange, s.sasl.raw = nil, false
		var ae *auth.AuthError
		if errors.As(err, &ae) {
			s.log.Warn("authentication failed", zap.String("mechanism", s.sasl.mechanism), zap.String("reason", ae.LogString()))
		} else {
			s.log.Error("authentication error", zap.String("mechanism", s.sasl.mechanism), zap.Error(err))
		}
		res.code = kerr.SaslAuthenticationFailed.Code
		s.auditAuth(s.sasl.mechanism, res.code, err)
		res.message = kmsg.StringPtr(auth.ClientMessage(err))
		return res, true
	}
	if !done {
		return res, false
	}
	s.sasl.exchange, s.sasl.raw = nil, false
	reauth := s.principal != nil && s.principal != s.p.authn.anonymous
	s.principal = p
	life := auth.SessionLifetime(p, s.p.authn.maxLife)
	s.sasl.expires = time.Time{}
	if life > 0 {
		s.sasl.expires = time.Now().Add(life)
		res.lifetimeMs = life.Milliseconds()
	}
	s.log.Info("authenticated", zap.String("principal", p.Name), zap.String("mechanism", p.Mechanism),
		zap.Bool("reauthentication", reauth), zap.Duration("session_lifetime", life))
	s.auditAuth(p.Mechanism, 0, nil)
	return res, false
}
