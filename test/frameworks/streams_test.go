package frameworks_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kguard/kguard/test/harness"
)

const wordCountSrc = "test/frameworks/java/WordCount.java"

// streamsRecipe is docs/policy.md's Kafka Streams recipe (section 12) for
// application id app run as principal, reading input and writing output.
// without drops the entries whose operation (or resource) is named there,
// for the negative cases.
func streamsRecipe(principal, app, input, output string, without ...string) []harness.ACL {
	acl := func(res, pat, name, op string) harness.ACL {
		return harness.ACL{Principal: principal, Host: "*", Resource: res, Pattern: pat, Name: name, Operation: op, Permission: "ALLOW"}
	}
	all := []harness.ACL{
		acl("Topic", "LITERAL", input, "Read"),
		acl("Topic", "LITERAL", output, "Write"),
		acl("Topic", "PREFIXED", app+"-", "Create"),
		acl("Topic", "PREFIXED", app+"-", "Read"),
		acl("Topic", "PREFIXED", app+"-", "Write"),
		acl("Topic", "PREFIXED", app+"-", "Delete"),
		acl("Group", "LITERAL", app, "Read"),
		acl("TransactionalId", "PREFIXED", app+"-", "Write"),
	}
	var out []harness.ACL
	for _, a := range all {
		if slices.Contains(without, a.Operation) || slices.Contains(without, a.Resource) ||
			slices.Contains(without, a.Resource+":"+a.Operation) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// wordsOf is line i of the input: five words of a 40-word vocabulary.
func wordsOf(i int) []string {
	w := make([]string, 5)
	for j := range w {
		w[j] = fmt.Sprintf("w%02d", (i*7+j*13+i/3)%40)
	}
	return w
}

// produceLines writes input lines [from, to) straight to the cluster (keyless,
// spread over the partitions), pausing pause between lines, and adds their
// words to expected.
func produceLines(ctx context.Context, cl *kgo.Client, topic string, from, to int, pause time.Duration, expected map[string]int64, mu *sync.Mutex) error {
	for i := from; i < to; i++ {
		words := wordsOf(i)
		r := &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(strings.Join(words, " "))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return fmt.Errorf("producing line %d: %w", i, err)
		}
		mu.Lock()
		for _, w := range words {
			expected[w]++
		}
		mu.Unlock()
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	return nil
}

// countsReader reads the output topic (read_committed, straight from the
// cluster) and keeps every committed count of every word in order.
type countsReader struct {
	mu     sync.Mutex
	seen   map[string][]int64
	total  int
	badVal []string
}

func readCounts(ctx context.Context, t *testing.T, s *stack, topic string) *countsReader {
	cr := &countsReader{seen: map[string][]int64{}}
	cl := direct(t, s.kafka, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	go func() {
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				n, err := strconv.ParseInt(string(r.Value), 10, 64)
				cr.mu.Lock()
				if err != nil {
					cr.badVal = append(cr.badVal, string(r.Value))
				} else {
					cr.seen[string(r.Key)] = append(cr.seen[string(r.Key)], n)
				}
				cr.total++
				cr.mu.Unlock()
			})
		}
	}()
	return cr
}

func (cr *countsReader) records() int {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.total
}

// caughtUp reports whether the last committed count of every expected word
// is its expected count.
func (cr *countsReader) caughtUp(expected map[string]int64, mu *sync.Mutex) bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	for w, n := range expected {
		s := cr.seen[w]
		if len(s) == 0 || s[len(s)-1] != n {
			return false
		}
	}
	return true
}

// exact checks that each word's committed counts are exactly 1, 2, ..., n
// with n its expected count, and that no other word appeared: no update
// lost, none duplicated (exactly once across the crash).
func (cr *countsReader) exact(expected map[string]int64) error {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if len(cr.badVal) > 0 {
		return fmt.Errorf("output values that are not counts: %q", cr.badVal)
	}
	var problems []string
	for w, n := range expected {
		s := cr.seen[w]
		ok := int64(len(s)) == n
		for i := 0; ok && i < len(s); i++ {
			ok = s[i] == int64(i+1)
		}
		if !ok {
			shown := s
			if len(shown) > 12 {
				shown = append(append([]int64{}, s[:6]...), s[len(s)-6:]...)
			}
			problems = append(problems, fmt.Sprintf("%s: %d counts %v, want 1..%d", w, len(s), shown, n))
		}
	}
	for w := range cr.seen {
		if _, ok := expected[w]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected word %q", w))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("output not exact: %s", strings.Join(problems, "; "))
	}
	return nil
}

// writeProps writes a Streams client's properties file.
func writeProps(t *testing.T, s *stack, user, app, protocol, stateDir string) string {
	t.Helper()
	props := s.javaClientProps(user) + fmt.Sprintf("application.id=%s\ngroup.protocol=%s\nstate.dir=%s\nclient.id=%s-%s\n",
		app, protocol, stateDir, app, filepath.Base(stateDir))
	p := filepath.Join(t.TempDir(), "streams.properties")
	if err := os.WriteFile(p, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStreamsExactlyOnce runs the word count (exactly_once_v2, a
// repartition topic and a changelog) through kguard with the shipped
// policies and the Streams recipe only, on the classic and the streams
// group protocol: the output is exact; SIGKILLed mid-stream and restarted
// with an empty state directory (so its store is restored from the
// changelog), the output is still exact. On the streams protocol the
// broker creates the internal topics (kguard lets it: the principal may
// create them and they pass the safeguards).
func TestStreamsExactlyOnce(t *testing.T) {
	for _, protocol := range []string{"classic", "streams"} {
		t.Run(protocol, func(t *testing.T) { testStreamsExactlyOnce(t, protocol) })
	}
}

func testStreamsExactlyOnce(t *testing.T, protocol string) {
	start := time.Now()
	tag := harness.RandHex(t, 3)
	user := "wordcount-" + tag
	app := "fw-wc-" + protocol + "-" + tag
	input, output := "fw-words-"+tag, "fw-counts-"+tag
	s := startStack(t, stackOpts{users: []string{user}, acls: streamsRecipe("User:"+user, app, input, output)})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cl := direct(t, s.kafka)
	adm := kadm.NewClient(cl)
	deleteTopicsWithPrefix(t, adm, app+"-", input, output)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = adm.DeleteGroup(ctx, app)
	})
	if err := createTopics(ctx, adm, 3, input, output); err != nil {
		t.Fatal(err)
	}
	expected := map[string]int64{}
	var mu sync.Mutex
	const phase1, phase2 = 200, 400 // lines of 5 words
	if err := produceLines(ctx, cl, input, 0, phase1, 0, expected, &mu); err != nil {
		t.Fatal(err)
	}
	cr := readCounts(ctx, t, s, output)

	// First run: everything of phase 1 counted.
	run1 := startJava(t, "wordcount-"+protocol+"-1", wordCountSrc, writeProps(t, s, user, app, protocol, t.TempDir()), input, output)
	waitCaughtUp := func(p *javaProc, what string) {
		t.Helper()
		for !cr.caughtUp(expected, &mu) {
			if p.exited() || ctx.Err() != nil {
				t.Fatalf("%s: the output never caught up (%d records); program:\n%s\nkguard:\n%s", what, cr.records(), p.tail(40), s.logTail(20))
			}
			if m := p.matching("FATAL"); len(m) > 0 {
				t.Fatalf("%s: %s\nkguard:\n%s", what, m[0], s.logTail(20))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitCaughtUp(run1, "first run")
	firstRun := time.Since(start)
	if err := cr.exact(expected); err != nil {
		t.Fatalf("first run: %v", err)
	}
	// The group runs the protocol asked for.
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := groups[app]; !ok || g.GroupType != protocol {
		t.Fatalf("group %s: %+v, want a %s group", app, g, protocol)
	}
	internal, err := topicsWithPrefix(ctx, adm, app+"-")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(internal)
	var changelog, repartition string
	for _, n := range internal {
		switch {
		case strings.HasSuffix(n, "-changelog"):
			changelog = n
		case strings.HasSuffix(n, "-repartition"):
			repartition = n
		}
	}
	if changelog == "" || repartition == "" {
		t.Fatalf("internal topics %v: want a changelog and a repartition topic", internal)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, changelog, repartition)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range cfgs {
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" {
				want := "delete"
				if rc.Name == changelog {
					want = "compact"
				}
				if c.MaybeValue() != want {
					t.Errorf("%s: cleanup.policy %q, want %q", rc.Name, c.MaybeValue(), want)
				}
			}
		}
	}

	// Phase 2 streams in while the application runs; it is SIGKILLed
	// once part of it is counted, and the rest keeps coming.
	before := cr.records()
	prodErr := make(chan error, 1)
	go func() {
		prodErr <- produceLines(ctx, cl, input, phase1, phase1+phase2, 5*time.Millisecond, expected, &mu)
	}()
	for cr.records() < before+300 {
		if run1.exited() || ctx.Err() != nil {
			t.Fatalf("second phase: no progress before the kill (%d records); program:\n%s", cr.records(), run1.tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
	run1.kill()
	killedAt := cr.records()
	killed := time.Now()

	// Restart with an empty state directory: the store comes back from the
	// changelog.
	run2 := startJava(t, "wordcount-"+protocol+"-2", wordCountSrc, writeProps(t, s, user, app, protocol, t.TempDir()), input, output)
	if err := <-prodErr; err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(run2, "after SIGKILL and restart")
	recovery := time.Since(killed)
	restored := run2.matching("RESTORED counts")
	var restoredRecords int64
	for _, l := range restored {
		f := strings.Fields(l)
		n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
		restoredRecords += n
	}
	if restoredRecords == 0 {
		t.Errorf("the restarted application restored nothing from %s (%q)", changelog, restored)
	}
	if err := cr.exact(expected); err != nil {
		t.Fatalf("after SIGKILL and restart: %v", err)
	}
	// Streams purges what it consumed from its repartition topic
	// (DeleteRecords, the recipe's Delete grant; every second here).
	var purged int64
	for purged == 0 && ctx.Err() == nil {
		starts, err := adm.ListStartOffsets(ctx, repartition)
		if err != nil {
			t.Fatal(err)
		}
		purged = 0
		starts.Each(func(o kadm.ListedOffset) { purged += o.Offset })
		if purged == 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if purged == 0 {
		t.Errorf("%s was never purged", repartition)
	}
	run2.stop(30 * time.Second)
	words := 5 * (phase1 + phase2)
	t.Logf("FRAMEWORK streams eos %s: %d words (%d distinct), exact (first run %.1fs); SIGKILL after %d output records, restart restored %d records from %s, exact again (%.1fs); internal topics %v, %d records purged from the repartition topic; %.1fs",
		protocol, words, len(expected), firstRun.Seconds(), killedAt, restoredRecords, changelog, recovery.Seconds(), internal, purged, time.Since(start).Seconds())
}

// TestStreamsRefused: a principal without the recipe's grants is refused
// with a clear message and nothing is created for it. On the classic
// protocol the principal has what a plain consumer and producer get (Read
// on the input, Write on the output, its group) but nothing on the
// application's internal topics nor its transactional ids; on the streams
// protocol it has the whole recipe but Create, so the broker must not
// create the internal topics the heartbeat's topology names.
func TestStreamsRefused(t *testing.T) {
	cases := []struct {
		name, protocol string
		app            string // application id prefix
		without        []string
		// want is what the program's output must say (kguard's answer as
		// the client reports it), for application id app.
		want func(app string) string
	}{
		{"classic", "classic", "fw-wc-no-", []string{"Create", "Topic:Read", "Topic:Write", "Delete", "TransactionalId"},
			func(app string) string {
				return "TopicAuthorizationException: Not authorized to access topics: [" + app + "-by-word-repartition]"
			}},
		{"streams", "streams", "fw-wc-no-", []string{"Create"},
			func(app string) string {
				return "TOPIC_AUTHORIZATION_FAILED: Unauthorized to CREATE on topics " + app + "-by-word-repartition," + app + "-counts-changelog"
			}},
		// The whole recipe, but an application id against the naming
		// convention: the broker must not create its internal topics.
		{"streams-safeguards", "streams", "fw-WC-", nil,
			func(app string) string {
				return "POLICY_VIOLATION: internal topic " + app + "-by-word-repartition: topic name \"" + app + "-by-word-repartition\": its application id (" + app + ") does not follow the naming convention"
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			tag := harness.RandHex(t, 3)
			user := "wordcount-" + tag
			app := c.app + c.protocol + "-" + tag
			input, output := "fw-words-"+tag, "fw-counts-"+tag
			acls := streamsRecipe("User:"+user, app, input, output, c.without...)
			// The plain consumer and producer rights the classic case keeps.
			if c.protocol == "classic" {
				acls = append(acls,
					harness.ACL{Principal: "User:" + user, Host: "*", Resource: "Topic", Pattern: "LITERAL", Name: input, Operation: "Read", Permission: "ALLOW"},
					harness.ACL{Principal: "User:" + user, Host: "*", Resource: "Topic", Pattern: "LITERAL", Name: output, Operation: "Write", Permission: "ALLOW"})
			}
			s := startStack(t, stackOpts{users: []string{user}, acls: acls})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cl := direct(t, s.kafka)
			adm := kadm.NewClient(cl)
			deleteTopicsWithPrefix(t, adm, app+"-", input, output)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, _ = adm.DeleteGroup(ctx, app)
			})
			if err := createTopics(ctx, adm, 3, input, output); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			if err := produceLines(ctx, cl, input, 0, 20, 0, map[string]int64{}, &mu); err != nil {
				t.Fatal(err)
			}
			p := startJava(t, "wordcount-refused-"+c.protocol, wordCountSrc, writeProps(t, s, user, app, c.protocol, t.TempDir()), input, output)
			fatal, err := p.waitLine(ctx, "FATAL")
			if err != nil {
				t.Fatalf("%v; program:\n%s\nkguard:\n%s", err, p.tail(40), s.logTail(20))
			}
			p.kill()
			want := c.want(app)
			b, err := os.ReadFile(p.logFile)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), want) {
				t.Errorf("the program was refused (%s) but its output does not say %q:\n%s", fatal, want, p.tail(30))
			}
			internal, err := topicsWithPrefix(ctx, adm, app+"-")
			if err != nil {
				t.Fatal(err)
			}
			if len(internal) > 0 {
				t.Errorf("internal topics %v were created for a principal without the grants", internal)
			}
			t.Logf("FRAMEWORK streams refused %s (application id %s, recipe without %v): the application stops, saying %q; no internal topic created; %.1fs",
				c.name, app, c.without, want, time.Since(start).Seconds())
		})
	}
}
