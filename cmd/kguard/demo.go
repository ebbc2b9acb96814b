package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	bootstrap := fs.String("bootstrap", "127.0.0.1:9092", "client-facing bootstrap address")
	base := fs.Int("broker-port-base", 9093, "broker N listens on this port + N")
	metrics := fs.String("metrics", "127.0.0.1:9100", "Prometheus /metrics address (empty: off)")
	level := fs.String("log-level", "info", "log level")
	policies := fs.String("policies", "policies", "policy directory; its demo/ data set lets the demo principal do everything")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3),
		kfake.SeedTopics(3, "payments"), demoKfakeVersions())
	if err != nil {
		return fmt.Errorf("starting in-process Kafka: %w", err)
	}
	defer cluster.Close()
	demoKfakeControls(cluster)
	work, err := os.MkdirTemp("", "kguard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	auditKey := filepath.Join(work, "audit-signing.pem")
	if _, err := ensureDemoAuditKey(auditKey); err != nil {
		return err
	}
	// Data protection: a local key store, a signing keyset and a subject
	// pepper, as `kguard keys init` makes them.
	keys := filepath.Join(work, "keys")
	if err := keysInit(keys, []string{"kguard-default-payments"}, io.Discard); err != nil {
		return fmt.Errorf("demo keys: %w", err)
	}
	cryptoCfg := fmt.Sprintf("crypto:\n  kms: local\n  local:\n    keystore_file: %q\n    auto_create: true\n  signing_keyset: %q\n  subject_pepper_file: %q\n",
		filepath.Join(keys, "keystore.json"), filepath.Join(keys, "signing-keyset.json"), filepath.Join(keys, "subject-pepper"))
	cfg, err := config.Parse(fmt.Appendf(nil, "listen:\n  bootstrap: %q\n  broker_port_base: %d\n  auth:\n    allow_anonymous: true\n    anonymous_principal: demo\nupstream:\n  bootstrap: [%s]\npolicy:\n  dirs: [%q, %q]\naudit:\n  enabled: true\n  instance_id: kguard-demo\n  spool_dir: %q\n  signing_key_file: %q\n  checkpoint_interval: 10s\nmetrics:\n  listen: %q\nlog:\n  level: %s\n  format: console\n%s",
		*bootstrap, *base, quoteAll(cluster.ListenAddrs()), *policies, filepath.Join(*policies, "demo"), filepath.Join(work, "audit-spool"), auditKey, *metrics, *level, cryptoCfg))
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort on exit
	log.Info("in-process Kafka cluster (kfake) started", zap.Strings("upstream", cluster.ListenAddrs()))
	return serve(ctx, cfg, log, func(p *proxy.Proxy) {
		addrs := p.BrokerAddrs()
		ids := make([]int, 0, len(addrs))
		for id := range addrs {
			ids = append(ids, int(id))
		}
		sort.Ints(ids)
		var b strings.Builder
		for _, id := range ids {
			fmt.Fprintf(&b, "  broker %d: %s -> upstream %s\n", id, addrs[int32(id)], p.UpstreamAddrs()[int32(id)])
		}
		fmt.Fprintf(stdout, `
kguard demo is ready: bootstrap %s
%s
Try it (kcat):
  echo '{"card":"4111111111111111","amount":42}' | kcat -b %s -P -t payments
  kcat -b %s -C -t payments -e
  kcat -b %s -L

Kafka's own tools work too, e.g.:
  kafka-topics.sh --bootstrap-server %s --create --topic quickstart-events --replication-factor 3

Topic payments is protected (policies/demo/protection/demo.json): "card" is encrypted
(AES-256-GCM) and every record signed. Through kguard, User:demo reads the plaintext;
the broker itself stores ciphertext - read it straight from the in-process Kafka:
  kcat -b %s -C -t payments -e -J

The audit trail goes to topic __kguard_audit; check it with:
  go run ./cmd/kguard audit verify --brokers %s --pubkey %s.pub

Press Ctrl-C to stop.
`, p.BootstrapAddr(), b.String(), p.BootstrapAddr(), p.BootstrapAddr(), p.BootstrapAddr(), p.BootstrapAddr(), cluster.ListenAddrs()[0], p.BootstrapAddr(), auditKey)
	})
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
