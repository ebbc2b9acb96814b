// Package compat_test runs real Kafka clients (franz-go, IBM/sarama, kcat,
// confluent-kafka, kafka-python and the Apache Kafka Java client) through
// kguard in front of the real Apache Kafka 4.x cluster that
// test/kafka/cluster.sh starts, in the production topology: kguard talks
// SASL_SSL + SCRAM-SHA-512 upstream as its own identity, verifying the broker
// certificates against the test CA; clients log in to kguard with SASL as a
// test principal; a real policy engine over the shipped policies authorizes
// every request. It prints a client × operation table and fails on any FAIL.
package compat_test

import (
	"context"
	"fmt"
	"net"
	"os"
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
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy"
	"github.com/kguard/kguard/test/harness"
)

// The test principal and the names it is granted (policies/acls/compat.json
// in the policy copy). The topic pattern satisfies the shipped safeguards'
// topic_name_pattern.
const (
	principalUser = "compat"
	namePrefix    = "compat-"
)

// stack is kguard in front of the real cluster with a policy engine and a
// SASL user for the clients.
type stack struct {
	kafka    testenv.Kafka
	env      *harness.Env
	root     string // repository root
	user     string // client SASL user (User:compat)
	password string
	// passwords of every SASL user kguard knows, by user name
	passwords map[string]string
	// kguardAddrs are the broker addresses kguard advertises; upstream the
	// real ones. A client must only ever see the former.
	kguardAddrs map[string]bool
	upstream    map[string]bool
	// bootstrap is the address clients bootstrap from and protocol their
	// security.protocol: kguard's bootstrap listener over SASL_PLAINTEXT,
	// or with stackOpts.sni the bootstrap name over SASL_SSL (caFile
	// holds the CA of kguard's certificate).
	bootstrap string
	protocol  string
	caFile    string
	sni       *harness.SNITLS
}

// repoRoot is the repository root (tests run in their package directory).
func repoRoot(t testing.TB) string {
	t.Helper()
	r, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r, "policies", "kguard.rego")); err != nil {
		t.Fatalf("repository root %s has no policies/kguard.rego: %v", r, err)
	}
	return r
}

func randHex(t testing.TB, n int) string { return harness.RandHex(t, n) }

// copyPolicies copies the shipped policies (without the demo root) to dst
// and grants User:compat everything on topics and groups named compat-*,
// and Describe on the cluster.
func copyPolicies(t testing.TB, _, dst string, more ...harness.ACL) {
	t.Helper()
	acls := append(harness.GrantPrefix("User:"+principalUser, namePrefix), harness.ACL{
		Principal: "User:" + principalUser, Host: "*", Resource: "Cluster", Pattern: "LITERAL",
		Name: "kafka-cluster", Operation: "Describe", Permission: "ALLOW"})
	harness.PolicyDir(t, dst, "compat", append(acls, more...))
}

// stackOpts extends the default stack.
type stackOpts struct {
	acls      []harness.ACL     // more ACL entries
	files     map[string]string // more policy data files: path under the policy directory -> content
	users     []string          // more SASL users (passwords in stack.passwords)
	protector *crypto.Protector // data protection (nil: none)
	auditor   proxy.Auditor     // audit events (nil: none)
	// sni serves clients on one TLS port routed by SNI name
	// (harness.SNIBootstrapName, harness.SNIBrokerName).
	sni bool
}

// startStack starts kguard in front of the real cluster's SASL_SSL
// listeners and stops it when the test ends.
func startStack(t *testing.T) *stack { return startStackWith(t, stackOpts{}) }

// startStackWith is startStack with more policy, users and a protector.
func startStackWith(t *testing.T, o stackOpts) *stack {
	t.Helper()
	k := testenv.NeedKafka(t)
	harness.SharedClusterLock(t, k.Script)
	root := repoRoot(t)
	dir := t.TempDir()
	pdir := filepath.Join(dir, "policies")
	copyPolicies(t, root, pdir, o.acls...)
	for name, content := range o.files {
		p := filepath.Join(pdir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng, err := policy.NewEngine(ctx, policy.Config{Dirs: []string{pdir}})
	if err != nil {
		t.Fatalf("policy engine over the shipped policies: %v", err)
	}
	users := filepath.Join(dir, "users.yaml")
	pass := randHex(t, 16)
	if err := auth.AddUser(users, principalUser, pass, 4096); err != nil {
		t.Fatalf("adding SASL user: %v", err)
	}
	passwords := map[string]string{principalUser: pass}
	for _, u := range o.users {
		passwords[u] = randHex(t, 16)
		if err := auth.AddUser(users, u, passwords[u], 4096); err != nil {
			t.Fatalf("adding SASL user %s: %v", u, err)
		}
	}
	var sni *harness.SNITLS
	if o.sni {
		sni = harness.NewSNITLS(t)
	}
	env, err := harness.StartProxy(k.SASLSSL, harness.Options{
		Logger:      zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		Authorizer:  eng,
		Protector:   o.protector,
		Auditor:     o.auditor,
		NoAnonymous: true,
		Mutate: func(c *config.Config) {
			c.Upstream.TLS = &config.ClientTLS{CAFile: k.CAFile}
			c.Upstream.SASL = &config.ClientSASL{Mechanism: "SCRAM-SHA-512", Username: k.User, Password: k.Password}
			c.Listen.Auth.SASLMechanisms = []string{"SCRAM-SHA-512", "PLAIN"}
			c.Listen.Auth.CredentialsFile = users
			if sni != nil {
				sni.Configure(c)
			}
		},
	})
	if err != nil {
		t.Fatalf("starting kguard in front of %v: %v", k.SASLSSL, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = env.Proxy.Shutdown(ctx)
	})
	s := &stack{kafka: k, env: env, root: root, user: principalUser, password: pass, passwords: passwords,
		kguardAddrs: map[string]bool{}, upstream: map[string]bool{},
		bootstrap: env.Bootstrap(), protocol: "SASL_PLAINTEXT", sni: sni}
	if sni != nil {
		_, port, _ := net.SplitHostPort(env.Bootstrap())
		s.bootstrap, s.protocol, s.caFile = net.JoinHostPort(harness.SNIBootstrapName, port), "SASL_SSL", sni.CAFile
	}
	for _, a := range env.Proxy.BrokerAddrs() {
		s.kguardAddrs[a] = true
	}
	for _, a := range env.Proxy.UpstreamAddrs() {
		s.upstream[a] = true
	}
	for _, a := range append(append([]string{}, k.Plaintext...), k.SASLSSL...) {
		s.upstream[a] = true
	}
	if len(s.kguardAddrs) != 3 {
		t.Fatalf("kguard serves %d brokers (%v), the cluster has 3", len(s.kguardAddrs), env.Proxy.BrokerAddrs())
	}
	return s
}

// kgoOpts are the options of a franz-go client logged in to kguard as the
// test principal.
func (s *stack) kgoOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.bootstrap),
		kgo.SASL(scram.Auth{User: s.user, Pass: s.password}.AsSha512Mechanism()),
		kgo.ClientID("kguard-compat-franz-go"),
	}
	if s.sni != nil {
		opts = append(opts, kgo.Dialer(s.sni.Dial))
	}
	return append(opts, extra...)
}

// admin is a kadm client through kguard, closed when the test ends.
func (s *stack) admin(t testing.TB) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(s.kgoOpts()...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// checkBrokers says whether the broker addresses a client was told are
// exactly kguard's, with no upstream address among them.
func (s *stack) checkBrokers(seen []string) (bool, string) {
	if len(seen) == 0 {
		return false, "no brokers reported"
	}
	got := map[string]bool{}
	for _, a := range seen {
		if s.upstream[a] {
			return false, fmt.Sprintf("upstream broker address %s leaked", a)
		}
		if !s.kguardAddrs[a] {
			return false, fmt.Sprintf("%s is not one of kguard's broker addresses", a)
		}
		got[a] = true
	}
	if len(got) != len(s.kguardAddrs) {
		return false, fmt.Sprintf("%d of kguard's %d broker addresses listed", len(got), len(s.kguardAddrs))
	}
	return true, fmt.Sprintf("all %d are kguard's: %s", len(got), strings.Join(seen, " "))
}
