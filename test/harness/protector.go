package harness

import (
	"path/filepath"
	"testing"

	"github.com/kguard/kguard/crypto"
)

// NewProtector is a crypto.Protector for tests: o with a fresh Ed25519
// signing keyset (in tb's temp dir) as its Signer and Verifier. o.KMS is
// required.
func NewProtector(tb testing.TB, o crypto.Options) *crypto.Protector {
	tb.Helper()
	sk := filepath.Join(tb.TempDir(), "signing.json")
	if _, err := crypto.CreateSigningKeyset(sk); err != nil {
		tb.Fatal(err)
	}
	var err error
	if o.Signer, err = crypto.LoadSigner(sk); err != nil {
		tb.Fatal(err)
	}
	if o.Verifier, err = crypto.LoadVerifier(sk); err != nil {
		tb.Fatal(err)
	}
	p, err := crypto.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
