package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestChildDiesWithBench kills a bench-like parent with SIGKILL (nothing of
// it runs afterwards) and checks that the child it started through
// tieToParent, as startKguard starts kguard, is gone too.
func TestChildDiesWithBench(t *testing.T) {
	if os.Getenv("KGUARD_BENCH_PARENT") == "1" {
		benchParent()
		return
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithBench$")
	parent.Env = append(os.Environ(), "KGUARD_BENCH_PARENT=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill() //nolint:errcheck // already dead when the test passes
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the child's pid from the parent: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "child "))
	if err != nil {
		t.Fatalf("parent printed %q", line)
	}
	if !alive(pid) {
		t.Fatalf("child %d is not running before the parent is killed", pid)
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still running 5s after its parent was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benchParent starts a long-running child the way the bench starts kguard,
// prints its pid and waits to be killed.
func benchParent() {
	child := exec.Command("sleep", "120")
	tieToParent(child)
	if err := child.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("child %d\n", child.Process.Pid)
	time.Sleep(2 * time.Minute)
	os.Exit(1)
}

// alive reports whether pid exists and is not a zombie (a killed child
// whose new parent has not reaped it yet counts as dead).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
