package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/compliance"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/policy"
)

// cmdCompliance builds and verifies compliance reports (docs/compliance.md).
func cmdCompliance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: kguard compliance report|verify", errUsage)
	}
	switch args[0] {
	case "report":
		return complianceReport(ctx, args[1:], stdout, stderr)
	case "verify":
		return complianceVerify(args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: unknown compliance command %q", errUsage, args[0])
}

func complianceReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compliance report", stderr)
	cfgPath := fs.String("config", "kguard.yaml", "config file of the kguard deployment")
	since := fs.String("since", "720h", "start of the period: RFC 3339, or a duration before now")
	until := fs.String("until", "", "end of the period: RFC 3339, or a duration before now (default: now)")
	format := fs.String("format", "html", "renderings besides report.json: html, md, json, or a comma list")
	out := fs.String("out", "", "directory to write the report to (required)")
	period := fs.Duration("cryptoperiod", 365*24*time.Hour, "longest a key version may stay current (PCI DSS 3.6.4)")
	retention := fs.Duration("required-retention", 365*24*time.Hour, "audit retention required (PCI DSS 10.5.1)")
	allowExpired := fs.Bool("allow-expired", false, "accept that retention removed the start of the audit topic")
	var keks, pubkeys stringList
	fs.Var(&keks, "kek", "another key-encryption key to report on (repeatable)")
	fs.Var(&pubkeys, "pubkey", "another public key that signed audit checkpoints, e.g. before a key rotation (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	now := time.Now()
	s, err := compliance.ParseTime(*since, now)
	if err != nil {
		return fmt.Errorf("%w: --since: %v", errUsage, err)
	}
	u := now
	if *until != "" {
		if u, err = compliance.ParseTime(*until, now); err != nil {
			return fmt.Errorf("%w: --until: %v", errUsage, err)
		}
	}
	raw, err := os.ReadFile(*cfgPath)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Audit.SigningKeyFile == "" {
		return errors.New("config audit.signing_key_file is required: the report is signed with the audit checkpoint key")
	}
	key, err := audit.LoadPrivateKey(cfg.Audit.SigningKeyFile)
	if err != nil {
		return err
	}
	pubs := []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}
	for _, f := range pubkeys {
		k, err := audit.LoadPublicKey(f)
		if err != nil {
			return err
		}
		pubs = append(pubs, k)
	}
	ko, err := upstreamKafka(cfg, cfg.Audit.Brokers)
	if err != nil {
		return err
	}
	kopts, err := ko.ClientOpts()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	src := compliance.Sources{Config: cfg, ConfigSHA256: hex.EncodeToString(sum[:]), Kafka: kopts, PublicKeys: pubs,
		AllowPrefixLoss: *allowExpired, ExtraKeys: keks, Since: s, Until: u, Now: now, Version: version,
		Cryptoperiod: *period, RequiredRetention: *retention, Progress: stderr}
	log := zap.NewNop()
	if !cfg.Policy.Disabled && len(cfg.Policy.Dirs) > 0 {
		eng, err := policy.NewEngine(ctx, policy.Config{Dirs: cfg.Policy.Dirs, Logger: log})
		if err != nil {
			return fmt.Errorf("loading policies: %w", err)
		}
		src.Policy = eng
	}
	if cfg.Crypto.KMS != "" {
		ks, closeKMS, err := openKMS(ctx, &cfg.Crypto, log)
		if err != nil {
			return err
		}
		defer closeKMS()
		if ki, ok := ks.(keyInfoer); ok {
			src.Keys = ki
		}
		src.KMSDescription = kmsDescription(&cfg.Crypto)
		src.Canary = func(ctx context.Context) (string, error) { return kmsCanary(ctx, ks) }
	}
	ev, err := compliance.Collect(ctx, src)
	if err != nil {
		return err
	}
	rep := compliance.Build(ev)
	paths, err := compliance.Write(*out, rep, strings.Split(*format, ","), key)
	if err != nil {
		return err
	}
	for _, c := range rep.Controls {
		fmt.Fprintf(stdout, "%-20s %-15s %s\n", c.ID, c.Status, c.Summary)
	}
	fmt.Fprintf(stdout, "wrote %s (signed with audit checkpoint key %s)\n", strings.Join(paths, ", "), audit.KeyID(pubs[0]))
	return nil
}

// kmsDescription says where the keys are held, without secrets.
func kmsDescription(c *config.Crypto) string {
	switch c.KMS {
	case "vault":
		v := c.Vault
		mount := v.Mount
		if mount == "" {
			mount = "transit"
		}
		auth := "token"
		if v.AppRoleID != "" {
			auth = "AppRole"
		}
		return fmt.Sprintf("OpenBao/Vault transit at %s (mount %s); key-encryption keys never leave it, kguard authenticates with a %s", v.Address, mount, auth)
	case "local":
		return "local key store file " + c.Local.KeystoreFile + " (cleartext Tink keysets, mode 0600)"
	}
	return c.KMS
}

// kmsCanary shows the key service still serves keys after shreds: a fresh
// key wraps and unwraps a data key, then is destroyed.
func kmsCanary(ctx context.Context, ks keyService) (string, error) {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	name := "kguard-compliance-canary-" + hex.EncodeToString(rnd[:])
	if err := ks.CreateKey(ctx, name); err != nil {
		return name, err
	}
	defer func() { _ = ks.DestroyKey(context.WithoutCancel(ctx), name) }()
	pt, wrapped, err := ks.GenerateDataKey(ctx, name, 32)
	if err != nil {
		return name, err
	}
	got, err := ks.UnwrapDataKeys(ctx, name, []string{wrapped})
	if err != nil {
		return name, err
	}
	if len(got) != 1 || got[0].Err != nil || !bytes.Equal(got[0].Key, pt) {
		return name, errors.New("unwrapped key differs from the generated one")
	}
	return name, nil
}

func complianceVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compliance verify", stderr)
	cfgPath := fs.String("config", "", "config file: its audit.signing_key_file's .pub verifies the report")
	var pubkeys stringList
	fs.Var(&pubkeys, "pubkey", "PEM Ed25519 public key (the audit checkpoint key's .pub; repeatable)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: kguard compliance verify [--pubkey F | --config F] REPORT_DIR", errUsage)
	}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		pubkeys = append(pubkeys, cfg.Audit.SigningKeyFile+".pub")
	}
	if len(pubkeys) == 0 {
		return fmt.Errorf("%w: --pubkey or --config is required", errUsage)
	}
	var keys []ed25519.PublicKey
	for _, f := range pubkeys {
		k, err := audit.LoadPublicKey(f)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	_, done, err := compliance.Verify(fs.Arg(0), keys)
	for _, d := range done {
		fmt.Fprintln(stdout, "ok:", d)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "OK: report signature, files and derived figures verified")
	return nil
}
