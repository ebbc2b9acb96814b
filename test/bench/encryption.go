package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kguard/kguard/crypto"
)

// encryptionConfig is the authorization scenario plus data protection on
// the produce topics of this scenario: two JSON fields of every record
// encrypted with AES-256-GCM and every batch signed (batch signatures), with
// a local Tink key store. The consume phase reads a preloaded plaintext
// topic, so it measures the fetch path's cost for unprotected topics.
func encryptionConfig(e scenarioEnv) (string, error) {
	extra := filepath.Join(e.dir, "policy-extra", "protection")
	if err := os.MkdirAll(extra, 0o700); err != nil {
		return "", err
	}
	rule := `{"bench-encryption": {"prefix": "bench-produce-encryption", "priority": 30,
  "fields": [{"path": "$.card", "algorithm": "AES256_GCM"}, {"path": "$.name", "algorithm": "AES256_GCM"}],
  "kek": "kguard-bench", "sign": true, "decrypt": {"principals": ["User:demo"]},
  "on_denied": "ciphertext", "on_bad_signature": "mark"}}`
	if err := os.WriteFile(filepath.Join(extra, "bench.json"), []byte(rule), 0o600); err != nil {
		return "", err
	}
	ks := filepath.Join(e.dir, "keystore.json")
	if err := crypto.CreateLocalKeyStore(ks, "kguard-bench"); err != nil {
		return "", err
	}
	sk := filepath.Join(e.dir, "signing-keyset.json")
	if _, err := crypto.CreateSigningKeyset(sk); err != nil {
		return "", err
	}
	return baseConfig(e) + fmt.Sprintf(`policy:
  dirs: [%q, %q, %q]
crypto:
  kms: local
  local:
    keystore_file: %s
    auto_create: true
  signing_keyset: %s
  batch_signatures: true
`, filepath.Join(e.root, "policies"), filepath.Join(e.root, "policies", "demo"), filepath.Join(e.dir, "policy-extra"), ks, sk), nil
}

// jsonRecord is a JSON object of about size bytes with the two fields the
// encryption scenario protects.
func jsonRecord(size int) []byte {
	head := `{"card":"4111111111111111","name":"Jane Q. Public","account_id":"acct-000123","amount":4200,"pad":"`
	tail := `"}`
	pad := size - len(head) - len(tail)
	if pad < 0 {
		pad = 0
	}
	return []byte(head + strings.Repeat("x", pad) + tail)
}
