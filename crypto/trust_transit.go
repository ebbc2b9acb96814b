package crypto

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// CreateSigningKey creates transit key name of type ed25519 (an existing
// key is left as it is): a signing key whose private half never leaves
// OpenBao.
func (t *TransitKMS) CreateSigningKey(ctx context.Context, name string) error {
	if err := validTransitName(name); err != nil {
		return err
	}
	if _, err := t.c.Logical().WriteWithContext(ctx, t.mount+"/keys/"+name, map[string]any{"type": "ed25519"}); err != nil {
		return classify("transit create signing key", name, err)
	}
	t.log.Info("transit: signing key created", zap.String("key", name))
	return nil
}

// signingKeyInfo reads transit/keys/<name>: its latest version and each
// version's public key. Keys of another type than ed25519 are refused.
func (t *TransitKMS) signingKeyInfo(ctx context.Context, name string) (int, map[int][]byte, error) {
	if err := validTransitName(name); err != nil {
		return 0, nil, err
	}
	s, err := t.c.Logical().ReadWithContext(ctx, t.mount+"/keys/"+name)
	if err != nil {
		return 0, nil, classify("transit read signing key", name, err)
	}
	if s == nil || s.Data == nil {
		return 0, nil, fmt.Errorf("transit signing key %q: %w: %w", name, ErrUnavailable, ErrKeyNotFound)
	}
	if typ, _ := s.Data["type"].(string); typ != "ed25519" {
		return 0, nil, fmt.Errorf("transit signing key %q: type %q, want ed25519", name, typ)
	}
	latest, err := jsonInt(s.Data["latest_version"])
	if err != nil {
		return 0, nil, fmt.Errorf("transit signing key %q: latest_version: %w", name, err)
	}
	raw, _ := s.Data["keys"].(map[string]any)
	keys := make(map[int][]byte, len(raw))
	for v, k := range raw {
		n, err := strconv.Atoi(v)
		m, _ := k.(map[string]any)
		p64, _ := m["public_key"].(string)
		pub, perr := base64.StdEncoding.DecodeString(p64)
		if err != nil || n <= 0 || perr != nil || len(pub) != ed25519.PublicKeySize {
			return 0, nil, fmt.Errorf("transit signing key %q: malformed version %q", name, v)
		}
		keys[n] = pub
	}
	if len(keys) == 0 || keys[latest] == nil {
		return 0, nil, fmt.Errorf("transit signing key %q: no public key for the latest version %d", name, latest)
	}
	return latest, keys, nil
}

func jsonInt(v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	case float64:
		return int(n), nil
	case int:
		return n, nil
	}
	return 0, fmt.Errorf("not a number: %v", v)
}

// SigningPublicKeys implements TransitPublicKeys: every version of the
// ed25519 transit key name (versions below its min_decryption_version are
// not returned by OpenBao: their signatures stop verifying).
func (t *TransitKMS) SigningPublicKeys(ctx context.Context, name string) (map[int][]byte, error) {
	_, keys, err := t.signingKeyInfo(ctx, name)
	return keys, err
}

// NewTransitSigner returns a Signer that signs through transit/sign/<name>
// with the key's latest version at the time of the call: the private key
// never leaves OpenBao. Its key id is bao:<name>/v<version>; after a
// rotation of the transit key, a new Signer (a restart) signs with the new
// version. With CreateKeys a missing key is created (type ed25519).
func (t *TransitKMS) NewTransitSigner(ctx context.Context, name string) (*Signer, error) {
	latest, _, err := t.signingKeyInfo(ctx, name)
	if err != nil && t.create && errors.Is(err, ErrKeyNotFound) {
		if err = t.CreateSigningKey(ctx, name); err == nil {
			latest, _, err = t.signingKeyInfo(ctx, name)
		}
	}
	if err != nil {
		return nil, err
	}
	return &Signer{s: &transitSigner{t: t, name: name, version: latest}, keyID: TransitKeyID(name, latest)}, nil
}

// transitSigner is a tink.Signer over transit/sign (raw Ed25519
// signatures, 64 bytes). One call per signature: with batch signatures,
// one per produced batch.
type transitSigner struct {
	t       *TransitKMS
	name    string
	version int
}

func (s *transitSigner) Sign(data []byte) ([]byte, error) {
	// tink.Signer has no context: the request is bounded by the
	// client's timeout (crypto.vault.timeout).
	ctx, cancel := context.WithTimeout(context.Background(), s.t.cfg.Timeout)
	defer cancel()
	sec, err := s.t.write(ctx, "transit sign", s.name, "sign/"+s.name, map[string]any{
		"input": base64.StdEncoding.EncodeToString(data), "key_version": s.version})
	if err != nil {
		return nil, err
	}
	sig, _ := sec.Data["signature"].(string)
	want := "vault:v" + strconv.Itoa(s.version) + ":"
	if !strings.HasPrefix(sig, want) {
		return nil, fmt.Errorf("transit sign %q: %w: malformed answer", s.name, ErrUnavailable)
	}
	raw, err := base64.StdEncoding.DecodeString(sig[len(want):])
	if err != nil || len(raw) != ed25519.SignatureSize {
		return nil, fmt.Errorf("transit sign %q: %w: malformed signature", s.name, ErrUnavailable)
	}
	return raw, nil
}
