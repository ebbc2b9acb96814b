package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// needKcat returns kcat's path. kcat is Debian's package, installed by
// test/deps.sh; a machine without it skips, unless
// KGUARD_REQUIRE_SERVICES=1, where its absence fails the test.
func needKcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		if testenv.Required() {
			t.Fatalf("kcat is required (KGUARD_REQUIRE_SERVICES=1) but not installed: %v (apt-get install -y kcat, or test/deps.sh)", err)
		}
		t.Skipf("kcat not installed (apt-get install -y kcat, or test/deps.sh); skipping the kcat client tests")
	}
	return path
}

// kcat runs kcat with args and stdin and returns its stdout.
func kcat(ctx context.Context, t *testing.T, bin string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

func TestKcatIdempotentProduceConsume(t *testing.T) {
	bin := needKcat(t)
	env := harness.Start(t, harness.Options{})
	const topic, parts, n = "kcat-idempotent", 3, 1500
	createTopic(t, env, topic, parts)
	w := watchProduce(t, env, topic)
	ctx := testCtx(t, 60*time.Second)

	sent := seqs{}
	for p := range int32(parts) {
		var in bytes.Buffer
		for i := int(p); i < n; i += parts {
			sent[p] = append(sent[p], int64(i))
			fmt.Fprintf(&in, "%s\n", numbered(int64(i)))
		}
		kcat(ctx, t, bin, in.Bytes(), "-b", env.Bootstrap(), "-P", "-t", topic, "-p", strconv.Itoa(int(p)),
			"-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=5")
	}
	w.check(t, "kcat")

	out := kcat(ctx, t, bin, nil, "-b", env.Bootstrap(), "-C", "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", "%p %s\n")
	got := seqs{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		ps, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("unexpected kcat output line %q", sc.Text())
		}
		p, err := strconv.Atoi(ps)
		if err != nil {
			t.Fatalf("kcat output line %q: %v", sc.Text(), err)
		}
		seq, err := parseNumbered([]byte(v))
		if err != nil {
			t.Fatal(err)
		}
		got[int32(p)] = append(got[int32(p)], seq)
	}
	checkExact(t, "kcat", sent, got)
}

// TestKcatListShowsOnlyKguard runs `kcat -L -J` through kguard: the brokers
// it lists are exactly kguard's broker listeners, and no upstream address
// appears anywhere in its output.
func TestKcatListShowsOnlyKguard(t *testing.T) {
	bin := needKcat(t)
	env := harness.Start(t, harness.Options{})
	createTopic(t, env, "kcat-list", 3)
	out := kcat(testCtx(t, 30*time.Second), t, bin, nil, "-b", env.Bootstrap(), "-L", "-J")

	var md struct {
		OriginatingBroker struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"originating_broker"`
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic string `json:"topic"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L -J output is not JSON: %v\n%s", err, out)
	}
	kg := env.Proxy.BrokerAddrs()
	up := env.Proxy.UpstreamAddrs()
	if len(md.Brokers) != len(up) {
		t.Errorf("kcat lists %d brokers, the cluster has %d", len(md.Brokers), len(up))
	}
	for _, b := range md.Brokers {
		if want, ok := kg[b.ID]; !ok || b.Name != want {
			t.Errorf("kcat lists broker %d at %s, kguard serves it at %q", b.ID, b.Name, want)
		}
	}
	for id, a := range up {
		if bytes.Contains(out, []byte(a)) {
			t.Errorf("kcat -L output contains upstream broker %d's address %s", id, a)
		}
	}
	if !slices.ContainsFunc(md.Topics, func(tp struct {
		Topic string `json:"topic"`
	}) bool {
		return tp.Topic == "kcat-list"
	}) {
		t.Errorf("kcat -L does not list topic kcat-list")
	}
	t.Logf("kcat -L lists brokers %v via %s; upstream %v never appears", md.Brokers, md.OriginatingBroker.Name, up)
}
