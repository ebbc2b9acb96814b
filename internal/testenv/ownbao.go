package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// OwnOpenBao is an OpenBao dev server of one test's own, for tests that
// stop and start it (an outage). The shared server that `make test` starts
// is never stopped: packages run in parallel, and another package's test may
// be using it at that moment.
type OwnOpenBao struct {
	OpenBao
	t    testing.TB
	bin  string
	port int
	log  string
	cmd  *exec.Cmd
}

// StartOwnOpenBao starts a dev server (root token "root", transit mounted)
// on a free loopback port and stops it when the test ends. The test is
// skipped without the bao binary, or fails under KGUARD_REQUIRE_SERVICES=1.
func StartOwnOpenBao(t testing.TB) *OwnOpenBao {
	t.Helper()
	bin, err := exec.LookPath("bao")
	if err != nil {
		if Required() {
			t.Fatalf("OpenBao required (KGUARD_REQUIRE_SERVICES=1) but bao is not on PATH: %v", err)
		}
		t.Skipf("OpenBao not available: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("picking a port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b := &OwnOpenBao{
		OpenBao: OpenBao{Addr: fmt.Sprintf("http://127.0.0.1:%d", port), Token: "root"},
		t:       t, bin: bin, port: port,
		log: filepath.Join(t.TempDir(), "bao.log"),
	}
	t.Cleanup(b.Stop)
	b.Start()
	return b
}

// Start starts the server (again, after Stop: a dev server starts empty)
// and waits until it answers with transit mounted.
func (b *OwnOpenBao) Start() {
	b.t.Helper()
	if b.cmd != nil {
		return
	}
	logf, err := os.OpenFile(b.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		b.t.Fatalf("bao log: %v", err)
	}
	cmd := exec.Command(b.bin, "server", "-dev",
		fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", b.port), "-dev-root-token-id="+b.Token, "-dev-no-store-token")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		b.t.Fatalf("starting bao: %v", err)
	}
	logf.Close()
	b.cmd = cmd
	c := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(b.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(b.log)
			b.t.Fatalf("own OpenBao at %s not up in 30s: %v\n%s", b.Addr, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodPost, b.Addr+"/v1/sys/mounts/transit", strings.NewReader(`{"type":"transit"}`))
	req.Header.Set("X-Vault-Token", b.Token)
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatalf("enabling transit: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b.t.Fatalf("enabling transit: HTTP %d", resp.StatusCode)
	}
}

// Freeze stops the server's process (SIGSTOP) without closing anything:
// it accepts no more work and answers nothing, as a hung key service does
// (connections stay open, requests wait). Thaw resumes it.
func (b *OwnOpenBao) Freeze() { b.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (b *OwnOpenBao) Thaw() { b.signal(syscall.SIGCONT) }

func (b *OwnOpenBao) signal(sig syscall.Signal) {
	b.t.Helper()
	if b.cmd == nil {
		b.t.Fatalf("own OpenBao: %v to a server that is not running", sig)
	}
	if err := b.cmd.Process.Signal(sig); err != nil {
		b.t.Fatalf("own OpenBao: %v: %v", sig, err)
	}
}

// Stop stops the server (an outage) and waits for it to exit.
func (b *OwnOpenBao) Stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGCONT) // a frozen process handles SIGTERM only once resumed
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
	b.cmd = nil
}
