package auth

import (
	"errors"
	"testing"
	"time"
)

func TestSessionLifetime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		p    *Principal
		max  time.Duration
		want time.Duration
	}{
		{"no expiry, no max", &Principal{Name: "a"}, 0, 0},
		{"no expiry, max", &Principal{Name: "a"}, time.Hour, time.Hour},
		{"token shorter than max", &Principal{ExpiresAt: now.Add(10 * time.Minute)}, time.Hour, 10 * time.Minute},
		{"max shorter than token", &Principal{ExpiresAt: now.Add(10 * time.Minute)}, time.Minute, time.Minute},
		{"token, no max", &Principal{ExpiresAt: now.Add(10 * time.Minute)}, 0, 10 * time.Minute},
		{"already expired", &Principal{ExpiresAt: now.Add(-time.Second)}, time.Hour, time.Millisecond},
		{"nil principal", nil, time.Hour, time.Hour},
	} {
		if got := sessionLifetimeAt(c.p, c.max, now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if got := SessionLifetime(&Principal{ExpiresAt: time.Now().Add(time.Hour)}, 0); got <= 59*time.Minute || got > time.Hour {
		t.Errorf("SessionLifetime with the real clock = %v", got)
	}
}

func TestReauthentication(t *testing.T) {
	prev := &Principal{Name: "alice", Mechanism: MechSCRAMSHA256}
	if err := CheckReauthMechanism(prev, MechSCRAMSHA256); err != nil {
		t.Fatal(err)
	}
	if err := CheckReauthMechanism(prev, MechPLAIN); !IsAuthError(err) {
		t.Fatalf("mechanism switch: %v", err)
	}
	if err := CheckReauthentication(prev, &Principal{Name: "alice", Mechanism: MechSCRAMSHA256}); err != nil {
		t.Fatal(err)
	}
	if err := CheckReauthentication(prev, &Principal{Name: "bob", Mechanism: MechSCRAMSHA256}); !IsAuthError(err) {
		t.Fatalf("principal change: %v", err)
	}
	if err := CheckReauthentication(prev, &Principal{Name: "alice", Mechanism: MechSCRAMSHA512}); !IsAuthError(err) {
		t.Fatalf("mechanism change: %v", err)
	}
	if err := CheckReauthentication(prev, nil); !IsAuthError(err) {
		t.Fatalf("nil principal: %v", err)
	}
}

func TestClientMessage(t *testing.T) {
	internal := errors.New("dial 10.1.2.3: connection refused")
	if msg := ClientMessage(internal); msg == internal.Error() {
		t.Fatal("internal error text sent to client")
	}
	ae := authFailed("Authentication failed: x", errors.New("detail"))
	wrapped := errors.Join(errors.New("ctx"), ae)
	if ClientMessage(wrapped) != "Authentication failed: x" || !IsAuthError(wrapped) {
		t.Fatal("wrapped AuthError not recognised")
	}
}
