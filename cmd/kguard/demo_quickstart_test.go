package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// TestDemoKafkaQuickstart runs the Apache Kafka quickstart with Kafka's own
// command-line tools (their main classes from the jars test/deps.sh fetches)
// against `kguard demo`: create, list and describe a topic, produce and
// consume with the console tools, read the offsets, and list, describe and
// reset a consumer group. Each used to fail on kfake (see demo_kfake.go).
func TestDemoKafkaQuickstart(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(root, "test", "kafka", "lib")
	jars, _ := filepath.Glob(filepath.Join(lib, "kafka-tools-*.jar"))
	_, javaErr := exec.LookPath("java")
	if len(jars) == 0 || javaErr != nil {
		if testenv.Required() {
			t.Fatalf("java and the Kafka tools jars in %s are required (run test/deps.sh)", lib)
		}
		t.Skip("java or the Kafka tools jars are missing (run test/deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	ports, err := harness.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	bootstrap := fmt.Sprintf("127.0.0.1:%d", ports[0])
	out := newReadyWriter("kguard demo is ready")
	demoCtx, stopDemo := context.WithCancel(ctx)
	done := make(chan error, 1)
	var logs syncWriter
	go func() {
		done <- run(demoCtx, []string{"demo", "--bootstrap", bootstrap, "--broker-port-base", strconv.Itoa(ports[1]),
			"--tenants-bootstrap", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--tenants-broker-port-base", strconv.Itoa(ports[2] + 1),
			"--metrics", "", "--log-level", "warn", "--policies", filepath.Join(root, "policies")}, strings.NewReader(""), out, &logs)
	}()
	defer func() {
		stopDemo()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	select {
	case <-out.ready:
	case err := <-done:
		done <- err
		t.Fatalf("demo exited before it was ready: %v\n%s", err, logs.String())
	case <-ctx.Done():
		t.Fatalf("demo not ready: %v\n%s", ctx.Err(), logs.String())
	}

	kafka := func(stdin string, class string, args ...string) string {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 90*time.Second)
		defer ccancel()
		cmd := exec.CommandContext(cctx, "java", append([]string{"-cp", lib + "/*",
			"-Dlog4j2.configurationFile=" + filepath.Join(root, "test", "kafka", "log4j2-tools.properties"),
			class, "--bootstrap-server", bootstrap}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		b, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(b), "Exception") || strings.Contains(string(b), "Error while") {
			t.Fatalf("%s %s: %v\n%s", class, strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	mustHave := func(what, out string, res ...string) {
		t.Helper()
		for _, re := range res {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Fatalf("%s: no match for %q in\n%s", what, re, out)
			}
		}
	}
	const (
		topics   = "org.apache.kafka.tools.TopicCommand"
		producer = "org.apache.kafka.tools.ConsoleProducer"
		consumer = "org.apache.kafka.tools.consumer.ConsoleConsumer"
		offsets  = "org.apache.kafka.tools.GetOffsetShell"
		groups   = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
	)
	topic, group := "quickstart-events", "quickstart-group"

	mustHave("kafka-topics --create", kafka("", topics, "--create", "--topic", topic, "--partitions", "3", "--replication-factor", "3"),
		`Created topic `+topic)
	mustHave("kafka-topics --list", kafka("", topics, "--list"), `(?m)^`+topic+`$`)
	mustHave("kafka-topics --describe", kafka("", topics, "--describe", "--topic", topic),
		`PartitionCount: 3\s+ReplicationFactor: 3`, `Partition: 2\s+Leader: \d+\s+Replicas: \d,\d,\d\s+Isr: \d,\d,\d`)
	kafka("first event\nsecond event\nthird event\n", producer, "--topic", topic)
	mustHave("kafka-console-consumer", kafka("", consumer, "--topic", topic, "--from-beginning", "--max-messages", "3",
		"--group", group, "--timeout-ms", "60000"),
		`(?m)^first event$`, `(?m)^second event$`, `(?m)^third event$`, `Processed a total of 3 messages`)
	if sum := sumOffsets(t, kafka("", offsets, "--topic", topic)); sum != 3 {
		t.Fatalf("kafka-get-offsets: end offsets add up to %d, want 3", sum)
	}
	mustHave("kafka-consumer-groups --list", kafka("", groups, "--list"), `(?m)^`+group+`$`)
	mustHave("kafka-consumer-groups --describe", kafka("", groups, "--describe", "--group", group),
		`(?m)^`+group+`\s+`+topic+`\s+\d\s+\d\s+\d\s+0\s`)
	mustHave("kafka-consumer-groups --reset-offsets", kafka("", groups, "--reset-offsets", "--group", group, "--topic", topic,
		"--to-earliest", "--execute"), `(?m)^`+group+`\s+`+topic+`\s+0\s+0\s*$`, `(?m)^`+group+`\s+`+topic+`\s+1\s+0\s*$`,
		`(?m)^`+group+`\s+`+topic+`\s+2\s+0\s*$`)
	// After the reset the group's lag is the whole topic.
	desc := kafka("", groups, "--describe", "--group", group)
	lag := 0
	for _, m := range regexp.MustCompile(`(?m)^`+group+`\s+`+topic+`\s+\d\s+(\d+)\s+(\d+)\s+(\d+)\s`).FindAllStringSubmatch(desc, -1) {
		n, _ := strconv.Atoi(m[3])
		lag += n
	}
	if lag != 3 {
		t.Fatalf("lag after --reset-offsets --to-earliest is %d, want 3:\n%s", lag, desc)
	}
}

// sumOffsets adds up kafka-get-offsets' "topic:partition:offset" lines.
func sumOffsets(t *testing.T, out string) int {
	t.Helper()
	sum, n := 0, 0
	for _, m := range regexp.MustCompile(`(?m)^[^:\s]+:\d+:(\d+)$`).FindAllStringSubmatch(out, -1) {
		v, _ := strconv.Atoi(m[1])
		sum += v
		n++
	}
	if n != 3 {
		t.Fatalf("kafka-get-offsets printed %d partitions, want 3:\n%s", n, out)
	}
	return sum
}

// readyWriter collects output and closes ready once it contains marker.
type readyWriter struct {
	syncWriter
	marker string
	once   sync.Once
	ready  chan struct{}
}

func newReadyWriter(marker string) *readyWriter {
	return &readyWriter{marker: marker, ready: make(chan struct{})}
}

func (w *readyWriter) Write(p []byte) (int, error) {
	n, err := w.syncWriter.Write(p)
	if strings.Contains(w.String(), w.marker) {
		w.once.Do(func() { close(w.ready) })
	}
	return n, err
}

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
