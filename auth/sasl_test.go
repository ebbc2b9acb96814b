package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	fscram "github.com/twmb/franz-go/pkg/sasl/scram"
)

func TestAuthenticatorMechanisms(t *testing.T) {
	store, _ := newStore(t, map[string]string{"alice": "s3cret"})
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechSCRAMSHA512, MechPLAIN}, Credentials: store})
	if got := a.Mechanisms(); strings.Join(got, ",") != "SCRAM-SHA-512,PLAIN" {
		t.Fatalf("Mechanisms() = %v", got)
	}
	if _, err := a.Start(context.Background(), MechSCRAMSHA256); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Fatalf("Start(disabled) err = %v, want ErrUnsupportedMechanism", err)
	}
	if _, err := a.Start(context.Background(), "plain"); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Fatalf("mechanism names must be case-sensitive, got %v", err)
	}
	for _, bad := range []Config{
		{},
		{Mechanisms: []string{"GSSAPI"}, Credentials: store},
		{Mechanisms: []string{MechPLAIN}},
		{Mechanisms: []string{MechSCRAMSHA256}},
		{Mechanisms: []string{MechOAUTHBEARER}},
		{Mechanisms: []string{MechPLAIN, MechPLAIN}, Credentials: store},
	} {
		if _, err := NewAuthenticator(bad); err == nil {
			t.Errorf("NewAuthenticator(%+v) succeeded", bad.Mechanisms)
		}
	}
}

func TestPLAINWithFranzGoClient(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, map[string]string{"alice": "correct horse", "bob": "hunter2"})
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechPLAIN}, Credentials: store})

	p, err := runSASL(ctx, plain.Auth{User: "alice", Pass: "correct horse"}.AsMechanism(), mustStart(t, a, MechPLAIN))
	if err != nil {
		t.Fatalf("valid login failed: %v", err)
	}
	if p.Name != "alice" || p.Mechanism != MechPLAIN || !p.ExpiresAt.IsZero() {
		t.Fatalf("principal = %+v", p)
	}
	// authzid equal to authcid is allowed.
	if _, err := runSASL(ctx, plain.Auth{Zid: "bob", User: "bob", Pass: "hunter2"}.AsMechanism(), mustStart(t, a, MechPLAIN)); err != nil {
		t.Fatalf("authzid == authcid refused: %v", err)
	}

	cases := []struct {
		name string
		auth plain.Auth
	}{
		{"wrong password", plain.Auth{User: "alice", Pass: "Correct horse"}},
		{"unknown user", plain.Auth{User: "mallory", Pass: "correct horse"}},
		{"other user's password", plain.Auth{User: "bob", Pass: "correct horse"}},
		{"authzid impersonation", plain.Auth{Zid: "bob", User: "alice", Pass: "correct horse"}},
	}
	var msgs []string
	for _, c := range cases {
		_, err := runSASL(ctx, c.auth.AsMechanism(), mustStart(t, a, MechPLAIN))
		if err == nil {
			t.Fatalf("%s: login succeeded", c.name)
		}
		if !IsAuthError(err) {
			t.Fatalf("%s: error %v is not an AuthError", c.name, err)
		}
		msg := ClientMessage(err)
		if strings.Contains(msg, c.auth.Pass) || strings.Contains(msg, "mallory") {
			t.Fatalf("%s: client message leaks input: %q", c.name, msg)
		}
		msgs = append(msgs, msg)
	}
	// Wrong password and unknown user must be indistinguishable to the client.
	if msgs[0] != msgs[1] || msgs[1] != msgs[2] {
		t.Fatalf("failure messages differ (reveal user existence): %q", msgs)
	}
	// The detailed reason is kept for logs.
	_, err = runSASL(ctx, plain.Auth{User: "mallory", Pass: "x"}.AsMechanism(), mustStart(t, a, MechPLAIN))
	var ae *AuthError
	if !errors.As(err, &ae) || !strings.Contains(ae.LogString(), "unknown user") || strings.Contains(ae.LogString(), "x\"") {
		t.Fatalf("log string = %q", ae.LogString())
	}
}

func TestPLAINExchangeMisuse(t *testing.T) {
	store, _ := newStore(t, map[string]string{"alice": "pw"})
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechPLAIN}, Credentials: store})
	ctx := context.Background()
	for _, in := range []string{"", "alice", "\x00alice", "\x00\x00pw", "\x00alice\x00", "\x00alice\x00pw\x00", "\x00al\xffice\x00pw"} {
		_, done, p, err := mustStart(t, a, MechPLAIN).Step(ctx, []byte(in))
		if err == nil || !done || p != nil || !IsAuthError(err) {
			t.Errorf("Step(%q) = done %v, p %v, err %v; want a done AuthError", in, done, p, err)
		}
	}
	ex := mustStart(t, a, MechPLAIN)
	if _, _, p, err := ex.Step(ctx, []byte("\x00alice\x00pw")); err != nil || p == nil {
		t.Fatalf("valid step: %v", err)
	}
	if _, _, p, err := ex.Step(ctx, []byte("\x00alice\x00pw")); err == nil || p != nil {
		t.Fatal("Step after done must fail")
	}
}

type verifierFunc func(ctx context.Context, user, pass string) error

func (f verifierFunc) VerifyPassword(ctx context.Context, user, pass string) error {
	return f(ctx, user, pass)
}

func TestPLAINCustomVerifierInternalError(t *testing.T) {
	boom := errors.New("upstream unreachable at 10.0.0.1")
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechPLAIN}, PlainVerifier: verifierFunc(func(context.Context, string, string) error { return boom })})
	_, err := runSASL(context.Background(), plain.Auth{User: "u", Pass: "p"}.AsMechanism(), mustStart(t, a, MechPLAIN))
	if !errors.Is(err, boom) || IsAuthError(err) {
		t.Fatalf("internal verifier error must stay internal: %v", err)
	}
	if msg := ClientMessage(err); strings.Contains(msg, "10.0.0.1") {
		t.Fatalf("internal detail leaked to client: %q", msg)
	}
}

func TestSCRAMWithFranzGoClient(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, map[string]string{"alice": "correct horse", "we,ird=name": "pässwörd"})
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechSCRAMSHA256, MechSCRAMSHA512}, Credentials: store})

	clients := map[string]func(fscram.Auth) sasl.Mechanism{
		MechSCRAMSHA256: fscram.Auth.AsSha256Mechanism,
		MechSCRAMSHA512: fscram.Auth.AsSha512Mechanism,
	}
	for mech, mk := range clients {
		t.Run(mech, func(t *testing.T) {
			for user, pw := range map[string]string{"alice": "correct horse", "we,ird=name": "pässwörd"} {
				p, err := runSASL(ctx, mk(fscram.Auth{User: user, Pass: pw}), mustStart(t, a, mech))
				if err != nil {
					t.Fatalf("valid login %q failed: %v", user, err)
				}
				if p.Name != user || p.Mechanism != mech {
					t.Fatalf("principal = %+v", p)
				}
			}
			var msgs []string
			for _, c := range []fscram.Auth{
				{User: "alice", Pass: "wrong"},
				{User: "mallory", Pass: "correct horse"},
			} {
				_, err := runSASL(ctx, mk(c), mustStart(t, a, mech))
				if err == nil || !IsAuthError(err) {
					t.Fatalf("login %q/%q: err = %v, want AuthError", c.User, c.Pass, err)
				}
				msgs = append(msgs, ClientMessage(err))
			}
			if msgs[0] != msgs[1] {
				t.Fatalf("wrong password and unknown user differ: %q", msgs)
			}
			// authzid naming another user is refused.
			_, err := runSASL(ctx, mk(fscram.Auth{Zid: "we,ird=name", User: "alice", Pass: "correct horse"}), mustStart(t, a, mech))
			if err == nil || !IsAuthError(err) {
				t.Fatalf("authzid impersonation: err = %v", err)
			}
		})
	}
}

func TestSCRAMUnknownUserIndistinguishableAtFirstMessage(t *testing.T) {
	// The server-first message for an unknown user must look like a real
	// one (a stable salt and the file's usual iteration count) so a client cannot
	// probe for user names.
	store, _ := newStore(t, map[string]string{"alice": "pw"})
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechSCRAMSHA256}, Credentials: store})
	ctx := context.Background()
	first := func(user string) string {
		out, done, _, err := mustStart(t, a, MechSCRAMSHA256).Step(ctx, []byte("n,,n="+user+",r=abcdefghijkl"))
		if err != nil || done {
			t.Fatalf("first step for %q: done %v err %v", user, done, err)
		}
		// strip the nonce
		return string(out[strings.Index(string(out), ",s="):])
	}
	a1, a2 := first("nobody"), first("nobody")
	if a1 != a2 {
		t.Fatalf("decoy salt not stable: %q vs %q", a1, a2)
	}
	if !strings.HasSuffix(a1, ",i=4096") { // the iteration count the file's users have
		t.Fatalf("decoy iterations: %q", a1)
	}
	if first("nobody") == first("nobody2") {
		t.Fatal("decoy salts of different users must differ")
	}
}

func TestSCRAMMissingHashFailsLikeWrongPassword(t *testing.T) {
	store, path := newStore(t, map[string]string{"alice": "pw"})
	f, _, err := readCredentialsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	uc := f.Users["alice"]
	uc.SHA512 = nil
	f.Users["alice"] = uc
	if err := writeCredentialsFile(path, f); err != nil {
		t.Fatal(err)
	}
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechSCRAMSHA256, MechSCRAMSHA512, MechPLAIN}, Credentials: store})
	ctx := context.Background()
	if _, err := runSASL(ctx, fscram.Auth{User: "alice", Pass: "pw"}.AsSha512Mechanism(), mustStart(t, a, MechSCRAMSHA512)); !IsAuthError(err) {
		t.Fatalf("SHA-512 without SHA-512 credentials: %v", err)
	}
	if _, err := runSASL(ctx, fscram.Auth{User: "alice", Pass: "pw"}.AsSha256Mechanism(), mustStart(t, a, MechSCRAMSHA256)); err != nil {
		t.Fatalf("SHA-256 login: %v", err)
	}
	// PLAIN falls back to the SHA-256 credential.
	if _, err := runSASL(ctx, plain.Auth{User: "alice", Pass: "pw"}.AsMechanism(), mustStart(t, a, MechPLAIN)); err != nil {
		t.Fatalf("PLAIN via SHA-256 credential: %v", err)
	}
}

func TestSCRAMDelegationTokenRefused(t *testing.T) {
	store, _ := newStore(t, map[string]string{"alice": "pw"})
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechSCRAMSHA256}, Credentials: store})
	// franz-go sends tokenauth=true for KIP-48 delegation tokens.
	_, err := runSASL(context.Background(), fscram.Auth{User: "alice", Pass: "pw", IsToken: true}.AsSha256Mechanism(), mustStart(t, a, MechSCRAMSHA256))
	if !IsAuthError(err) || !strings.Contains(ClientMessage(err), "delegation tokens") {
		t.Fatalf("delegation token login: %v", err)
	}
}
