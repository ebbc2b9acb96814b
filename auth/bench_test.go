package auth

import (
	"context"
	"crypto/x509/pkix"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl/plain"
	fscram "github.com/twmb/franz-go/pkg/sasl/scram"
)

func benchPLAIN(b *testing.B, iterations int) {
	path := b.TempDir() + "/users.yaml"
	if err := AddUser(path, "alice", "correct horse", iterations); err != nil {
		b.Fatal(err)
	}
	store, err := NewCredentialStore(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	a := mustAuthenticator(b, Config{Mechanisms: []string{MechPLAIN}, Credentials: store})
	ctx := context.Background()
	msg := []byte("\x00alice\x00correct horse")
	b.ReportAllocs()
	for b.Loop() {
		ex, _ := a.Start(ctx, MechPLAIN)
		if _, _, p, err := ex.Step(ctx, msg); err != nil || p == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPLAINLogin measures one PLAIN login: one PBKDF2-HMAC-SHA-512 over
// the stored salt and iterations.
func BenchmarkPLAINLogin4096(b *testing.B) { benchPLAIN(b, 4096) }
func BenchmarkPLAINLogin8192(b *testing.B) { benchPLAIN(b, 8192) }

// BenchmarkSCRAMSHA512Login measures a full SCRAM-SHA-512 login, server and
// franz-go client together (the client's PBKDF2 dominates; the server does
// only HMACs).
func BenchmarkSCRAMSHA512Login(b *testing.B) {
	store, _ := newStore(b, map[string]string{"alice": "correct horse"})
	a := mustAuthenticator(b, Config{Mechanisms: []string{MechSCRAMSHA512}, Credentials: store})
	ctx := context.Background()
	mech := fscram.Auth{User: "alice", Pass: "correct horse"}.AsSha512Mechanism()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := runSASL(ctx, mech, mustStart(b, a, MechSCRAMSHA512)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPLAINUnknownUser shows an unknown user costs the same as a real one.
func BenchmarkPLAINUnknownUser(b *testing.B) {
	store, _ := newStore(b, map[string]string{"alice": "pw"})
	a := mustAuthenticator(b, Config{Mechanisms: []string{MechPLAIN}, Credentials: store})
	ctx := context.Background()
	mech := plain.Auth{User: "mallory", Pass: "pw"}.AsMechanism()
	for b.Loop() {
		if _, err := runSASL(ctx, mech, mustStart(b, a, MechPLAIN)); err == nil {
			b.Fatal("unknown user accepted")
		}
	}
}

func benchValidate(b *testing.B, s *signer) {
	testKeys(b)
	clk := newFakeClock()
	srv := newJWKSServer(b, jwksJSON(b, rsa1, ec1, ed1))
	v := newValidator(b, srv, clk, nil)
	tok := token(b, *s, claims(clk.Now(), nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOAuthValidate measures one JWT validation with cached keys.
func BenchmarkOAuthValidateRS256(b *testing.B) { benchValidate(b, &rsa1) }
func BenchmarkOAuthValidateES256(b *testing.B) { benchValidate(b, &ec1) }
func BenchmarkOAuthValidateEdDSA(b *testing.B) { benchValidate(b, &ed1) }

// BenchmarkCertPrincipal measures subject DN formatting plus rule mapping.
func BenchmarkCertPrincipal(b *testing.B) {
	ca := newCA(b, "CA")
	cert := clientCert(b, ca, pkix.Name{CommonName: "Duke", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"Org"}, Country: []string{"US"}}).Leaf
	pm, err := NewPrincipalMapper(FromSubject, []string{"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L", "DEFAULT"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if p, err := pm.PrincipalFromVerifiedCert(cert); err != nil || p.Name != "duke" {
			b.Fatal(p, err)
		}
	}
}
