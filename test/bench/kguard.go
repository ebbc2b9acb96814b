package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// kguardProc is kguard running as a child process (`kguard serve`), so its
// CPU time can be read from /proc apart from the clients' and the cluster's.
type kguardProc struct {
	cmd       *exec.Cmd
	bootstrap string
	stderr    *syncBuffer
	exited    chan error // receives cmd.Wait's result once
}

// buildKguard builds ./cmd/kguard into dir and returns the binary's path.
func buildKguard(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kguard")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/kguard")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/kguard: %w\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the kguard module; run from the repository")
	}
	return filepath.Dir(mod), nil
}

// startKguard writes cfg to dir and runs `kguard serve` on it, returning
// once the bootstrap listener accepts connections.
func startKguard(ctx context.Context, bin, dir, name, cfg, bootstrap string, pinCPU int) (*kguardProc, error) {
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	stderr := &syncBuffer{}
	args := []string{bin, "serve", "--config", path}
	if pinCPU >= 0 {
		args = append([]string{"taskset", "-c", strconv.Itoa(pinCPU)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	tieToParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kguard: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	k := &kguardProc{cmd: cmd, bootstrap: bootstrap, stderr: stderr, exited: exited}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", bootstrap, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return k, nil
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("kguard exited before listening: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			k.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			k.stop()
			return nil, fmt.Errorf("kguard did not listen on %s within 30s\n%s", bootstrap, stderr.String())
		}
	}
}

// stop asks kguard to drain and exit (SIGINT), killing it after 10s.
func (k *kguardProc) stop() {
	_ = k.cmd.Process.Signal(os.Interrupt)
	select {
	case <-k.exited:
	case <-time.After(10 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.exited
	}
}

// syncBuffer is a bytes.Buffer safe for the child's output goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// it is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTime is a process's CPU time so far, in seconds: in user space and
// in the kernel (for kguard mostly its socket reads and writes).
type cpuTime struct{ user, sys float64 }

func (c cpuTime) total() float64 { return c.user + c.sys }

// cpuSeconds is the user and system CPU time the process has used so far.
func (k *kguardProc) cpuSeconds() (cpuTime, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", k.cmd.Process.Pid))
	if err != nil {
		return cpuTime{}, fmt.Errorf("reading kguard's CPU time: %w", err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return cpuTime{}, fmt.Errorf("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return cpuTime{}, fmt.Errorf("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return cpuTime{}, fmt.Errorf("unexpected /proc stat format")
	}
	return cpuTime{user: float64(ut) / clockTicks, sys: float64(st) / clockTicks}, nil
}
