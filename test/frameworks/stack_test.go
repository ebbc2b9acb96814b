// Package frameworks_test runs the frameworks banks build on (Kafka Streams,
// Kafka Connect, MirrorMaker 2) through a real `kguard serve` process in
// front of the real Apache Kafka 4.x cluster that test/kafka/cluster.sh
// starts: clients log in to kguard with SASL SCRAM-SHA-512, kguard talks
// SASL_SSL + SCRAM-SHA-512 upstream as its own identity, and authorizes every
// request with the shipped policies plus the ACL recipes of docs/policy.md
// (section 12).
//
// The framework programs are Java, run with java's single-file source
// launcher and the jars test/deps.sh copies into test/frameworks/lib
// (test/frameworks/pom.xml). Every case logs one line starting with
// "FRAMEWORK " (test/run-tests.sh prints them in CI's output).
//
// This file holds what every framework test needs: the kguard binary, a
// stack (kguard serve with policies and SCRAM users), a client straight to
// the cluster for set-up and checks, and Java processes.
package frameworks_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// kguardBin is the kguard executable built from this checkout by TestMain.
var kguardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kguard-frameworks-")
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
	os.RemoveAll(dir)
	os.Exit(code)
}

// stackOpts configure a stack.
type stackOpts struct {
	acls      []harness.ACL     // the policy's ACLs (acls/frameworks.json)
	users     []string          // SCRAM users kguard knows (passwords in stack.passwords)
	files     map[string]string // more policy files: path under the policy dir -> content
	extraYAML string            // appended to kguard's configuration (top-level keys)
}

// stack is one `kguard serve` process in front of the real cluster.
type stack struct {
	kafka     testenv.Kafka
	bootstrap string // kguard's bootstrap address
	dir       string // the stack's files (policies, users, config, logs)
	passwords map[string]string
	logFile   string
	cmd       *exec.Cmd
	waited    chan struct{} // closed when kguard has exited
}

// startStack starts `kguard serve` with the shipped policies (without the
// demo data set) plus o's ACLs and files, SCRAM-SHA-512 users o.users, and
// stops it when the test ends. It takes the shared cluster lock.
func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	k := testenv.NeedKafka(t)
	harness.SharedClusterLock(t, k.Script)
	dir := t.TempDir()
	s := &stack{kafka: k, dir: dir, passwords: map[string]string{}}
	pdir := harness.PolicyDir(t, filepath.Join(dir, "policies"), "frameworks", o.acls)
	for name, content := range o.files {
		p := filepath.Join(pdir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	users := filepath.Join(dir, "users.yaml")
	for _, u := range o.users {
		s.passwords[u] = harness.RandHex(t, 12)
		if err := auth.AddUser(users, u, s.passwords[u], 4096); err != nil {
			t.Fatalf("adding SCRAM user %s: %v", u, err)
		}
	}
	ports, err := harness.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	s.bootstrap = fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfg := fmt.Sprintf(`listen:
  bootstrap: %q
  auth:
    sasl_mechanisms: [SCRAM-SHA-512]
    credentials_file: %q
upstream:
  bootstrap: [%s]
  tls:
    ca_file: %q
  sasl:
    mechanism: SCRAM-SHA-512
    username: %q
    password: %q
policy:
  dirs: [%q]
log:
  level: info
%s`, s.bootstrap, users, strings.Join(k.SASLSSL, ", "), k.CAFile, k.User, k.Password, pdir, o.extraYAML)
	cfgFile := filepath.Join(dir, "kguard.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.logFile = filepath.Join(dir, "kguard.log")
	logf, err := os.Create(s.logFile)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(kguardBin, "serve", "--config", cfgFile)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting kguard serve: %v", err)
	}
	s.waited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.waited) }()
	t.Cleanup(s.stop)
	if len(o.users) == 0 {
		t.Fatal("startStack: no users")
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := s.ping(o.users[0])
		if err == nil {
			break
		}
		if time.Now().After(deadline) || s.exited() {
			t.Fatalf("kguard did not come up: %v\n%s", err, s.logTail(40))
		}
		time.Sleep(300 * time.Millisecond)
	}
	return s
}

// ping logs in to kguard as user and lists the brokers.
func (s *stack) ping(user string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(s.clientOpts(user)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = kadm.NewClient(cl).ListBrokers(ctx)
	return err
}

// clientOpts are a franz-go client's options to log in to kguard as user.
func (s *stack) clientOpts(user string, extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(s.bootstrap),
		kgo.SASL(scram.Auth{User: user, Pass: s.passwords[user]}.AsSha512Mechanism()),
	}, extra...)
}

// javaClientProps are the Java client settings to log in to kguard as user
// (SASL_PLAINTEXT, SCRAM-SHA-512), as properties lines.
func (s *stack) javaClientProps(user string) string {
	return fmt.Sprintf("bootstrap.servers=%s\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"+
		"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"%s\" password=\"%s\";\n",
		s.bootstrap, user, s.passwords[user])
}

func (s *stack) stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.exited() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 50 && !s.exited(); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.waited
}

func (s *stack) exited() bool {
	select {
	case <-s.waited:
		return true
	default:
		return false
	}
}

// logTail is the last n lines of kguard's log.
func (s *stack) logTail(n int) string { return fileTail(s.logFile, n) }

// logLines are kguard's log lines containing every one of parts.
func (s *stack) logLines(parts ...string) []string {
	b, _ := os.ReadFile(s.logFile)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok && line != "" {
			out = append(out, line)
		}
	}
	return out
}

func fileTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- straight to the cluster (set-up and checks) ----

// direct is a franz-go client straight to the cluster's SASL_SSL listeners
// as kguard's upstream identity (a super user), closed when the test ends.
func direct(t *testing.T, k testenv.Kafka, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	ca, err := os.ReadFile(k.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("no certificate in %s", k.CAFile)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(k.SASLSSL...),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: k.User, Pass: k.Password}.AsSha512Mechanism()),
	}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopics creates topics (partitions each, the cluster's replication
// factor) straight on the cluster.
func createTopics(ctx context.Context, adm *kadm.Client, partitions int32, topics ...string) error {
	res, err := adm.CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("creating %v: %w", topics, err)
	}
	for _, r := range res.Sorted() {
		if r.Err != nil {
			return fmt.Errorf("creating %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// topicsWithPrefix lists the cluster's topics whose names start with prefix.
func topicsWithPrefix(ctx context.Context, adm *kadm.Client, prefix string) ([]string, error) {
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range tds.Names() {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out, nil
}

// deleteTopicsWithPrefix deletes, when the test ends, every topic whose
// name starts with one of prefixes (the test's own and the ones a framework
// created for it).
func deleteTopicsWithPrefix(t *testing.T, adm *kadm.Client, prefixes ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, p := range prefixes {
			names, err := topicsWithPrefix(ctx, adm, p)
			if err != nil || len(names) == 0 {
				continue
			}
			_, _ = adm.DeleteTopics(ctx, names...)
		}
	})
}

// ---- Java programs ----

// frameworksLib is the directory of the framework jars (test/deps.sh),
// checked to hold a jar matching each of globs (default kafka-streams-*.jar).
func frameworksLib(t *testing.T, globs ...string) string {
	t.Helper()
	lib := filepath.Join(harness.RepoRoot(t), "test", "frameworks", "lib")
	if len(globs) == 0 {
		globs = []string{"kafka-streams-*.jar"}
	}
	for _, g := range globs {
		if m, _ := filepath.Glob(filepath.Join(lib, g)); len(m) == 0 {
			if testenv.Required() {
				t.Fatalf("no %s in %s: run test/deps.sh", g, lib)
			}
			t.Skipf("no %s in %s: run test/deps.sh", g, lib)
		}
	}
	if _, err := exec.LookPath("java"); err != nil {
		if testenv.Required() {
			t.Fatal("java not found: run test/deps.sh")
		}
		t.Skip("java not found: run test/deps.sh")
	}
	return lib
}

// javaProc is a running Java program; its stdout and stderr go to a file
// and its stdout lines are also kept for waitLine.
type javaProc struct {
	name    string
	cmd     *exec.Cmd
	logFile string
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced when lines grow or the program exits
	done    chan struct{} // closed when the program has exited
	err     error         // its exit status, once done
}

// startJava runs the single-file Java program src (relative to the
// repository root) with the framework jars, a small heap and args, and
// SIGKILLs it when the test ends if it still runs.
func startJava(t *testing.T, name, src string, args ...string) *javaProc {
	t.Helper()
	return startJavaWith(t, javaOpts{name: name, main: filepath.Join(harness.RepoRoot(t), src), args: args})
}

// javaOpts describe a Java program for startJavaWith.
type javaOpts struct {
	name  string   // for logs and the output file
	jars  []string // globs that must match in test/frameworks/lib (default kafka-streams-*.jar)
	jvm   []string // more JVM options (system properties, ...), before the main class
	main  string   // a main class on the classpath, or the path of a single-file source program
	args  []string // the program's arguments
	extra []string // more classpath entries (after test/frameworks/lib/*)
}

// startJavaWith runs a Java program with the framework jars on the
// classpath, a small heap and the quiet log4j2 configuration (warnings on
// stderr), in the repository root, and SIGKILLs it when the test ends if it
// still runs.
func startJavaWith(t *testing.T, o javaOpts) *javaProc {
	t.Helper()
	lib := frameworksLib(t, o.jars...)
	root := harness.RepoRoot(t)
	cp := strings.Join(append([]string{filepath.Join(lib, "*")}, o.extra...), string(os.PathListSeparator))
	jargs := []string{
		"-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
		"-cp", cp,
		"-Dlog4j2.configurationFile=" + filepath.Join(root, "test", "kafka", "log4j2-tools.properties"),
	}
	jargs = append(append(append(jargs, o.jvm...), o.main), o.args...)
	name := o.name
	p := &javaProc{name: name, logFile: filepath.Join(t.TempDir(), name+".log"),
		changed: make(chan struct{}), done: make(chan struct{})}
	logf, err := os.Create(p.logFile)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command("java", jargs...)
	p.cmd.Dir = root
	p.cmd.Stderr = logf
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			p.mu.Lock()
			p.lines = append(p.lines, line)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		err := p.cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill SIGKILLs the program (and its process group) and waits for it.
func (p *javaProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM (a clean shutdown) and waits up to d, then kills.
func (p *javaProc) stop(d time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(d):
		p.kill()
	}
}

func (p *javaProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// matching are the stdout lines that contain every one of parts.
func (p *javaProc) matching(parts ...string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.lines {
		ok := true
		for _, s := range parts {
			if !strings.Contains(l, s) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// errExited is returned by waitLine when the program exits first.
var errExited = errors.New("the program exited")

// waitLine waits for a stdout line containing every one of parts and
// returns it; errExited when the program exits first.
func (p *javaProc) waitLine(ctx context.Context, parts ...string) (string, error) {
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if m := p.matching(parts...); len(m) > 0 {
			return m[0], nil
		}
		if p.exited() {
			return "", fmt.Errorf("%s: waiting for %q: %w (%v)", p.name, parts, errExited, p.err)
		}
		select {
		case <-ch:
		case <-p.done:
		case <-ctx.Done():
			return "", fmt.Errorf("%s: waiting for %q: %w", p.name, parts, ctx.Err())
		}
	}
}

// tail is the end of the program's output (stdout and stderr).
func (p *javaProc) tail(n int) string { return fileTail(p.logFile, n) }
