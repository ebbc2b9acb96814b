package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// TestSIGKILLLosesNothing runs a recorder in a child process, kills it with
// SIGKILL mid-traffic (while the brokers refuse produce requests, so much is
// unshipped), restarts over the same spool and checks that every event the
// child's Record acknowledged reaches the topic and the trail verifies.
func TestSIGKILLLosesNothing(t *testing.T) {
	if os.Getenv("KGUARD_AUDIT_CHILD") != "" {
		t.Skip("child mode")
	}
	tc := newTestCluster(t)
	keys := newTestKeys(t)
	sink := newTestSink(t, tc, "killed", 1)
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "child.key")
	if _, err := GenerateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	childKey, _ := LoadPrivateKey(keyFile)
	childSigner, _ := NewSigner(childKey)

	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLChild$", "-test.v")
	cmd.Env = append(os.Environ(), "KGUARD_AUDIT_CHILD="+dir+"|"+keyFile+"|"+strings.Join(tc.c.ListenAddrs(), ","))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var acked uint64
	outageAt := uint64(200)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "acked ") {
			continue
		}
		acked, _ = strconv.ParseUint(strings.TrimPrefix(line, "acked "), 10, 64)
		if acked >= outageAt && !tc.down.Load() {
			tc.down.Store(true)
		}
		if acked >= 600 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < 600 {
		t.Fatalf("child stopped early at %d", acked)
	}
	tc.down.Store(false)

	cfg := testConfig(t, "kg-k", dir, keys, sink)
	cfg.Signer = childSigner
	r := mustNew(t, cfg)
	if st := r.Stats(); st.LastSeq < acked+1 {
		t.Fatalf("after SIGKILL the chain ends at %d but %d events were acknowledged", st.LastSeq, acked)
	}
	closeRecorder(t, r)
	rep := verifyTopic(t, tc.opts(), "killed", childSigner.PublicKey())
	logReport(t, rep)
	if !rep.OK() || rep.Instances[0].LastSeq < acked+1 || uint64(rep.Instances[0].Events) != rep.Instances[0].LastSeq {
		t.Fatalf("trail after SIGKILL: ok=%v %+v, acked %d", rep.OK(), rep.Instances, acked)
	}
}

// TestSIGKILLChild is the child of TestSIGKILLLosesNothing: it records
// events forever, printing the seq of each acknowledged one.
func TestSIGKILLChild(t *testing.T) {
	env := os.Getenv("KGUARD_AUDIT_CHILD")
	if env == "" {
		t.Skip("runs only as the child of TestSIGKILLLosesNothing")
	}
	parts := strings.SplitN(env, "|", 3)
	key, err := LoadPrivateKey(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := NewSigner(key)
	sink, err := NewKafkaSink(context.Background(), []kgo.Opt{kgo.SeedBrokers(strings.Split(parts[2], ",")...)},
		TopicConfig{Name: "killed", Partitions: 1}, false, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{InstanceID: "kg-k", SpoolDir: parts[0], Signer: signer, Sink: sink, CheckpointEvery: 50})
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		if err := r.Record(sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "acked %d\n", r.Stats().LastSeq)
		w.Flush()
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}
