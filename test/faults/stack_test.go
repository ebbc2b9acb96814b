// Package faults_test breaks things under load through kguard in front of
// the real Apache Kafka 4.x cluster (test/kafka/cluster.sh), in the
// production topology (kguard upstream over SASL_SSL with SCRAM-SHA-512 as
// its own identity, clients logging in to kguard with SCRAM-SHA-512, a real
// policy engine over the shipped policies): a partition leader killed with
// SIGKILL and restarted, and kguard itself restarted on the same ports. An
// idempotent acks=all producer runs throughout; afterwards every
// acknowledged record must be read back exactly once, in order per
// partition.
package faults_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/test/harness"
)

// The test principal and the names it is granted.
const (
	principalUser = "faults"
	namePrefix    = "faults-"
)

// stack is what a fault test runs: the cluster, kguard's configuration
// pieces (so that kguard can be restarted on the same ports) and the
// running kguard.
type stack struct {
	t        *testing.T
	kafka    testenv.Kafka
	engine   *policy.Engine
	users    string
	user     string
	password string
	port     int // bootstrap port; brokers on port+1+node id
	env      *harness.Env
}

func randHex(t testing.TB, n int) string { return harness.RandHex(t, n) }

// copyPolicies copies the shipped policies (without the demo root) and
// grants User:faults everything on faults-* topics and groups.
func copyPolicies(t testing.TB, dst string) {
	t.Helper()
	harness.PolicyDir(t, dst, "faults", harness.GrantPrefix("User:"+principalUser, namePrefix))
}

// newStack prepares policy, users and fixed ports, and starts kguard.
func newStack(t *testing.T) *stack {
	t.Helper()
	k := testenv.NeedKafka(t)
	dir := t.TempDir()
	pdir := filepath.Join(dir, "policies")
	copyPolicies(t, pdir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng, err := policy.NewEngine(ctx, policy.Config{Dirs: []string{pdir}})
	if err != nil {
		t.Fatalf("policy engine: %v", err)
	}
	s := &stack{t: t, kafka: k, engine: eng, users: filepath.Join(dir, "users.yaml"), user: principalUser, password: randHex(t, 16)}
	if err := auth.AddUser(s.users, s.user, s.password, 4096); err != nil {
		t.Fatalf("adding SASL user: %v", err)
	}
	ports, err := harness.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	s.port = ports[0]
	if err := s.startKguard(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.stopKguard() })
	return s
}

// startKguard starts kguard on the stack's fixed ports.
func (s *stack) startKguard() error {
	k := s.kafka
	env, err := harness.StartProxy(k.SASLSSL, harness.Options{
		Logger:      zaptest.NewLogger(s.t, zaptest.Level(zap.ErrorLevel)),
		Authorizer:  s.engine,
		NoAnonymous: true,
		Mutate: func(c *config.Config) {
			c.Listen.Bootstrap = fmt.Sprintf("127.0.0.1:%d", s.port)
			c.Listen.BrokerPortBase = s.port + 1
			c.Upstream.TLS = &config.ClientTLS{CAFile: k.CAFile}
			c.Upstream.SASL = &config.ClientSASL{Mechanism: "SCRAM-SHA-512", Username: k.User, Password: k.Password}
			c.Listen.Auth.SASLMechanisms = []string{"SCRAM-SHA-512"}
			c.Listen.Auth.CredentialsFile = s.users
			c.Limits.ShutdownGrace = 5 * time.Second
		},
	})
	if err != nil {
		return fmt.Errorf("starting kguard on port %d in front of %v: %w", s.port, k.SASLSSL, err)
	}
	s.env = env
	return nil
}

// stopKguard shuts kguard down (in-flight requests are answered first).
func (s *stack) stopKguard() error {
	if s.env == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.env.Proxy.Shutdown(ctx)
	s.env = nil
	return err
}

func (s *stack) bootstrap() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// client is a kgo client through kguard as User:faults.
func (s *stack) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.bootstrap()),
		kgo.SASL(scram.Auth{User: s.user, Pass: s.password}.AsSha512Mechanism()),
		kgo.ClientID("kguard-faults"),
	}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// direct is a kadm client straight to the cluster's SASL_SSL listeners (as
// kguard's service identity), for watching the cluster's health
// independently of kguard.
func (s *stack) direct(t testing.TB) *kadm.Client {
	t.Helper()
	pem, err := os.ReadFile(s.kafka.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", s.kafka.CAFile)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.kafka.SASLSSL...),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: s.kafka.User, Pass: s.kafka.Password}.AsSha512Mechanism()),
		kgo.ClientID("kguard-faults-health"),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// health describes what is wrong with the cluster, "" when every broker is
// registered and every partition has a leader and its full ISR.
func health(ctx context.Context, adm *kadm.Client) string {
	md, err := adm.Metadata(ctx)
	if err != nil {
		return fmt.Sprintf("metadata: %v", err)
	}
	if len(md.Brokers) != 3 {
		return fmt.Sprintf("%d brokers registered", len(md.Brokers))
	}
	for _, td := range md.Topics {
		if td.Err != nil {
			return fmt.Sprintf("topic %s: %v", td.Topic, td.Err)
		}
		for _, p := range td.Partitions {
			if p.Leader < 0 || len(p.ISR) < len(p.Replicas) || len(p.OfflineReplicas) > 0 {
				return fmt.Sprintf("%s/%d: leader %d, replicas %v, ISR %v", td.Topic, p.Partition, p.Leader, p.Replicas, p.ISR)
			}
		}
	}
	return ""
}

// waitHealthy waits until the cluster is healthy (see health).
func waitHealthy(t *testing.T, adm *kadm.Client, d time.Duration) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	last := ""
	for {
		rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
		last = health(rctx, adm)
		rcancel()
		if last == "" {
			t.Logf("cluster healthy (3 brokers, every partition with a leader and full ISR) after %v", time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("cluster not healthy after %v: %s", d, last)
		case <-time.After(time.Second):
		}
	}
}

// cluster runs cluster.sh with args.
func (s *stack) cluster(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "bash", append([]string{s.kafka.Script}, args...)...)
	out, err := cmd.CombinedOutput()
	s.t.Logf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("cluster.sh %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
