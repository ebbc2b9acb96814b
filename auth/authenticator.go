package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// SASL mechanism names.
const (
	MechPLAIN       = "PLAIN"
	MechSCRAMSHA256 = "SCRAM-SHA-256"
	MechSCRAMSHA512 = "SCRAM-SHA-512"
	MechOAUTHBEARER = "OAUTHBEARER"
)

// maxSASLMessage caps a single client SASL token. Kafka frames are capped by
// the proxy too; this bound keeps the parsers cheap on hostile input.
const maxSASLMessage = 64 << 10

// Mechanism is a server-side SASL mechanism.
type Mechanism interface {
	// Name is the SASL mechanism name advertised in SaslHandshake.
	Name() string
	// Start begins one authentication exchange for one connection.
	Start(ctx context.Context) Exchange
}

// Exchange is one server-side SASL authentication exchange.
//
// Step consumes the client's next token and returns the bytes to send back.
// When done is true the exchange is over: p is the authenticated principal
// (err nil) or err says why the login failed. An err that is an *AuthError is
// a failed login whose message can be sent to the client; any other error is
// internal. After done, Step must not be called again (it returns an error).
type Exchange interface {
	Step(ctx context.Context, in []byte) (out []byte, done bool, p *Principal, err error)
}

// PasswordVerifier checks a PLAIN username and password. It returns nil on
// success, an *AuthError when the credentials are wrong (whatever the reason,
// including an unknown user) and any other error for internal failures.
// CredentialStore implements it; the proxy may supply one that checks the
// password against the upstream cluster instead.
type PasswordVerifier interface {
	VerifyPassword(ctx context.Context, user, password string) error
}

// Config selects and configures the SASL mechanisms of one listener.
type Config struct {
	// Mechanisms lists the enabled mechanism names, in the order they are
	// advertised. Unknown names are an error.
	Mechanisms []string
	// Credentials backs SCRAM (required when a SCRAM mechanism is enabled)
	// and PLAIN (unless PlainVerifier is set).
	Credentials *CredentialStore
	// PlainVerifier overrides how PLAIN passwords are checked.
	PlainVerifier PasswordVerifier
	// OAuthBearer validates OAUTHBEARER tokens (required when OAUTHBEARER is
	// enabled).
	OAuthBearer *TokenValidator
}

// Authenticator holds the enabled mechanisms of one listener.
type Authenticator struct {
	mechs map[string]Mechanism
	names []string
}

// NewAuthenticator builds the mechanisms named in cfg.Mechanisms.
func NewAuthenticator(cfg Config) (*Authenticator, error) {
	if len(cfg.Mechanisms) == 0 {
		return nil, errors.New("auth: no SASL mechanisms enabled")
	}
	a := &Authenticator{mechs: make(map[string]Mechanism)}
	for _, name := range cfg.Mechanisms {
		if _, dup := a.mechs[name]; dup {
			return nil, fmt.Errorf("auth: mechanism %s listed twice", name)
		}
		var m Mechanism
		var err error
		switch name {
		case MechPLAIN:
			v := cfg.PlainVerifier
			if v == nil && cfg.Credentials != nil {
				v = cfg.Credentials
			}
			if v == nil {
				return nil, errors.New("auth: PLAIN needs a credentials store or a password verifier")
			}
			m = NewPlain(v)
		case MechSCRAMSHA256, MechSCRAMSHA512:
			if cfg.Credentials == nil {
				return nil, fmt.Errorf("auth: %s needs a credentials store", name)
			}
			m, err = NewSCRAM(name, cfg.Credentials)
		case MechOAUTHBEARER:
			if cfg.OAuthBearer == nil {
				return nil, errors.New("auth: OAUTHBEARER needs a token validator")
			}
			m = NewOAuthBearer(cfg.OAuthBearer)
		default:
			return nil, fmt.Errorf("auth: unknown SASL mechanism %q", name)
		}
		if err != nil {
			return nil, err
		}
		a.mechs[name] = m
		a.names = append(a.names, name)
	}
	return a, nil
}

// Mechanisms returns the enabled mechanism names for the SaslHandshake
// response, in configuration order.
func (a *Authenticator) Mechanisms() []string { return slices.Clone(a.names) }

// Enabled reports whether mechanism is enabled.
func (a *Authenticator) Enabled(mechanism string) bool {
	_, ok := a.mechs[mechanism]
	return ok
}

// Start begins an exchange for mechanism. It returns an error wrapping
// ErrUnsupportedMechanism when the mechanism is not enabled (SASL mechanism
// names are case-sensitive, as in Kafka).
func (a *Authenticator) Start(ctx context.Context, mechanism string) (Exchange, error) {
	m, ok := a.mechs[mechanism]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedMechanism, mechanism)
	}
	return m.Start(ctx), nil
}

// errExchangeDone is returned by Step after an exchange has finished.
func errExchangeDone(mech string) error {
	return authFailed("Authentication failed: exchange already complete",
		fmt.Errorf("%s: Step called after the exchange finished", mech))
}
