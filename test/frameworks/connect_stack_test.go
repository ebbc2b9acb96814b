package frameworks_test

// The stack of the Kafka Connect and MirrorMaker 2 tests: `kguard serve`
// processes (the binary built from this checkout) in front of the real
// Apache Kafka 4.x cluster, SASL SCRAM-SHA-512 on both sides, the shipped
// policies plus the ACLs a test grants, and Java worker processes (Connect
// distributed, MirrorMaker 2 dedicated mode) from test/frameworks/lib.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
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

// cxRoot is the repository root, found from this source file.
func cxRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// cxLib is the classpath directory of the Connect and MirrorMaker 2 jars
// (test/frameworks/connect/pom.xml, fetched by test/deps.sh).
func cxLib(t testing.TB) string {
	t.Helper()
	lib := filepath.Join(cxRoot(t), "test", "frameworks", "connect", "lib")
	if m, _ := filepath.Glob(filepath.Join(lib, "connect-runtime-*.jar")); len(m) == 0 {
		t.Fatalf("no connect-runtime jar in %s: run `bash test/deps.sh`", lib)
	}
	return lib
}

// cxBuildKguard builds kguard from this checkout into the test's temp dir.
func cxBuildKguard(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kguard")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kguard")
	cmd.Dir = cxRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kguard: %v\n%s", err, out)
	}
	return bin
}

// cxUser is a SASL SCRAM user of kguard.
type cxUser struct{ name, password string }

// jaas is the sasl.jaas.config value that logs in as u.
func (u cxUser) jaas() string {
	return fmt.Sprintf(`org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";`, u.name, u.password)
}

// clientProps are the security settings of a Java client logging in to
// kguard as u, each key with every prefix given ("" for the bare key).
func (u cxUser) clientProps(prefixes ...string) string {
	var b strings.Builder
	for _, p := range prefixes {
		fmt.Fprintf(&b, "%ssecurity.protocol=SASL_PLAINTEXT\n%ssasl.mechanism=SCRAM-SHA-512\n%ssasl.jaas.config=%s\n", p, p, p, u.jaas())
	}
	return b.String()
}

// cxKguard is one `kguard serve` process in front of the real cluster.
type cxKguard struct {
	bootstrap string
	logFile   string
	cmd       *exec.Cmd
	done      chan struct{}
}

// cxStack is the real cluster, the users and the policy the kguard
// processes of a test share.
type cxStack struct {
	kafka  testenv.Kafka
	bin    string
	dir    string
	users  string // credentials file
	policy string // policy directory
	direct []kgo.Opt
}

// cxNewStack takes the cluster lock, builds kguard, adds the SASL users and
// writes the shipped policies with acls (as acls/frameworks.json) and
// files (path under the policy directory -> content, replacing the copy's).
func cxNewStack(t *testing.T, users []string, acls []harness.ACL, files map[string]string) (*cxStack, map[string]cxUser) {
	t.Helper()
	k := testenv.NeedKafka(t)
	harness.SharedClusterLock(t, k.Script)
	s := &cxStack{kafka: k, bin: cxBuildKguard(t), dir: t.TempDir()}
	cxKeepLogs(t, s.dir)
	s.users = filepath.Join(s.dir, "users.yaml")
	out := map[string]cxUser{}
	for _, u := range users {
		out[u] = cxUser{name: u, password: harness.RandHex(t, 12)}
		if err := auth.AddUser(s.users, u, out[u].password, 4096); err != nil {
			t.Fatalf("adding SASL user %s: %v", u, err)
		}
	}
	s.policy = harness.PolicyDir(t, filepath.Join(s.dir, "policies"), "frameworks", acls)
	for name, content := range files {
		p := filepath.Join(s.policy, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := os.ReadFile(k.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("no certificate in %s", k.CAFile)
	}
	s.direct = []kgo.Opt{
		kgo.SeedBrokers(k.SASLSSL...),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: k.User, Pass: k.Password}.AsSha512Mechanism()),
	}
	return s, out
}

// directClient is a client straight to the cluster as kguard's upstream
// identity (to check what the frameworks did, never to help them).
func (s *cxStack) directClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, s.direct...), opts...)...)
	if err != nil {
		t.Fatalf("direct client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// serve starts a `kguard serve` process named name and waits until it
// accepts logins; it stops when the test ends.
func (s *cxStack) serve(t *testing.T, name string, probe cxUser) *cxKguard {
	t.Helper()
	ports, err := harness.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	g := &cxKguard{bootstrap: fmt.Sprintf("127.0.0.1:%d", ports[0]), logFile: filepath.Join(s.dir, name+".log"), done: make(chan struct{})}
	cfg := fmt.Sprintf(`listen:
  bootstrap: %q
  broker_port_base: %d
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
`, g.bootstrap, ports[0]+1, s.users, strings.Join(s.kafka.SASLSSL, ", "), s.kafka.CAFile, s.kafka.User, s.kafka.Password, s.policy)
	cfgFile := filepath.Join(s.dir, name+".yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(g.logFile)
	if err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(s.bin, "serve", "--config", cfgFile)
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting kguard serve: %v", err)
	}
	go func() { _ = g.cmd.Wait(); logf.Close(); close(g.done) }()
	t.Cleanup(func() { cxStopProcess(g.cmd, g.done, 5*time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		err := g.ping(ctx, probe)
		if err == nil {
			return g
		}
		select {
		case <-g.done:
			t.Fatalf("kguard %s exited: %v\n%s", name, err, cxTail(g.logFile, 40))
		case <-ctx.Done():
			t.Fatalf("kguard %s did not come up: %v\n%s", name, err, cxTail(g.logFile, 40))
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// ping logs in as u and asks for the cluster's brokers.
func (g *cxKguard) ping(ctx context.Context, u cxUser) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(g.bootstrap), kgo.SASL(scram.Auth{User: u.name, Pass: u.password}.AsSha512Mechanism()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).BrokerMetadata(ctx)
	return err
}

// cxStopProcess ends a process group: SIGTERM, then SIGKILL after grace.
func cxStopProcess(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	if cmd.Process == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// cxKeepLogs copies the *.log files of dir to a directory that outlives
// the test when the test fails, and says where.
func cxKeepLogs(t *testing.T, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		keep, err := os.MkdirTemp("", "kguard-frameworks-"+t.Name()+"-")
		if err != nil {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, l := range logs {
			if b, err := os.ReadFile(l); err == nil {
				_ = os.WriteFile(filepath.Join(keep, filepath.Base(l)), b, 0o644)
			}
		}
		t.Logf("logs kept in %s", keep)
	})
}

// cxTail is the last n lines of a file.
func cxTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cxGrep is the lines of a file containing every one of parts.
func cxGrep(path string, parts ...string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		ok := true
		for _, p := range parts {
			if !bytes.Contains(line, []byte(p)) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, string(line))
		}
	}
	return out
}

// cxRefusal finds the first authorization error in a Java log: the log
// line that reported it and the exception line, joined ("" when none).
func cxRefusal(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if !strings.Contains(l, "AuthorizationException") {
			continue
		}
		for j := i; j >= 0 && j > i-40; j-- {
			if strings.HasPrefix(lines[j], "[") {
				if j == i {
					return strings.TrimSpace(l)
				}
				return strings.TrimSpace(lines[j]) + " ... " + strings.TrimSpace(l)
			}
		}
		return strings.TrimSpace(l)
	}
	return ""
}

// cxJava is a JVM (a Connect worker or MirrorMaker 2) of the test.
type cxJava struct {
	name    string
	logFile string
	cmd     *exec.Cmd
	done    chan struct{}
}

// cxStartJava runs main class with args on the frameworks classpath, its
// output in a log file of the test; it stops when the test ends.
func cxStartJava(t *testing.T, dir, name, class string, args ...string) *cxJava {
	t.Helper()
	lib := cxLib(t)
	log4j := filepath.Join(cxRoot(t), "test", "frameworks", "connect", "log4j2.properties")
	j := &cxJava{name: name, logFile: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(j.logFile)
	if err != nil {
		t.Fatal(err)
	}
	jargs := append([]string{"-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.awt.headless=true", "-Dlog4j2.configurationFile=" + log4j,
		"-cp", filepath.Join(lib, "*"), class}, args...)
	j.cmd = exec.Command("java", jargs...)
	j.cmd.Dir = dir
	j.cmd.Stdout, j.cmd.Stderr = logf, logf
	j.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := j.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = j.cmd.Wait(); logf.Close(); close(j.done) }()
	t.Cleanup(func() { j.stop() })
	return j
}

// stop ends the JVM (SIGTERM, SIGKILL after 10 s).
func (j *cxJava) stop() { cxStopProcess(j.cmd, j.done, 10*time.Second) }

func (j *cxJava) exited() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// cxREST is a Connect worker's REST API.
type cxREST struct{ base string }

// do sends a request with a JSON body (nil: none) and decodes the JSON
// answer into out (nil: ignored). It returns the status code.
func (r cxREST) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decoding %q: %w", method, path, b, err)
		}
	}
	return resp.StatusCode, nil
}

// cxConnectorStatus is GET /connectors/<name>/status.
type cxConnectorStatus struct {
	Name      string `json:"name"`
	Connector struct {
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"connector"`
	Tasks []struct {
		ID    int    `json:"id"`
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"tasks"`
}

// running says whether the connector and all its tasks (at least one) run;
// failed returns the first failure's trace.
func (st cxConnectorStatus) running() bool {
	if st.Connector.State != "RUNNING" || len(st.Tasks) == 0 {
		return false
	}
	for _, tk := range st.Tasks {
		if tk.State != "RUNNING" {
			return false
		}
	}
	return true
}

func (st cxConnectorStatus) failed() (string, bool) {
	if st.Connector.State == "FAILED" {
		return st.Connector.Trace, true
	}
	for _, tk := range st.Tasks {
		if tk.State == "FAILED" {
			return tk.Trace, true
		}
	}
	return "", false
}

// cxPoll calls f every interval until it returns true or an error, or ctx
// ends (then the last error or "timed out" with what).
func cxPoll(ctx context.Context, interval time.Duration, what string, f func() (bool, error)) error {
	var last error
	for {
		ok, err := f()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// cxTemporary: TEMPORARY until frameworks-streams (shipped framework topic
// classes, the describe-cluster fix) is merged.
func cxTemporary(t *testing.T, acls []harness.ACL, principals ...string) ([]harness.ACL, map[string]string) {
	for _, p := range principals {
		acls = append(acls, harness.ACL{Principal: p, Host: "*", Resource: "Cluster", Pattern: "LITERAL", Name: "kafka-cluster", Operation: "Describe", Permission: "ALLOW"})
	}
	sg, _ := os.ReadFile(filepath.Join(cxRoot(t), "policies", "config", "safeguards.json"))
	sgs := strings.Replace(string(sg), `"topic_classes": [`, `"topic_classes": [{"name": "connect", "pattern": "^connect-.*-(configs|offsets|status)$|^mm2-.*\\.internal$|\\.checkpoints\\.internal$", "cleanup_policy": ["compact"]},`, 1)
	return acls, map[string]string{"config/safeguards.json": sgs}
}
