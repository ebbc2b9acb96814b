package auth

import (
	"context"
	"fmt"
	"strings"

	"github.com/xdg-go/scram"
)

// scramMechanism is a SCRAM-SHA-256 or SCRAM-SHA-512 server (RFC 5802/7677)
// built on github.com/xdg-go/scram.
type scramMechanism struct {
	name   string
	server *scram.Server
}

// NewSCRAM returns the SCRAM mechanism name (SCRAM-SHA-256 or SCRAM-SHA-512)
// with credentials from store. Unknown users are given decoy credentials so
// the exchange fails at the proof, exactly like a wrong password, instead of
// revealing at the first message that the user does not exist.
func NewSCRAM(name string, store *CredentialStore) (Mechanism, error) {
	var hg scram.HashGeneratorFcn
	switch name {
	case MechSCRAMSHA256:
		hg = scram.SHA256
	case MechSCRAMSHA512:
		hg = scram.SHA512
	default:
		return nil, fmt.Errorf("auth: not a SCRAM mechanism: %q", name)
	}
	lookup := func(user string) (scram.StoredCredentials, error) {
		if c, ok := store.LookupSCRAM(user, name); ok {
			return c, nil
		}
		return store.decoySCRAM(user, name), nil
	}
	srv, err := hg.NewServer(lookup)
	if err != nil {
		return nil, fmt.Errorf("auth: %s server: %w", name, err)
	}
	return &scramMechanism{name: name, server: srv}, nil
}

func (m *scramMechanism) Name() string { return m.name }

func (m *scramMechanism) Start(context.Context) Exchange {
	return &scramExchange{m: m, conv: m.server.NewConversation()}
}

type scramExchange struct {
	m       *scramMechanism
	conv    *scram.ServerConversation
	started bool
	done    bool
}

func (e *scramExchange) failed(reason error) *AuthError {
	return authFailed("Authentication failed during authentication due to invalid credentials with SASL mechanism "+e.m.name, reason)
}

func (e *scramExchange) Step(_ context.Context, in []byte) ([]byte, bool, *Principal, error) {
	if e.done {
		return nil, true, nil, errExchangeDone(e.m.name)
	}
	if len(in) > maxSASLMessage {
		e.done = true
		return nil, true, nil, e.failed(fmt.Errorf("%s message of %d bytes exceeds %d", e.m.name, len(in), maxSASLMessage))
	}
	if !e.started {
		e.started = true
		// KIP-48 delegation tokens ("tokenauth=true" after the nonce) are not
		// supported: refuse clearly instead of treating the token as a password.
		fields := strings.Split(string(in), ",")
		for _, f := range fields[min(4, len(fields)):] {
			if strings.HasPrefix(f, "tokenauth=") {
				e.done = true
				return nil, true, nil, authFailed("Authentication failed: delegation tokens are not supported",
					fmt.Errorf("%s: client asked for delegation token authentication", e.m.name))
			}
		}
	}
	out, err := e.conv.Step(string(in))
	if err != nil {
		// The server-error attribute (e=...) is not sent: Kafka answers a
		// failed SCRAM login with SASL_AUTHENTICATION_FAILED and a message.
		e.done = true
		return nil, true, nil, e.failed(fmt.Errorf("%s: %w (user %q)", e.m.name, err, e.conv.Username()))
	}
	if !e.conv.Done() {
		if zid := e.conv.AuthzID(); zid != "" && zid != e.conv.Username() {
			e.done = true
			return nil, true, nil, e.failed(fmt.Errorf("%s authzid %q differs from user %q", e.m.name, zid, e.conv.Username()))
		}
		return []byte(out), false, nil, nil
	}
	e.done = true
	if !e.conv.Valid() {
		return nil, true, nil, e.failed(fmt.Errorf("%s: conversation finished without a valid proof", e.m.name))
	}
	return []byte(out), true, &Principal{Name: e.conv.Username(), Mechanism: e.m.name}, nil
}
