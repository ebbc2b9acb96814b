package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	bootstrap := fs.String("bootstrap", "127.0.0.1:9092", "client-facing bootstrap address")
	base := fs.Int("broker-port-base", 9093, "broker N listens on this port + N")
	metrics := fs.String("metrics", "127.0.0.1:9100", "Prometheus /metrics address (empty: off)")
	level := fs.String("log-level", "info", "log level")
	tenantsBootstrap := fs.String("tenants-bootstrap", "127.0.0.1:9192", "bootstrap of the second kguard, whose SASL tenants acme and globex have virtual clusters")
	tenantsBase := fs.Int("tenants-broker-port-base", 9193, "the second kguard's broker N listens on this port + N")
	policies := fs.String("policies", "policies", "policy directory; its demo/ data set lets the demo principal do everything")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3),
		kfake.SeedTopics(3, "payments", "acme.orders", "globex.orders"), demoKfakeVersions())
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
	tenantsCfg, err := demoTenantsConfig(work, *tenantsBootstrap, *tenantsBase, cluster.ListenAddrs(), *policies, *level)
	if err != nil {
		return err
	}
	// The second kguard's part of the banner, printed by the first before
	// "Press Ctrl-C" (empty when it could not start).
	tenantsBanner := make(chan string, 1)
	go func() {
		if err := serve(ctx, tenantsCfg, log.Named("tenants"), func(p *proxy.Proxy) {
			tenantsBanner <- fmt.Sprintf(`
Virtual clusters (second kguard, bootstrap %[1]s, SASL PLAIN): tenants acme and globex
both use topic "orders" without a prefix; the cluster holds acme.orders and globex.orders,
and each tenant sees only its own:
  echo from-acme | kcat -b %[1]s %[2]s -P -t orders
  echo from-globex | kcat -b %[1]s %[3]s -P -t orders
  kcat -b %[1]s %[2]s -C -t orders -e
  kcat -b %[1]s %[2]s -L
  kcat -b %[4]s -L            # the physical cluster: acme.orders, globex.orders
`, p.BootstrapAddr(), demoSASL("acme-app"), demoSASL("globex-app"), cluster.ListenAddrs()[0])
		}); err != nil {
			log.Error("virtual-cluster demo kguard", zap.Error(err))
			select {
			case tenantsBanner <- "":
			default:
			}
		}
	}()
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
		var tenants string
		select {
		case tenants = <-tenantsBanner:
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
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
%s
Press Ctrl-C to stop.
`, p.BootstrapAddr(), b.String(), p.BootstrapAddr(), p.BootstrapAddr(), p.BootstrapAddr(), p.BootstrapAddr(), cluster.ListenAddrs()[0], p.BootstrapAddr(), auditKey, tenants)
	})
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// demoTenantsConfig is the configuration of the demo's second kguard: SASL
// PLAIN users acme-app and globex-app (password "<name>-demo") in tenants
// acme and globex, each with a virtual cluster under its prefix.
func demoTenantsConfig(work, bootstrap string, base int, upstream []string, policies, level string) (*config.Config, error) {
	users := filepath.Join(work, "users.yaml")
	for _, u := range []string{"acme-app", "globex-app"} {
		if err := auth.AddUser(users, u, u+"-demo", auth.MinIterations); err != nil {
			return nil, fmt.Errorf("demo users: %w", err)
		}
	}
	return config.Parse(fmt.Appendf(nil, `listen:
  bootstrap: %q
  broker_port_base: %d
  auth:
    sasl_mechanisms: [PLAIN]
    credentials_file: %q
upstream:
  bootstrap: [%s]
policy:
  dirs: [%q, %q]
tenants:
  rules:
    - prefix: "User:acme-"
      tenant: acme
    - prefix: "User:globex-"
      tenant: globex
  virtual_clusters:
    acme: {prefix: "acme."}
    globex: {prefix: "globex."}
log:
  level: %s
  format: console
`, bootstrap, base, users, quoteAll(upstream), policies, filepath.Join(policies, "demo"), level))
}

// demoSASL is the kcat options that log in as a demo tenant's user.
func demoSASL(user string) string {
	return fmt.Sprintf("-X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN -X sasl.username=%s -X sasl.password=%s-demo", user, user)
}
