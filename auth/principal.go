package auth

import (
	"errors"
	"fmt"
	"time"
)

// Principal is an authenticated client identity.
type Principal struct {
	// Name is the principal name (without Kafka's "User:" prefix).
	Name string
	// Mechanism is the SASL mechanism name (PLAIN, SCRAM-SHA-256,
	// SCRAM-SHA-512, OAUTHBEARER) or MechanismMTLS.
	Mechanism string
	// CertFingerprint is the lowercase hex SHA-256 of the client
	// certificate's DER bytes when the client presented one (mTLS).
	CertFingerprint string
	// ExpiresAt is when the credential stops being valid (the token's exp
	// for OAUTHBEARER). The zero value means no expiry.
	ExpiresAt time.Time
}

// MechanismMTLS is the Principal.Mechanism of principals taken from a TLS
// client certificate.
const MechanismMTLS = "MTLS"

// AuthError is a failed login (bad credentials, bad token, protocol misuse by
// the client). Error() returns a message that is safe to send to the client:
// it never contains a secret and never tells whether a user exists. Reason
// holds the detailed cause for logs and errors.Is; it may name the user but
// never contains a password or token.
type AuthError struct {
	// Msg is the client-safe message.
	Msg string
	// Reason is the detailed cause, for logs only.
	Reason error
}

// Error returns the client-safe message.
func (e *AuthError) Error() string { return e.Msg }

// Unwrap returns the detailed reason.
func (e *AuthError) Unwrap() error { return e.Reason }

// LogString returns the message and the detailed reason, for logs.
func (e *AuthError) LogString() string {
	if e.Reason == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Reason.Error()
}

func authFailed(msg string, reason error) *AuthError {
	return &AuthError{Msg: msg, Reason: reason}
}

// IsAuthError reports whether err is (or wraps) a failed login, as opposed to
// an internal error.
func IsAuthError(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae)
}

// ClientMessage returns the text to put in a SaslAuthenticate error_message
// for err: the safe message of an AuthError, or a generic text for internal
// errors (whose details must only be logged).
func ClientMessage(err error) string {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae.Msg
	}
	return "Authentication failed due to an internal error"
}

// ErrUnsupportedMechanism is returned by Authenticator.Start for a mechanism
// that is not enabled; the proxy answers UNSUPPORTED_SASL_MECHANISM.
var ErrUnsupportedMechanism = errors.New("unsupported SASL mechanism")

// SessionLifetime returns the KIP-368 session lifetime to send in
// SaslAuthenticate v1+ for p: the smaller of the time left until
// p.ExpiresAt and max. A zero or negative max means no configured maximum
// (Kafka's connections.max.reauth.ms=0). The result 0 means the session
// never has to re-authenticate; otherwise it is at least one millisecond
// (an already expired credential yields 1ms, so the connection is closed
// unless it re-authenticates at once).
func SessionLifetime(p *Principal, max time.Duration) time.Duration {
	return sessionLifetimeAt(p, max, time.Now())
}

func sessionLifetimeAt(p *Principal, max time.Duration, now time.Time) time.Duration {
	var life time.Duration
	if max > 0 {
		life = max
	}
	if p != nil && !p.ExpiresAt.IsZero() {
		left := p.ExpiresAt.Sub(now)
		if left < time.Millisecond {
			left = time.Millisecond
		}
		if life == 0 || left < life {
			life = left
		}
	}
	if life > 0 && life < time.Millisecond {
		life = time.Millisecond
	}
	return life
}

// CheckReauthMechanism checks, at the SaslHandshake of a re-authentication
// (KIP-368), that the client asks for the mechanism it first authenticated
// with. It returns an AuthError otherwise.
func CheckReauthMechanism(prev *Principal, mechanism string) error {
	if prev == nil {
		return nil
	}
	if prev.Mechanism != mechanism {
		return authFailed("SASL mechanism change not allowed during re-authentication",
			fmt.Errorf("re-authentication switched mechanism from %s to %s", prev.Mechanism, mechanism))
	}
	return nil
}

// CheckReauthentication checks the result of a re-authentication (KIP-368):
// the new principal must come from the same mechanism and have the same name
// as the previous one. It returns an AuthError otherwise; the proxy then
// fails the SaslAuthenticate and closes the connection.
func CheckReauthentication(prev, next *Principal) error {
	if prev == nil || next == nil {
		return authFailed("re-authentication failed", errors.New("missing principal"))
	}
	if err := CheckReauthMechanism(prev, next.Mechanism); err != nil {
		return err
	}
	if prev.Name != next.Name {
		return authFailed("Cannot change principals during re-authentication",
			fmt.Errorf("re-authentication changed principal from %q to %q", prev.Name, next.Name))
	}
	return nil
}
