// Package adversarial_test attacks a real `kguard serve` process the way an
// outside reviewer would: hand-made Kafka requests from authenticated
// principals of different tenants (and from sockets that never log in),
// each case printing what was sent, what came back, and whether kguard kept
// serving other clients. Denials are checked in the audit trail, read
// straight from the cluster's audit topic.
//
// The default stack is kguard (the binary built from this checkout) in front
// of a 3-broker in-process Kafka (franz-go's kfake) with SASL PLAIN and
// SCRAM, tenants acme and globex, the shipped policies, a protected topic and
// the audit trail on. Cases whose behaviour depends on the real broker
// (fetch session ids, topic ids) also run against the real Apache Kafka 4.x
// cluster that test/kafka/cluster.sh starts (realStack).
//
// Every case logs lines starting with "ATTACK" (test/run-tests.sh prints
// them in CI's output).
package adversarial_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/test/harness"
)

// kguardBin is the kguard executable built from this checkout by TestMain.
var kguardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kguard-adversarial-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kguardBin = filepath.Join(dir, "kguard")
	build := exec.Command("go", "build", "-o", kguardBin, "./cmd/kguard")
	build.Dir = filepath.Join("..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building kguard:", err)
		os.Exit(1)
	}
	code := m.Run()
	stopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The principals every stack knows. Tenants come from kguard's tenants
// section: User:acme-* is tenant acme (names "acme."), User:globex-* is
// tenant globex (names "globex."). erin and frank have no tenant: plain
// Kafka ACLs only. canary is the bystander whose traffic must keep working
// while the others attack.
const (
	acme   = "acme-app"
	globex = "globex-app"
	erin   = "erin"
	frank  = "frank"
	canary = "canary"
)

// Topics every stack seeds (3 partitions, replication factor 3) and fills
// with secretRecords records each produced straight to the cluster.
var seedTopics = []string{"acme.orders", "acme.payments", "globex.ledger", "erin-data", "frank-secret", "canary-t"}

const secretRecords = 20

// acls is the policy data set: each principal owns its names.
func acls() []harness.ACL {
	var a []harness.ACL
	grant := func(p, prefix string) {
		for _, rt := range []string{"Topic", "Group", "TransactionalId"} {
			a = append(a, harness.ACL{Principal: "User:" + p, Host: "*", Resource: rt, Pattern: "PREFIXED",
				Name: prefix, Operation: "All", Permission: "ALLOW"})
		}
	}
	grant(acme, "acme.")
	grant(globex, "globex.")
	grant(erin, "erin-")
	grant(frank, "frank-")
	grant(canary, "canary-")
	for _, p := range []string{acme, globex, erin, frank, canary} {
		a = append(a, harness.ACL{Principal: "User:" + p, Host: "*", Resource: "Cluster", Pattern: "LITERAL",
			Name: "kafka-cluster", Operation: "IdempotentWrite", Permission: "ALLOW"})
	}
	return a
}

// protection encrypts $.card of acme.payments for everybody but acme-app.
const protection = `{
  "adv-payments": {
    "topic": "acme.payments",
    "fields": [{"path": "$.card", "algorithm": "AES256_GCM"}],
    "kek": "kguard-{tenant}-payments",
    "sign": true,
    "decrypt": {"principals": ["User:acme-app"]},
    "on_denied": "ciphertext",
    "on_bad_signature": "drop"
  }
}`

// stack is one kguard process in front of one cluster.
type stack struct {
	name       string // "kfake" or "kafka"
	bootstrap  string // kguard's bootstrap address
	brokerAddr map[int32]string
	metrics    string // kguard's metrics address
	auditTopic string
	passwords  map[string]string
	direct     []kgo.Opt // a superuser client straight to the cluster
	cmd        *exec.Cmd
	waited     chan struct{} // closed when kguard has exited
	logFile    string
	dir        string
	cluster    *kfake.Cluster // nil for the real cluster
	stopOnce   sync.Once
}

// stackOpts change a stack from the default.
type stackOpts struct {
	extraYAML string            // appended to kguard's config (top-level keys)
	limits    string            // the limits section's body (indented two spaces)
	kfake     []kfake.Opt       // more kfake options
	moreACLs  []harness.ACL     // more policy ACLs
	files     map[string]string // more policy files: path under the policy dir -> content
	audit     string            // more keys of the audit section (indented two spaces, newline-terminated)
	tenants   string            // more keys of the tenants section (indented two spaces, newline-terminated)
}

var (
	sharedMu    sync.Mutex
	sharedStack *stack
	sharedErr   error
	realShared  *stack
	realErr     error
)

// shared is the package's default kfake stack, started on first use.
func shared(t *testing.T) *stack {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedStack == nil && sharedErr == nil {
		sharedStack, sharedErr = startKfake(stackOpts{})
	}
	if sharedErr != nil {
		t.Fatalf("starting the shared stack: %v", sharedErr)
	}
	return sharedStack
}

func stopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	for _, s := range []*stack{sharedStack, realShared} {
		if s != nil {
			s.stop()
		}
	}
}

// fresh starts a stack of its own for a test that changes limits or
// exhausts resources; it stops when the test ends.
func fresh(t *testing.T, o stackOpts) *stack {
	t.Helper()
	s, err := startKfake(o)
	if err != nil {
		t.Fatalf("starting a stack: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}

func startKfake(o stackOpts) (*stack, error) {
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(3)}, o.kfake...)...)
	if err != nil {
		return nil, fmt.Errorf("kfake: %w", err)
	}
	addrs := c.ListenAddrs()
	s := &stack{name: "kfake", cluster: c, direct: []kgo.Opt{kgo.SeedBrokers(addrs...)}}
	upstream := fmt.Sprintf("upstream:\n  bootstrap: [%s]\n", strings.Join(addrs, ", "))
	if err := s.start(upstream, o); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// start writes the configuration, policies, users and keys, seeds the
// topics and runs `kguard serve` until it answers.
func (s *stack) start(upstream string, o stackOpts) error {
	dir, err := os.MkdirTemp("", "kguard-adv-"+s.name+"-")
	if err != nil {
		return err
	}
	s.dir = dir
	if err := s.seed(); err != nil {
		return fmt.Errorf("seeding topics: %w", err)
	}
	pdir := filepath.Join(dir, "policies")
	if err := writePolicies(pdir, append(acls(), o.moreACLs...), o.files); err != nil {
		return err
	}
	users := filepath.Join(dir, "users.yaml")
	s.passwords = map[string]string{}
	for _, u := range []string{acme, globex, erin, frank, canary} {
		s.passwords[u] = randHex(12)
		if err := auth.AddUser(users, u, s.passwords[u], 4096); err != nil {
			return fmt.Errorf("adding user %s: %w", u, err)
		}
	}
	keys := filepath.Join(dir, "keys")
	if out, err := exec.Command(kguardBin, "keys", "init", "--dir", keys).CombinedOutput(); err != nil {
		return fmt.Errorf("kguard keys init: %v: %s", err, out)
	}
	auditKey := filepath.Join(dir, "audit.pem")
	if out, err := exec.Command(kguardBin, "audit", "keygen", "--out", auditKey).CombinedOutput(); err != nil {
		return fmt.Errorf("kguard audit keygen: %v: %s", err, out)
	}
	ports, err := harness.FreePorts(2)
	if err != nil {
		return err
	}
	s.bootstrap = fmt.Sprintf("127.0.0.1:%d", ports[0])
	s.metrics = fmt.Sprintf("127.0.0.1:%d", ports[1])
	base, err := harness.FreePorts(1)
	if err != nil {
		return err
	}
	if s.auditTopic == "" {
		s.auditTopic = "__kguard_audit"
	}
	limits := o.limits
	if limits == "" {
		limits = "  idle_timeout: 2m\n"
	}
	cfg := fmt.Sprintf(`listen:
  bootstrap: %q
  broker_port_base: %d
  auth:
    sasl_mechanisms: [PLAIN, SCRAM-SHA-512]
    credentials_file: %q
%s
tenants:
  rules:
    - prefix: "User:acme-"
      tenant: acme
    - prefix: "User:globex-"
      tenant: globex
%spolicy:
  dirs: [%q]
audit:
  enabled: true
  instance_id: kguard-adversarial
  spool_dir: %q
  signing_key_file: %q
  checkpoint_interval: 5s
%s  topic:
    name: %s
    partitions: 1
    replication_factor: 3
crypto:
  kms: local
  local:
    keystore_file: %q
    auto_create: true
  signing_keyset: %q
  subject_pepper_file: %q
limits:
%s
metrics:
  listen: %q
log:
  level: info
%s`, s.bootstrap, base[0]+1, users, upstream, o.tenants, pdir, filepath.Join(dir, "spool"), auditKey, o.audit, s.auditTopic,
		filepath.Join(keys, "keystore.json"), filepath.Join(keys, "signing-keyset.json"),
		filepath.Join(keys, "subject-pepper"), limits, s.metrics, o.extraYAML)
	cfgFile := filepath.Join(dir, "kguard.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return err
	}
	s.logFile = filepath.Join(dir, "kguard.log")
	logf, err := os.Create(s.logFile)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(kguardBin, "serve", "--config", cfgFile)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting kguard serve: %w", err)
	}
	s.waited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.waited) }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if err := s.ping(); err == nil {
			break
		} else if time.Now().After(deadline) || s.exited() {
			return fmt.Errorf("kguard did not come up: %v\n%s", err, s.logTail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return s.learnBrokers()
}

// seed creates the seed topics and fills each with secret records.
func (s *stack) seed() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(append(s.direct, kgo.AllowAutoTopicCreation())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := createTopics(ctx, cl, seedTopics...); err != nil {
		return err
	}
	for _, tp := range seedTopics {
		for i := range secretRecords {
			r := &kgo.Record{Topic: tp, Partition: int32(i % 3), Value: []byte(fmt.Sprintf(`{"secret":"%s-%d","card":"4111111111111111"}`, tp, i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				return fmt.Errorf("producing to %s: %w", tp, err)
			}
		}
	}
	return nil
}

// stop ends kguard (SIGTERM, then SIGKILL) and the cluster.
func (s *stack) stop() {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil && !s.exited() {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			for i := 0; i < 50 && !s.exited(); i++ {
				time.Sleep(100 * time.Millisecond)
			}
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
		if s.cluster != nil {
			s.cluster.Close()
		}
		if s.dir != "" {
			os.RemoveAll(s.dir)
		}
	})
}

func (s *stack) exited() bool {
	if s.waited == nil {
		return true
	}
	select {
	case <-s.waited:
		return true
	default:
		return false
	}
}

// alive reports whether the kguard process still runs.
func (s *stack) alive() bool { return !s.exited() }

// logTail is the last n lines of kguard's log.
func (s *stack) logTail(n int) string {
	b, _ := os.ReadFile(s.logFile)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logContains reports whether kguard's log has a line containing every
// one of parts.
func (s *stack) logContains(parts ...string) bool {
	b, _ := os.ReadFile(s.logFile)
	for _, line := range bytes.Split(b, []byte("\n")) {
		ok := true
		for _, p := range parts {
			if !bytes.Contains(line, []byte(p)) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// ping logs in as canary and asks for ApiVersions.
func (s *stack) ping() error {
	rc, err := dialRaw(s.bootstrap)
	if err != nil {
		return err
	}
	defer rc.close()
	return rc.login(canary, s.passwords[canary])
}

// learnBrokers records kguard's broker addresses from a Metadata answer.
func (s *stack) learnBrokers() error {
	rc, err := dialRaw(s.bootstrap)
	if err != nil {
		return err
	}
	defer rc.close()
	if err := rc.login(canary, s.passwords[canary]); err != nil {
		return err
	}
	md, err := rc.metadata(nil)
	if err != nil {
		return err
	}
	s.brokerAddr = map[int32]string{}
	for _, b := range md.Brokers {
		s.brokerAddr[b.NodeID] = net.JoinHostPort(b.Host, fmt.Sprint(b.Port))
	}
	if len(s.brokerAddr) == 0 {
		return fmt.Errorf("kguard listed no brokers")
	}
	return nil
}

// writePolicies copies the shipped policies and adds the test's data.
func writePolicies(dst string, a []harness.ACL, files map[string]string) error {
	if err := copyShippedPolicies(dst); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dst, "acls", "adversarial.json"), map[string][]harness.ACL{"adversarial": a}); err != nil {
		return err
	}
	all := map[string]string{"protection/adversarial.json": protection}
	for k, v := range files {
		all[k] = v
	}
	for name, content := range all {
		p := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// stacks is the kfake stack and, when the real cluster is configured (it
// always is under `make test`), kguard in front of real Apache Kafka.
func stacks(t *testing.T) []*stack {
	t.Helper()
	out := []*stack{shared(t)}
	if realConfigured() {
		out = append(out, realStack(t))
	}
	return out
}

// realConfigured reports whether the real cluster's environment is set.
func realConfigured() bool { return os.Getenv("KGUARD_TEST_KAFKA_SASL_SSL") != "" }

// leaderOf is kguard's listener for the leader of topic's partition.
func (s *stack) leaderOf(t *testing.T, topic string, partition int32) string {
	t.Helper()
	// The attacker may not describe the topic: ask the cluster for the
	// leader and map the node to kguard's listener.
	cl := s.directClient(t)
	md, err := kadm.NewClient(cl).Metadata(context.Background(), topic)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		t.Fatalf("metadata of %s: %v", topic, td.Err)
	}
	pd, ok := td.Partitions[partition]
	if !ok {
		t.Fatalf("%s has no partition %d", topic, partition)
	}
	addr, ok := s.brokerAddr[pd.Leader]
	if !ok {
		t.Fatalf("kguard has no listener for node %d", pd.Leader)
	}
	return addr
}
