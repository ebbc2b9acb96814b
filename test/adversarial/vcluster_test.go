package adversarial_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
)

// vclusterTenants puts acme and globex in virtual clusters whose physical
// prefixes are their tenant prefixes: acme names "orders", the cluster
// holds "acme.orders".
const vclusterTenants = "  virtual_clusters:\n    acme: {prefix: \"acme.\"}\n    globex: {prefix: \"globex.\"}\n"

// vclusterStacks is a kguard of its own with virtual clusters in front of
// kfake and, when configured, in front of the real Apache Kafka cluster.
func vclusterStacks(t *testing.T) []*stack {
	t.Helper()
	o := stackOpts{tenants: vclusterTenants}
	out := []*stack{fresh(t, o)}
	if realConfigured() {
		out = append(out, freshReal(t, o))
	}
	return out
}

// TestVirtualCluster runs two tenants with identical topic, group and
// transactional-id names through one kguard, then attacks one from the
// other with every API and version, and with listings.
func TestVirtualCluster(t *testing.T) {
	for _, s := range vclusterStacks(t) {
		t.Run(s.name+"/same-names", func(t *testing.T) { vclusterSameNames(t, s) })
		t.Run(s.name+"/sweep", func(t *testing.T) {
			vclusterSweep(t, s, "physical", victim{topic: "globex.ledger", group: "globex.group", txn: "globex.txn"})
			vclusterSweep(t, s, "virtual", victim{topic: "ledger", group: "group", txn: "txn"})
		})
		t.Run(s.name+"/listings", func(t *testing.T) { vclusterListings(t, s) })
	}
}

// vclusterSameNames: acme and globex each create topic gw-orders-<run>,
// produce to it in transaction gw-tx-<run>, consume it in group
// gw-group-<run> and commit; each reads only its own records, kcat -L
// lists only its own unprefixed topics, and the physical cluster holds
// both under their prefixes.
func vclusterSameNames(t *testing.T, s *stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := randHex(3)
	topic, group, txn := "gw-orders-"+run, "gw-group-"+run, "gw-tx-"+run
	direct := kadm.NewClient(s.directClient(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = direct.DeleteGroups(ctx, "acme."+group, "globex."+group)
		_, _ = direct.DeleteTopics(ctx, "acme."+topic, "globex."+topic)
	})
	a := attack(t, s, "virtual clusters: acme and globex both use topic, group and transactional id names "+topic+", "+group+", "+txn)
	const n = 10
	for _, user := range []string{acme, globex} {
		if _, err := kadm.NewClient(s.client(t, user)).CreateTopic(ctx, 3, -1, nil, topic); err != nil {
			t.Fatalf("%s creates %s: %v", user, topic, err)
		}
		p := s.client(t, user, kgo.TransactionalID(txn), kgo.DefaultProduceTopic(topic))
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := p.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("%s-%d", user, i))).FirstErr(); err != nil {
				t.Fatalf("%s produces to %s: %v", user, topic, err)
			}
		}
		if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("%s commits transaction %s: %v", user, txn, err)
		}
		c := s.client(t, user, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group), kgo.DisableAutoCommit(),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		var got []string
		for len(got) < n && ctx.Err() == nil {
			fs := c.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("%s consumes %s: %v", user, topic, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Topic != topic || !strings.HasPrefix(string(r.Value), user+"-") {
					t.Errorf("%s read %q from topic %q", user, r.Value, r.Topic)
				}
				got = append(got, string(r.Value))
			})
		}
		if len(got) != n {
			t.Fatalf("%s read %d of %d records", user, len(got), n)
		}
		if err := c.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("%s commits offsets in %s: %v", user, group, err)
		}
		offs, err := kadm.NewClient(s.client(t, user)).FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic != topic {
				t.Errorf("%s's group %s has offsets for %q", user, group, o.Topic)
			}
		})
		if len(offs) == 0 {
			t.Errorf("%s's group %s has no committed offsets", user, group)
		}
		a.Sent("User:%s: create %s, %d records in transaction %s, consume in group %s, commit", user, topic, n, txn, group)
		a.Got("%s read its own %d records back; its group's offsets name only %s", user, n, topic)
		own := "acme."
		if user == globex {
			own = "globex."
		}
		kcatLists(t, s, a, user, own)
	}
	// The physical cluster holds both, prefixed.
	topics, err := direct.ListTopics(ctx, "acme."+topic, "globex."+topic)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := direct.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txns, err := direct.DescribeTransactions(ctx, "acme."+txn, "globex."+txn)
	if err != nil {
		t.Fatal(err)
	}
	for _, pre := range []string{"acme.", "globex."} {
		if td, ok := topics[pre+topic]; !ok || td.Err != nil {
			t.Errorf("the cluster has no topic %s%s", pre, topic)
		}
		if !slices.Contains(groups.Groups(), pre+group) {
			t.Errorf("the cluster has no group %s%s", pre, group)
		}
		if d, ok := txns[pre+txn]; !ok || d.Err != nil || d.ProducerID < 0 {
			t.Errorf("the cluster's transaction %s%s: %+v", pre, txn, d)
		}
	}
	a.Got("the cluster holds acme.%s and globex.%s, groups acme.%s and globex.%s, transactions acme.%s and globex.%s",
		topic, topic, group, group, txn, txn)
	ev := s.waitAudit(t, "an acme request naming its topic, physical and virtual", func(ev audit.Event) bool {
		return ev.Who != nil && ev.Who.Principal == "User:"+acme && ev.What != nil &&
			ev.What.ResourceName == "acme."+topic && ev.Details["virtual_prefix"] == "acme." && ev.Details["virtual_resource_name"] == topic
	})
	a.Got("audit: %s %s resource %s (virtual %s, prefix %s)", ev.What.APIName, ev.Outcome.Decision, ev.What.ResourceName,
		ev.Details["virtual_resource_name"], ev.Details["virtual_prefix"])
}

// kcatLists runs kcat -L as user through kguard: it must list exactly the
// cluster's topics under own, without the prefix.
func kcatLists(t *testing.T, s *stack, a *attackCase, user, own string) {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		a.Got("kcat not installed: -L not checked")
		return
	}
	md, err := kadm.NewClient(s.directClient(t)).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, name := range md.Names() {
		if v, ok := strings.CutPrefix(name, own); ok {
			want = append(want, v)
		}
	}
	out, err := exec.Command("kcat", "-L", "-J", "-b", s.bootstrap, "-m", "20",
		"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
		"-X", "sasl.username="+user, "-X", "sasl.password="+s.passwords[user]).Output()
	if err != nil {
		t.Fatalf("kcat -L as %s: %v\n%s", user, err, out)
	}
	var meta struct {
		Topics []struct {
			Topic string `json:"topic"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &meta); err != nil {
		t.Fatalf("kcat -L -J as %s: %v\n%s", user, err, out)
	}
	var got []string
	for _, tp := range meta.Topics {
		got = append(got, tp.Topic)
	}
	slices.Sort(got)
	slices.Sort(want)
	// Topics created or deleted by other tests meanwhile: compare what
	// kcat lists against the prefix, and require this run's topic.
	for _, name := range got {
		if strings.HasPrefix(name, "acme.") || strings.HasPrefix(name, "globex.") || strings.HasPrefix(name, "__") ||
			!slices.Contains(want, name) {
			t.Errorf("kcat -L as %s lists %q (cluster topics under %s: %q)", user, name, own, want)
		}
	}
	a.Got("kcat -L -J as %s lists %d topics, all the cluster's %s* topics unprefixed: %s", user, len(got), own, strings.Join(got, " "))
}

// vclusterSweep sends, as acme, every API and version kguard advertises,
// naming globex's topic (spelt as given, and by its topic id), group and
// transactional id. Whatever acme names lands in acme's own virtual
// cluster; the topic id is denied. No answer may carry a globex record,
// an unrefused entry for globex's topic id, or (virtual spelling) any
// globex name; globex's topics, groups and records are unchanged.
func vclusterSweep(t *testing.T, s *stack, spelling string, v victim) {
	ctx := context.Background()
	dcl := s.directClient(t)
	direct := kadm.NewClient(dcl)
	md, err := direct.Metadata(ctx, "globex.ledger")
	if err != nil || md.Topics["globex.ledger"].Err != nil {
		t.Fatalf("globex.ledger: %v %v", err, md.Topics["globex.ledger"].Err)
	}
	v.topicID = md.Topics["globex.ledger"].ID
	before := globexState(t, dcl, v)
	t.Cleanup(func() { // what the sweep created in acme's own namespace
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = direct.DeleteTopics(ctx, "acme."+v.topic)
		_, _ = direct.DeleteGroups(ctx, "acme."+v.group)
	})
	rc := s.login(t, acme, s.leaderOf(t, "globex.ledger", 0))
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	avr, err := rc.send(av)
	if err != nil {
		t.Fatal(err)
	}
	a := attack(t, s, fmt.Sprintf("virtual cluster: every API and version naming globex's topic (%s spelling %q and its id), group and transactional id", spelling, v.topic))
	// Only the id is the victim's: names land in acme's namespace.
	idOnly := victim{topic: "\x00", topicID: v.topicID, group: "\x00", txn: "\x00"}
	var tried int
	var closed []string
	for _, k := range avr.(*kmsg.ApiVersionsResponse).ApiKeys {
		for ver := k.MinVersion; ver <= k.MaxVersion; ver++ {
			req := kmsg.RequestForKey(k.ApiKey)
			if req == nil || !fillNaming(req, v) {
				break
			}
			req.SetVersion(ver)
			name := fmt.Sprintf("%s v%d", kmsg.NameForKey(k.ApiKey), ver)
			tried++
			resp, err := rc.send(req)
			if err != nil {
				// Refused without an error code at this version, or
				// a response kguard would not rename: closed (fail
				// closed), and nothing returned.
				closed = append(closed, fmt.Sprintf("%s (%v)", name, err))
				rc = s.login(t, acme, s.leaderOf(t, "globex.ledger", 0))
				continue
			}
			if leak := leaksVictim(resp, idOnly, []byte("globex.ledger-")); leak != "" {
				t.Errorf("%s: %s", name, leak)
				a.Got("%s: LEAK %s", name, leak)
			}
			if spelling == "virtual" && bytes.Contains(resp.AppendTo(nil), []byte("globex.")) {
				t.Errorf("%s: the answer names something of globex's", name)
				a.Got("%s: LEAK a globex. name", name)
			}
		}
	}
	a.Sent("User:%s: %d requests, each naming %q, globex's topic id, group %q and transactional id %q", acme, tried, v.topic, v.group, v.txn)
	a.Got("no answer carries a globex record, name or unrefused topic id; %d closed the connection (refused in a virtual cluster without an error code, or fail closed): %s", len(closed), strings.Join(closed, ", "))
	if after := globexState(t, dcl, v); after != before {
		t.Errorf("globex's physical state changed:\nbefore %s\nafter  %s", before, after)
	} else {
		a.Got("globex's topic, group and offsets, and the sweep's names unprefixed, unchanged: %s", after)
	}
}

// globexState summarizes what of globex's the sweep could reach:
// globex.ledger's end offsets, and whether the victim's names and the
// sweep's own (unprefixed, as they would land if renaming failed) exist as
// topics and groups. (Only these: other tests create and delete globex.*
// topics meanwhile.)
func globexState(t *testing.T, cl *kgo.Client, v victim) string {
	t.Helper()
	ctx := context.Background()
	adm := kadm.NewClient(cl)
	names := []string{"globex.ledger", "globex.group", v.topic, v.group}
	topics, err := adm.ListTopics(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := listEnds(ctx, cl, "globex.ledger")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range names {
		td, ok := topics[n]
		fmt.Fprintf(&b, "%s: topic %v group %v; ", n, ok && td.Err == nil, slices.Contains(groups.Groups(), n))
	}
	fmt.Fprintf(&b, "globex.ledger ends %v", ends)
	return b.String()
}

// vclusterListings: every listing request (all topics, groups,
// transactions, cursors, config resources) and a KIP-848 regex
// subscription, as acme in its virtual cluster: no name outside it, no
// "acme." prefix (names are virtual) and no other topic's id comes back.
func vclusterListings(t *testing.T, s *stack) {
	victimActivity(t, s)
	md, err := kadm.NewClient(s.directClient(t)).Metadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var forbidden [][]byte
	for name, td := range md.Topics {
		if !strings.HasPrefix(name, "acme.") {
			forbidden = append(forbidden, td.ID[:])
		}
	}
	// Names are checked one by one (listedNames): acme's own virtual
	// names may contain "globex." (the sweep's acme.globex.txn).
	forbidden = append(forbidden, []byte("frank-"), []byte("erin-"), []byte("acme."), []byte("__consumer_offsets"))
	var listed []string
	a := attack(t, s, "virtual cluster listings as acme: all topics, groups, transactions, cursors, config resources, regex subscription")
	rc := s.login(t, acme, "")
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	avr, err := rc.send(av)
	if err != nil {
		t.Fatal(err)
	}
	n, closed := 0, 0
	for _, k := range avr.(*kmsg.ApiVersionsResponse).ApiKeys {
		for ver := k.MinVersion; ver <= k.MaxVersion; ver++ {
			for _, req := range listingRequests(k.ApiKey, ver, "") {
				req.SetVersion(ver)
				n++
				resp, err := rc.send(req)
				if err != nil {
					closed++
					rc = s.login(t, acme, "")
					continue
				}
				listed = append(listed, listedNames(reflect.ValueOf(resp))...)
				b := resp.AppendTo(nil)
				for _, f := range forbidden {
					if bytes.Contains(b, f) {
						t.Errorf("%s v%d (%s): the answer contains %q: %+v", kmsg.NameForKey(k.ApiKey), ver, describeListing(req), printable(f), resp)
					}
				}
			}
		}
	}
	own := acmeResources(t, s)
	own["acme.group"] = true // OffsetFetch's listing asks for group "group": echoed
	for _, name := range listed {
		if !own["acme."+name] {
			t.Errorf("a listing shows %q: acme has no acme.%s", name, name)
		}
	}
	a.Sent("User:%s: %d listing requests", acme, n)
	a.Got("%d names listed, each acme's own without its prefix; no other topic id in any answer (%d closed: refused APIs)", len(listed), closed)
	heartbeatRegex(t, s, a, acme, "", append(forbidden, []byte("globex.")))
}

// listedNames are the topic, group and transactional-id names in a
// response.
func listedNames(v reflect.Value) []string {
	var out []string
	switch v.Kind() {
	case reflect.Ptr, reflect.Interface:
		if !v.IsNil() {
			out = listedNames(v.Elem())
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			out = append(out, listedNames(v.Index(i))...)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			switch v.Type().Field(i).Name {
			case "Topic", "Group", "GroupID", "TransactionalID":
				if f.Kind() == reflect.Ptr && !f.IsNil() {
					f = f.Elem()
				}
				if f.Kind() == reflect.String && f.String() != "" {
					out = append(out, f.String())
				}
			default:
				out = append(out, listedNames(f)...)
			}
		}
	}
	return out
}

// acmeResources are the cluster's topics, groups and transactional ids
// under acme's prefix.
func acmeResources(t *testing.T, s *stack) map[string]bool {
	t.Helper()
	ctx := context.Background()
	adm := kadm.NewClient(s.directClient(t))
	out := map[string]bool{}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txns, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append(append(topics.Names(), groups.Groups()...), txns.TransactionalIDs()...) {
		if strings.HasPrefix(n, "acme.") {
			out[n] = true
		}
	}
	return out
}
