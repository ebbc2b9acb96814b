package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	vault "github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go/v2/tink"
	"go.uber.org/zap"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
)

// keyService is a KMS that can also manage its keys.
type keyService interface {
	crypto.KMS
	crypto.KeyAdmin
}

// openKMS opens the configured KMS. close releases it.
func openKMS(ctx context.Context, c *config.Crypto, log *zap.Logger) (ks keyService, close func(), err error) {
	switch c.KMS {
	case "local":
		if c.Local == nil || c.Local.KeystoreFile == "" {
			return nil, nil, errors.New("config crypto.local.keystore_file is required for kms: local")
		}
		k, err := crypto.OpenLocalKMS(c.Local.KeystoreFile, crypto.LocalKMSOptions{AutoCreate: c.Local.AutoCreate})
		if err != nil {
			return nil, nil, err
		}
		return k, func() {}, nil
	case "vault":
		v := c.Vault
		if v == nil || v.Address == "" {
			return nil, nil, errors.New("config crypto.vault.address is required for kms: vault")
		}
		tc := crypto.TransitConfig{Address: v.Address, Namespace: v.Namespace, Mount: v.Mount, Timeout: v.Timeout,
			CreateKeys: v.CreateKeys, Logger: log.Named("kms")}
		switch {
		case v.AppRoleID != "":
			secret, err := readSecret(v.AppSecretFile)
			if err != nil {
				return nil, nil, fmt.Errorf("crypto.vault.approle_secret_id_file: %w", err)
			}
			tc.AppRole = &crypto.AppRole{RoleID: v.AppRoleID, SecretID: secret}
		case v.TokenFile != "":
			tok, err := readSecret(v.TokenFile)
			if err != nil {
				return nil, nil, fmt.Errorf("crypto.vault.token_file: %w", err)
			}
			tc.Token = tok
		default:
			tc.Token = os.Getenv("VAULT_TOKEN")
			if tc.Token == "" {
				return nil, nil, errors.New("config crypto.vault: token_file, approle_role_id or VAULT_TOKEN is required")
			}
		}
		if v.CAFile != "" || v.ClientCertFile != "" {
			tc.TLS = &vault.TLSConfig{CACert: v.CAFile, ClientCert: v.ClientCertFile, ClientKey: v.ClientKeyFile}
		}
		k, err := crypto.NewTransitKMS(ctx, tc)
		if err != nil {
			return nil, nil, err
		}
		return k, func() { _ = k.Close() }, nil
	}
	return nil, nil, fmt.Errorf("config crypto.kms: %q: want local or vault", c.KMS)
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// newProtector builds the data protector from the config.
func newProtector(ctx context.Context, c *config.Crypto, log *zap.Logger) (*crypto.Protector, func(), error) {
	p, _, closeKMS, err := newObservedProtector(ctx, c, log)
	return p, closeKMS, err
}

// newObservedProtector is newProtector whose key-service calls go through
// a crypto.ObservedKMS (metrics, readiness), which it also returns.
func newObservedProtector(ctx context.Context, c *config.Crypto, log *zap.Logger) (*crypto.Protector, *crypto.ObservedKMS, func(), error) {
	ks, closeKMS, err := openKMS(ctx, c, log)
	if err != nil {
		return nil, nil, nil, err
	}
	obs := crypto.NewObservedKMS(ks, crypto.ObserveOptions{CacheTTL: c.Keys.CacheTTL, ActiveLifetime: c.Keys.ActiveLifetime})
	o := crypto.Options{KMS: obs, BatchSignatures: c.BatchSignatures, FormatVersion: c.FormatVersion, BatchDigest: c.BatchDigest, SealPerField: c.SealPerField, Logger: log.Named("crypto"),
		Keys: crypto.KeyOptions{ActiveLifetime: c.Keys.ActiveLifetime, MaxUses: c.Keys.MaxUses, CacheTTL: c.Keys.CacheTTL, CacheSize: c.Keys.CacheSize}}
	stopSigning, err := setSigning(ctx, c, ks, &o, log)
	if err != nil {
		closeKMS()
		return nil, nil, nil, err
	}
	closeAll := func() { stopSigning(); closeKMS() }
	if c.SubjectPepperFile != "" {
		pepper, err := os.ReadFile(c.SubjectPepperFile)
		if err != nil {
			closeAll()
			return nil, nil, nil, fmt.Errorf("crypto.subject_pepper_file: %w", err)
		}
		o.SubjectPepper = pepper
	}
	p, err := crypto.New(o)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return p, obs, closeAll, nil
}

// signingKEK is the transit key that encrypts the signing keyset file
// (crypto.signing_keyset_kek), nil for a cleartext file.
func signingKEK(ctx context.Context, c *config.Crypto, ks crypto.KMS) (tink.AEAD, error) {
	if c.SigningKeysetKEK == "" {
		return nil, nil
	}
	tk, ok := ks.(*crypto.TransitKMS)
	if !ok {
		return nil, errors.New("config crypto.signing_keyset_kek needs kms: vault")
	}
	kek, err := tk.KeysetAEAD(ctx, c.SigningKeysetKEK)
	if err != nil {
		return nil, fmt.Errorf("crypto.signing_keyset_kek: %w", err)
	}
	return kek, nil
}

// cmdKeys manages the keys behind data protection.
func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: kguard keys init|init-signing|rotate|shred|rotate-signing|trust", errUsage)
	}
	sub := args[0]
	if sub == "trust" {
		return cmdKeysTrust(ctx, args[1:], stdout, stderr)
	}
	fs := newFlags("keys "+sub, stderr)
	cfgPath := fs.String("config", "kguard.yaml", "config file (its crypto section)")
	dir := fs.String("dir", ".", "init: directory for the key files")
	if err := parseFlagsArgs(fs, args[1:]); err != nil {
		return err
	}
	if sub == "init" {
		return keysInit(*dir, fs.Args(), stdout)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	log := zap.NewNop()
	switch sub {
	case "rotate": // rotate KEKs: kguard keys rotate KEK...
		if fs.NArg() == 0 {
			return fmt.Errorf("%w: kguard keys rotate --config F KEK...", errUsage)
		}
		ks, closeKMS, err := openKMS(ctx, &cfg.Crypto, log)
		if err != nil {
			return err
		}
		defer closeKMS()
		au, err := openCLIAudit(ctx, cfg, log)
		if err != nil {
			return err
		}
		err = rotateKeys(ctx, ks, au, fs.Args(), stdout)
		if cerr := au.close(stderr); err == nil {
			err = cerr
		}
		return err
	case "shred": // crypto-shred one data subject
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: kguard keys shred --config F SUBJECT", errUsage)
		}
		p, closeKMS, err := newProtector(ctx, &cfg.Crypto, log)
		if err != nil {
			return err
		}
		defer closeKMS()
		au, err := openCLIAudit(ctx, cfg, log)
		if err != nil {
			return err
		}
		// The event names the subject's key, never the subject id (personal data).
		err = p.Shred(ctx, fs.Arg(0))
		rerr := au.keyOperation("SHRED", p.SubjectKeyName(fs.Arg(0)), map[string]string{"kms": cfg.Crypto.KMS}, err)
		if cerr := au.close(stderr); rerr == nil {
			rerr = cerr
		}
		if err != nil {
			return err
		}
		if rerr != nil {
			return fmt.Errorf("subject key destroyed but not recorded: %w", rerr)
		}
		fmt.Fprintf(stdout, "subject key %s destroyed: that subject's fields are unreadable everywhere (other instances within crypto.keys.cache_ttl)\n", p.SubjectKeyName(fs.Arg(0)))
		return nil
	case "rotate-signing", "init-signing":
		c := &cfg.Crypto
		if c.SigningTransitKey != "" {
			return transitSigningKey(ctx, c, sub == "rotate-signing", stdout)
		}
		if c.SigningKeyset == "" {
			return errors.New("config crypto.signing_keyset is required (or crypto.signing_transit_key)")
		}
		var kek tink.AEAD
		if c.SigningKeysetKEK != "" {
			ks, closeKMS, err := openKMS(ctx, c, log)
			if err != nil {
				return err
			}
			defer closeKMS()
			if kek, err = signingKEK(ctx, c, ks); err != nil {
				return err
			}
		}
		how := "in clear (mode 0600)"
		if kek != nil {
			how = "encrypted under transit key " + c.SigningKeysetKEK
		}
		if sub == "rotate-signing" {
			id, err := crypto.RotateSigningKeysetWith(c.SigningKeyset, kek)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "signing key %s is now primary (%s); restart kguard to sign with it; old signatures still verify\n", id, how)
			return nil
		}
		id, err := crypto.CreateSigningKeysetWith(c.SigningKeyset, kek)
		if err != nil {
			return err
		}
		pub := strings.TrimSuffix(c.SigningKeyset, ".json") + ".pub.json"
		if err := crypto.WritePublicKeysetWith(c.SigningKeyset, kek, pub); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s (signing key %s, %s) and its public keyset %s\n", c.SigningKeyset, id, how, pub)
		return nil
	}
	return fmt.Errorf("%w: unknown keys command %q", errUsage, sub)
}

// keysInit creates a local key store with the named KEKs, a signing keyset
// (and its public half) and a subject pepper in dir.
func keysInit(dir string, keks []string, stdout io.Writer) error {
	if len(keks) == 0 {
		keks = []string{"kguard-default"}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ks := dir + "/keystore.json"
	if err := crypto.CreateLocalKeyStore(ks, keks...); err != nil {
		return err
	}
	sk := dir + "/signing-keyset.json"
	id, err := crypto.CreateSigningKeyset(sk)
	if err != nil {
		return err
	}
	if err := crypto.WritePublicKeyset(sk, dir+"/signing-keyset.pub.json"); err != nil {
		return err
	}
	pepper := make([]byte, 32)
	if _, err := rand.Read(pepper); err != nil {
		return err
	}
	pf := dir + "/subject-pepper"
	f, err := os.OpenFile(pf, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(pepper); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s (KEKs %s), %s (signing key %s) and %s\n", ks, strings.Join(keks, ", "), sk, id, pf)
	return nil
}

// keyInfoer reads a key's metadata (both KMS providers implement it).
type keyInfoer interface {
	KeyInfo(ctx context.Context, name string) (crypto.KeyInfo, error)
}

// rotateKeys rotates each KEK and records a key.operation event for it
// (with the new version when the KMS tells it).
func rotateKeys(ctx context.Context, ks keyService, au *cliAudit, keks []string, stdout io.Writer) error {
	for _, kek := range keks {
		err := ks.RotateKey(ctx, kek)
		details := map[string]string{}
		if ki, ok := ks.(keyInfoer); ok && err == nil {
			if info, ierr := ki.KeyInfo(ctx, kek); ierr == nil {
				details["provider"] = info.Provider
				details["latest_version"] = fmt.Sprint(info.LatestVersion)
			}
		}
		if rerr := au.keyOperation("ROTATE", kek, details, err); rerr != nil {
			return fmt.Errorf("recording the rotation of %s: %w", kek, rerr)
		}
		if err != nil {
			return fmt.Errorf("rotating %s: %w", kek, err)
		}
		fmt.Fprintf(stdout, "rotated %s: new records use the new version within crypto.keys.active_lifetime; old records still decrypt\n", kek)
	}
	return nil
}
