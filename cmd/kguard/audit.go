package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/config"
)

// upstreamKafka is how kguard's own clients (the audit sink) reach the
// cluster: the upstream bootstrap with kguard's TLS and SASL identity.
func upstreamKafka(cfg *config.Config, brokers []string) (audit.KafkaOptions, error) {
	o := audit.KafkaOptions{Brokers: brokers}
	if len(o.Brokers) == 0 {
		o.Brokers = cfg.Upstream.Bootstrap
	}
	if t := cfg.Upstream.TLS; t != nil {
		o.TLS, o.CAFile, o.ServerName = true, t.CAFile, t.ServerName
	}
	if s := cfg.Upstream.SASL; s != nil {
		o.SASLMechanism, o.User, o.Password = s.Mechanism, s.Username, s.Password
		if s.PasswordFile != "" {
			b, err := os.ReadFile(s.PasswordFile)
			if err != nil {
				return o, fmt.Errorf("upstream.sasl.password_file: %w", err)
			}
			o.Password = strings.TrimRight(string(b), "\r\n")
		}
	}
	return o, nil
}

// startAudit builds the recorder and its Kafka sink. The returned stop
// function records audit.stop, ships what it can and closes the sink.
func startAudit(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, log *zap.Logger) (*audit.Recorder, func(context.Context), error) {
	a := &cfg.Audit
	if a.SpoolDir == "" || a.SigningKeyFile == "" {
		return nil, nil, errors.New("config audit: spool_dir and signing_key_file are required")
	}
	instance := a.InstanceID
	if instance == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, nil, fmt.Errorf("audit instance id: %w", err)
		}
		instance = h
	}
	key, err := audit.LoadPrivateKey(a.SigningKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("audit signing key: %w", err)
	}
	signer, err := audit.NewSigner(key)
	if err != nil {
		return nil, nil, err
	}
	full, err := audit.ParseFullPolicy(a.OnFull)
	if err != nil {
		return nil, nil, fmt.Errorf("config audit.on_full: %w", err)
	}
	fsync, err := audit.ParseFsyncPolicy(a.Fsync)
	if err != nil {
		return nil, nil, fmt.Errorf("config audit.fsync: %w", err)
	}
	ko, err := upstreamKafka(cfg, a.Brokers)
	if err != nil {
		return nil, nil, err
	}
	copts, err := ko.ClientOpts()
	if err != nil {
		return nil, nil, err
	}
	if a.Topic.Name == "" {
		a.Topic.Name = audit.DefaultTopic
	}
	tc := audit.TopicConfig{Name: a.Topic.Name, Partitions: a.Topic.Partitions, ReplicationFactor: a.Topic.ReplicationFactor,
		MinInsyncReplicas: a.Topic.MinInsyncReplicas, Retention: a.Topic.Retention}
	sink, err := audit.NewKafkaSink(ctx, copts, tc, true, log.Named("audit"))
	if err != nil {
		return nil, nil, fmt.Errorf("audit sink: %w", err)
	}
	m := audit.NewMetrics()
	if reg != nil {
		reg.MustRegister(m)
	}
	rec, err := audit.New(audit.Config{
		InstanceID: instance, SpoolDir: a.SpoolDir, SpoolMaxBytes: a.SpoolMaxBytes, Fsync: fsync, OnFull: full,
		CheckpointEvery: a.CheckpointEvery, CheckpointInterval: a.CheckpointInterval,
		Signer: signer, Sink: sink, Logger: log.Named("audit"), Metrics: m,
	})
	if err != nil {
		sink.Close()
		return nil, nil, fmt.Errorf("audit recorder: %w", err)
	}
	log.Info("audit trail on", zap.String("instance", instance), zap.String("topic", tc.Name), zap.String("spool", a.SpoolDir),
		zap.String("checkpoint_key", audit.KeyID(signer.PublicKey())))
	stop := func(ctx context.Context) {
		if err := rec.Close(ctx); err != nil {
			log.Warn("audit close: unsent events stay in the spool for the next start", zap.Error(err))
		}
		sink.Close()
	}
	return rec, stop, nil
}

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: kguard audit verify|export|keygen", errUsage)
	}
	switch args[0] {
	case "keygen":
		fs := newFlags("audit keygen", stderr)
		out := fs.String("out", "audit-signing.pem", "private key file to create (the public key goes to FILE.pub)")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		pub, err := audit.GenerateKeyFile(*out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s; checkpoint key id %s\n", *out, audit.KeyID(pub))
		return nil
	case "verify":
		fs := newFlags("audit verify", stderr)
		topicFlags := addTopicFlags(fs)
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		opts, err := topicFlags.options()
		if err != nil {
			return err
		}
		return audit.RunVerify(ctx, opts, stdout)
	case "export":
		fs := newFlags("audit export", stderr)
		topicFlags := addTopicFlags(fs)
		out := fs.String("out", "", "file to write (an export header line, then one event per line)")
		window := addWindowFlags(fs)
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		opts, err := topicFlags.options()
		if err != nil {
			return err
		}
		since, until, err := window.bounds()
		if err != nil {
			return err
		}
		if *out == "" {
			return fmt.Errorf("%w: --out is required", errUsage)
		}
		h, err := audit.RunExport(ctx, audit.ExportOptions{Verify: opts, Since: since, Until: until, Out: *out}, stderr)
		if h.Records > 0 || err == nil {
			fmt.Fprintf(stdout, "exported %d of %d events from %s to %s; chain verified: %t, checkpoints verified: %t (%d)\n",
				h.Events, h.Records, h.Topic, *out, h.ChainVerified, h.CheckpointsVerified, h.Checkpoints)
		}
		return err
	}
	return fmt.Errorf("%w: unknown audit command %q", errUsage, args[0])
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// ensureDemoAuditKey creates a signing key for the demo if none exists.
func ensureDemoAuditKey(path string) (ed25519.PublicKey, error) {
	if _, err := os.Stat(path); err == nil {
		return audit.LoadPublicKey(path + ".pub")
	}
	return audit.GenerateKeyFile(path)
}

// topicFlags are the flags that reach the audit topic (audit verify,
// audit export, policy diff --replay topic).
type topicFlags struct {
	brokers, topic, ca, mech, user, passEnv *string
	keys                                    stringList
	tls, allowExpired                       *bool
	timeout                                 *time.Duration
	progress                                *int
}

func addTopicFlags(fs *flag.FlagSet) *topicFlags {
	t := &topicFlags{
		brokers:      fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers"),
		topic:        fs.String("topic", audit.DefaultTopic, "audit topic"),
		tls:          fs.Bool("tls", false, "connect with TLS"),
		ca:           fs.String("ca", "", "CA file (PEM) for TLS"),
		mech:         fs.String("sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
		user:         fs.String("user", "", "SASL user"),
		passEnv:      fs.String("password-env", "KGUARD_AUDIT_PASSWORD", "environment variable holding the SASL password"),
		timeout:      fs.Duration("timeout", 0, "give up after this long (0: no limit)"),
		progress:     fs.Int("progress-every", 100000, "print progress every N events"),
		allowExpired: fs.Bool("allow-expired", false, "accept that retention removed the start of the topic (checking starts at the first checkpoint)"),
	}
	fs.Var(&t.keys, "pubkey", "PEM Ed25519 public key that signs checkpoints (repeatable)")
	return t
}

func (t *topicFlags) options() (audit.VerifyOptions, error) {
	if len(t.keys) == 0 {
		return audit.VerifyOptions{}, fmt.Errorf("%w: at least one --pubkey is required", errUsage)
	}
	return audit.VerifyOptions{
		Kafka: audit.KafkaOptions{Brokers: strings.Split(*t.brokers, ","), TLS: *t.tls, CAFile: *t.ca,
			SASLMechanism: *t.mech, User: *t.user, Password: os.Getenv(*t.passEnv)},
		Topic: *t.topic, PublicKeyFiles: t.keys, ProgressEvery: *t.progress, Timeout: *t.timeout, AllowPrefixLoss: *t.allowExpired,
	}, nil
}

// windowFlags bound events by time: --since, --until (RFC 3339, or a
// duration before now such as 168h).
type windowFlags struct{ since, until *string }

func addWindowFlags(fs *flag.FlagSet) *windowFlags {
	return &windowFlags{
		since: fs.String("since", "", "first event time (RFC 3339, or a duration before now, e.g. 168h)"),
		until: fs.String("until", "", "events before this time (RFC 3339, or a duration before now)"),
	}
}

func (w *windowFlags) bounds() (since, until time.Time, err error) {
	parse := func(name, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, nil
		}
		if d, err := time.ParseDuration(v); err == nil {
			return time.Now().Add(-d), nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: --%s: %q is neither RFC 3339 nor a duration", errUsage, name, v)
		}
		return t, nil
	}
	if since, err = parse("since", *w.since); err != nil {
		return since, until, err
	}
	until, err = parse("until", *w.until)
	return since, until, err
}
