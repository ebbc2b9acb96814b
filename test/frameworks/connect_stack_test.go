package frameworks_test

// Helpers of the Kafka Connect and MirrorMaker 2 tests (connect_test.go,
// mirror_test.go): their JVMs run on a classpath of their own
// (test/frameworks/connect/lib: Connect 4.3.1, see its pom.xml), next to
// the kguard stacks of stack_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// cxLib is the classpath directory of the Connect and MirrorMaker 2 jars
// (test/frameworks/connect/pom.xml, fetched by test/deps.sh).
func cxLib(t testing.TB) string {
	t.Helper()
	lib := filepath.Join(harness.RepoRoot(t), "test", "frameworks", "connect", "lib")
	if m, _ := filepath.Glob(filepath.Join(lib, "connect-runtime-*.jar")); len(m) == 0 {
		if testenv.Required() {
			t.Fatalf("no connect-runtime jar in %s: run test/deps.sh", lib)
		}
		t.Skipf("no connect-runtime jar in %s: run test/deps.sh", lib)
	}
	return lib
}

// cxClientProps are the settings of a Java client logging in to the kguard
// of s as user (SASL_PLAINTEXT, SCRAM-SHA-512), each key with every prefix
// given ("" for the bare key).
func cxClientProps(s *stack, user string, prefixes ...string) string {
	jaas := fmt.Sprintf(`org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";`, user, s.passwords[user])
	var b strings.Builder
	for _, p := range prefixes {
		fmt.Fprintf(&b, "%ssecurity.protocol=SASL_PLAINTEXT\n%ssasl.mechanism=SCRAM-SHA-512\n%ssasl.jaas.config=%s\n", p, p, p, jaas)
	}
	return b.String()
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

// cxKeepLogs copies the given log files (the *.log files of directories)
// to a directory that outlives the test when the test fails, and says
// where.
func cxKeepLogs(t *testing.T, paths ...string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		keep, err := os.MkdirTemp("", "kguard-frameworks-"+t.Name()+"-")
		if err != nil {
			return
		}
		for i, p := range paths {
			files := []string{p}
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				files, _ = filepath.Glob(filepath.Join(p, "*.log"))
			}
			for _, f := range files {
				if b, err := os.ReadFile(f); err == nil {
					_ = os.WriteFile(filepath.Join(keep, fmt.Sprintf("%d-%s", i, filepath.Base(f))), b, 0o644)
				}
			}
		}
		t.Logf("logs kept in %s", keep)
	})
}

// cxDeleteGroups deletes the groups when the test ends (after the
// programs using them stopped: register it before starting them).
func cxDeleteGroups(t *testing.T, adm *kadm.Client, groups ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = adm.DeleteGroups(ctx, groups...)
	})
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
	log4j := filepath.Join(harness.RepoRoot(t), "test", "frameworks", "connect", "log4j2.properties")
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
