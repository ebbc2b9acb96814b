package auth

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl"
)

// runSASL drives a real client-side SASL mechanism (franz-go pkg/sasl)
// against a server Exchange, the way a SaslAuthenticate loop would.
func runSASL(ctx context.Context, client sasl.Mechanism, ex Exchange) (*Principal, error) {
	sess, msg, err := client.Authenticate(ctx, "kguard:9092")
	if err != nil {
		return nil, fmt.Errorf("client start: %w", err)
	}
	for round := 0; round < 10; round++ {
		out, done, p, err := ex.Step(ctx, msg)
		if err != nil {
			if !done {
				return nil, fmt.Errorf("server returned an error without done: %w", err)
			}
			return nil, err
		}
		clientDone, next, cerr := sess.Challenge(out)
		if cerr != nil {
			return nil, fmt.Errorf("client rejected server message: %w", cerr)
		}
		if done {
			if !clientDone {
				return nil, errors.New("server finished but client wants more")
			}
			if p == nil {
				return nil, errors.New("server finished without principal or error")
			}
			return p, nil
		}
		if clientDone {
			return nil, errors.New("client finished but server wants more")
		}
		msg = next
	}
	return nil, errors.New("too many rounds")
}

// newStore writes a credentials file with the given users (name -> password)
// and opens a store on it.
func newStore(t testing.TB, users map[string]string) (*CredentialStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.yaml")
	for u, pw := range users {
		if err := AddUser(path, u, pw, MinIterations); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewCredentialStore(path, nil, WithCheckInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

func mustAuthenticator(t testing.TB, cfg Config) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustStart(t testing.TB, a *Authenticator, mech string) Exchange {
	t.Helper()
	ex, err := a.Start(context.Background(), mech)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}
