package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"unicode/utf8"
)

// plainMechanism is SASL PLAIN (RFC 4616) checked by a PasswordVerifier.
type plainMechanism struct {
	verifier PasswordVerifier
}

// NewPlain returns the PLAIN mechanism checking passwords with v.
func NewPlain(v PasswordVerifier) Mechanism {
	return &plainMechanism{verifier: v}
}

func (m *plainMechanism) Name() string { return MechPLAIN }

func (m *plainMechanism) Start(context.Context) Exchange { return &plainExchange{m: m} }

type plainExchange struct {
	m    *plainMechanism
	done bool
}

const plainFailed = "Authentication failed: Invalid username or password"

// ParsePlain splits a PLAIN message `authzid NUL authcid NUL passwd`
// (RFC 4616). authcid and passwd must be non-empty, no field may contain NUL
// and all must be UTF-8.
func ParsePlain(msg []byte) (authzid, authcid, passwd string, err error) {
	if len(msg) > maxSASLMessage {
		return "", "", "", fmt.Errorf("PLAIN message of %d bytes exceeds %d", len(msg), maxSASLMessage)
	}
	zid, rest, ok := bytes.Cut(msg, []byte{0})
	if !ok {
		return "", "", "", errors.New("PLAIN message has no NUL separator")
	}
	cid, pw, ok := bytes.Cut(rest, []byte{0})
	if !ok {
		return "", "", "", errors.New("PLAIN message has one NUL separator, want two")
	}
	if bytes.IndexByte(pw, 0) >= 0 {
		return "", "", "", errors.New("PLAIN message has more than two NUL separators")
	}
	if len(cid) == 0 {
		return "", "", "", errors.New("PLAIN authcid is empty")
	}
	if len(pw) == 0 {
		return "", "", "", errors.New("PLAIN password is empty")
	}
	if !utf8.Valid(zid) || !utf8.Valid(cid) || !utf8.Valid(pw) {
		return "", "", "", errors.New("PLAIN message is not valid UTF-8")
	}
	return string(zid), string(cid), string(pw), nil
}

func (e *plainExchange) Step(ctx context.Context, in []byte) ([]byte, bool, *Principal, error) {
	if e.done {
		return nil, true, nil, errExchangeDone(MechPLAIN)
	}
	e.done = true
	zid, user, pass, err := ParsePlain(in)
	if err != nil {
		return nil, true, nil, authFailed("Authentication failed: invalid PLAIN message", err)
	}
	if zid != "" && zid != user {
		return nil, true, nil, authFailed("Authentication failed: authorization id must be empty or equal to the user name",
			fmt.Errorf("PLAIN authzid %q differs from authcid %q", zid, user))
	}
	if err := e.m.verifier.VerifyPassword(ctx, user, pass); err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			// Same message whatever the reason: never tell whether the user exists.
			return nil, true, nil, authFailed(plainFailed, ae.Reason)
		}
		return nil, true, nil, fmt.Errorf("PLAIN: verify password: %w", err)
	}
	return nil, true, &Principal{Name: user, Mechanism: MechPLAIN}, nil
}
