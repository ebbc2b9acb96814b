package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
)

// setSigning sets o.Signer and o.Verifier from the config: this instance's
// signing key (a keyset file, or an OpenBao transit key) and the trust
// store of other instances' public keys. stop ends the trust store's
// watcher.
func setSigning(ctx context.Context, c *config.Crypto, ks crypto.KMS, o *crypto.Options, log *zap.Logger) (stop func(), err error) {
	tk, _ := ks.(*crypto.TransitKMS)
	var trust *crypto.TrustStore
	if c.Trust.File != "" {
		opts := crypto.TrustStoreOptions{File: c.Trust.File, Refresh: c.Trust.Refresh, Logger: log.Named("trust")}
		if tk != nil {
			opts.Transit = tk
		}
		if trust, err = crypto.OpenTrustStore(ctx, opts); err != nil {
			return nil, fmt.Errorf("crypto.trust.file: %w", err)
		}
	}
	var keys *crypto.InstanceKeys
	switch {
	case c.SigningTransitKey != "":
		if tk == nil {
			return nil, errors.New("config crypto.signing_transit_key needs kms: vault")
		}
		if o.Signer, err = tk.NewTransitSigner(ctx, c.SigningTransitKey); err != nil {
			return nil, fmt.Errorf("crypto.signing_transit_key: %w", err)
		}
		if keys, err = crypto.NewTransitInstanceKeys(ctx, tk, c.SigningTransitKey, trust); err != nil {
			return nil, fmt.Errorf("crypto.signing_transit_key: %w", err)
		}
	case c.SigningKeyset != "":
		kek, err := signingKEK(ctx, c, ks)
		if err != nil {
			return nil, err
		}
		h, err := crypto.ReadSigningKeyset(c.SigningKeyset, kek)
		if err != nil {
			return nil, fmt.Errorf("crypto.signing_keyset: %w", err)
		}
		if o.Signer, err = crypto.NewInstanceSigner(h, c.InstanceID); err != nil {
			return nil, fmt.Errorf("crypto.signing_keyset: %w", err)
		}
		if keys, err = crypto.NewInstanceKeys(c.InstanceID, h, trust); err != nil {
			return nil, fmt.Errorf("crypto.signing_keyset: %w", err)
		}
	case c.SigningKeysetKEK != "":
		return nil, errors.New("config crypto.signing_keyset_kek is set but crypto.signing_keyset is not")
	case trust != nil: // verifies others' signatures, signs nothing itself
		if keys, err = crypto.NewInstanceKeys("", nil, trust); err != nil {
			return nil, err
		}
	default:
		return func() {}, nil
	}
	o.Verifier = crypto.NewVerifierWithKeys(keys)
	if o.Signer != nil {
		log.Info("record signing key", zap.String("key_id", o.Signer.KeyID()))
	}
	if trust == nil {
		return func() {}, nil
	}
	log.Info("trust store loaded", zap.String("file", c.Trust.File), zap.Int("keys", len(trust.Keys())))
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := trust.Run(wctx); err != nil {
			log.Error("trust store watch stopped; reloads need a restart", zap.Error(err))
		}
	}()
	return func() { cancel(); <-done }, nil
}

// transitSigningKey is `keys init-signing` and `keys rotate-signing` for
// crypto.signing_transit_key: create the ed25519 transit key, or rotate it.
func transitSigningKey(ctx context.Context, c *config.Crypto, rotate bool, stdout io.Writer) error {
	ks, closeKMS, err := openKMS(ctx, c, zap.NewNop())
	if err != nil {
		return err
	}
	defer closeKMS()
	tk, ok := ks.(*crypto.TransitKMS)
	if !ok {
		return errors.New("config crypto.signing_transit_key needs kms: vault")
	}
	name := c.SigningTransitKey
	if rotate {
		if err := tk.RotateKey(ctx, name); err != nil {
			return err
		}
	} else if err := tk.CreateSigningKey(ctx, name); err != nil {
		return err
	}
	s, err := tk.NewTransitSigner(ctx, name)
	if err != nil {
		return err
	}
	if rotate {
		fmt.Fprintf(stdout, "transit key %s rotated: restart kguard to sign as %s; trust stores learn the version by themselves; old signatures still verify\n", name, s.KeyID())
		return nil
	}
	fmt.Fprintf(stdout, "transit signing key %s (ed25519, the private key stays in OpenBao): signatures name %s; trust it elsewhere with `kguard keys trust add --transit %s`\n", name, s.KeyID(), name)
	return nil
}

// cmdKeysTrust is `kguard keys trust add|remove|list`.
func cmdKeysTrust(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "kguard keys trust add --config F (--keyset PUB.json INSTANCE | --transit KEY) | remove --config F [--at RFC3339] ID | list --config F"
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	sub := args[0]
	fs := newFlags("keys trust "+sub, stderr)
	cfgPath := fs.String("config", "kguard.yaml", "config file (its crypto.trust.file)")
	pub := fs.String("keyset", "", "add: the instance's public keyset (signing-keyset.pub.json)")
	transit := fs.String("transit", "", "add: an OpenBao transit ed25519 key")
	at := fs.String("at", "", "remove: revocation time (RFC 3339; default now)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	file := cfg.Crypto.Trust.File
	if file == "" {
		return errors.New("config crypto.trust.file is required")
	}
	now := time.Now().UTC()
	switch sub {
	case "add":
		switch {
		case *pub != "" && *transit == "" && len(pos) == 1:
			if err := crypto.TrustAddKeyset(file, pos[0], *pub, now); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "trusted instance %s (keyset %s): its key ids are %s/<Tink key id>\n", pos[0], *pub, pos[0])
			return nil
		case *transit != "" && *pub == "" && len(pos) == 0:
			if err := crypto.TrustAddTransit(file, *transit, now); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "trusted OpenBao transit key %s: every version, key ids bao:%s/v<N>\n", *transit, *transit)
			return nil
		}
		return fmt.Errorf("%w: %s", errUsage, use)
	case "remove":
		if len(pos) != 1 {
			return fmt.Errorf("%w: %s", errUsage, use)
		}
		when := now
		if *at != "" {
			if when, err = time.Parse(time.RFC3339Nano, *at); err != nil {
				return fmt.Errorf("%w: --at: %v", errUsage, err)
			}
		}
		got, err := crypto.TrustRevoke(file, pos[0], when)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s at %s: signatures made from then on fail, older ones still verify\n", pos[0], got.Format(time.RFC3339Nano))
		return nil
	case "list":
		if len(pos) != 0 {
			return fmt.Errorf("%w: %s", errUsage, use)
		}
		return trustList(ctx, cfg, file, stdout)
	}
	return fmt.Errorf("%w: unknown keys trust command %q; %s", errUsage, sub, use)
}

// trustList prints every key of the store; transit keys' versions are read
// from OpenBao when kms is vault.
func trustList(ctx context.Context, cfg *config.Config, file string, stdout io.Writer) error {
	opts := crypto.TrustStoreOptions{File: file, Lenient: true}
	if cfg.Crypto.KMS == "vault" {
		ks, closeKMS, err := openKMS(ctx, &cfg.Crypto, zap.NewNop())
		if err != nil {
			return err
		}
		defer closeKMS()
		opts.Transit = ks.(*crypto.TransitKMS)
	}
	s, err := crypto.OpenTrustStore(ctx, opts)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tSOURCE\tADDED\tREVOKED")
	for _, k := range s.Keys() {
		rev := "-"
		if !k.Revoked.IsZero() {
			rev = k.Revoked.UTC().Format(time.RFC3339Nano)
		}
		if k.Err != nil {
			rev += " (not loaded: " + k.Err.Error() + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.KeyID, k.Source, k.Added.UTC().Format(time.RFC3339), rev)
	}
	return tw.Flush()
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
