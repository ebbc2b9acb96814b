package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// ClusterLock locks the real Kafka cluster started by script (a file in
// the temp dir named after the script's path): test/faults takes it
// exclusively (syscall.LOCK_EX) around killing and restarting brokers, the
// suites that only use the cluster take it shared (syscall.LOCK_SH), so
// that their clients never run into a node killed on purpose when the
// packages run at once. The returned function unlocks.
func ClusterLock(tb testing.TB, script string, how int) func() {
	tb.Helper()
	h := sha256.Sum256([]byte(script))
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kguard-kafka-faults-"+hex.EncodeToString(h[:6])+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		tb.Fatalf("locking the cluster: %v", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// SharedClusterLock takes ClusterLock shared until the test ends.
func SharedClusterLock(tb testing.TB, script string) {
	tb.Helper()
	tb.Cleanup(ClusterLock(tb, script, syscall.LOCK_SH))
}
