package frameworks_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kguard/kguard/test/harness"
)

// mirrorNames are the names of one MirrorMaker 2 deployment of a test run.
// The cluster aliases carry the run's suffix: MM2 derives every internal
// name from them, and both "clusters" are the same real cluster.
type mirrorNames struct {
	src, tgt      string // cluster aliases
	topic         string // the mirrored topic on the source
	remote        string // <src>.<topic> on the target
	group         string // the consumer group whose offsets are mirrored
	workerGroup   string // <src>-mm2: the Connect worker group of the src->tgt flow (target)
	configs       string // mm2-configs.<src>.internal (target)
	offsets       string // mm2-offsets.<src>.internal (target)
	status        string // mm2-status.<src>.internal (target)
	checkpoints   string // <src>.checkpoints.internal (target)
	offsetSyncs   string // mm2-offset-syncs.<tgt>.internal (source)
	targetCreated []string
}

func newMirrorNames(run string) mirrorNames {
	n := mirrorNames{src: "src" + run, tgt: "tgt" + run, topic: "orders-" + run, group: "billing-" + run}
	n.remote = n.src + "." + n.topic
	n.workerGroup = n.src + "-mm2"
	n.configs = "mm2-configs." + n.src + ".internal"
	n.offsets = "mm2-offsets." + n.src + ".internal"
	n.status = "mm2-status." + n.src + ".internal"
	n.checkpoints = n.src + ".checkpoints.internal"
	n.offsetSyncs = "mm2-offset-syncs." + n.tgt + ".internal"
	n.targetCreated = []string{n.remote, n.configs, n.offsets, n.status, n.checkpoints}
	return n
}

// mirrorRecipeACLs are the grants of docs/policy.md's MirrorMaker 2
// recipe, with this run's names: source is the principal MM2 logs in as on
// the source cluster, target the one on the target cluster (the recipe's
// two tables; one principal may hold both).
func mirrorRecipeACLs(source, target string, n mirrorNames) []harness.ACL {
	acl := func(p, res, pattern, name, op string) harness.ACL {
		return harness.ACL{Principal: p, Host: "*", Resource: res, Pattern: pattern, Name: name, Operation: op, Permission: "ALLOW"}
	}
	var a []harness.ACL
	// Source: read the mirrored topics and their configs, own the
	// offset-syncs topic, list and read the mirrored groups' offsets.
	for _, op := range []string{"Read", "DescribeConfigs"} {
		a = append(a, acl(source, "Topic", "LITERAL", n.topic, op))
	}
	for _, op := range []string{"Create", "Read", "Write", "DescribeConfigs"} {
		a = append(a, acl(source, "Topic", "LITERAL", n.offsetSyncs, op))
	}
	a = append(a, acl(source, "Group", "LITERAL", n.group, "Describe"))
	// Target: the remote topics and the checkpoints topic (<src>.), the
	// heartbeats topic, the worker's internal topics (mm2-), the worker
	// group, the mirrored groups' offsets.
	for _, op := range []string{"Create", "Read", "Write", "Alter", "AlterConfigs", "DescribeConfigs"} {
		a = append(a, acl(target, "Topic", "PREFIXED", n.src+".", op))
	}
	for _, op := range []string{"Create", "Read", "Write", "DescribeConfigs"} {
		a = append(a, acl(target, "Topic", "LITERAL", "heartbeats", op))
		a = append(a, acl(target, "Topic", "PREFIXED", "mm2-", op))
	}
	a = append(a, acl(target, "Group", "LITERAL", n.workerGroup, "Read"))
	a = append(a, acl(target, "Group", "LITERAL", n.group, "Read"))
	return a
}

// mirrorProps is MirrorMaker 2's dedicated-mode configuration: the src
// cluster through the kguard gs as srcUser, the tgt cluster through gt as
// tgtUser.
func mirrorProps(n mirrorNames, gs, gt *stack, srcUser, tgtUser string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "clusters=%s, %s\n", n.src, n.tgt)
	fmt.Fprintf(&b, "%s.bootstrap.servers=%s\n%s.bootstrap.servers=%s\n", n.src, gs.bootstrap, n.tgt, gt.bootstrap)
	b.WriteString(cxClientProps(gs, srcUser, n.src+"."))
	b.WriteString(cxClientProps(gt, tgtUser, n.tgt+"."))
	// The recipe's settings: no ACL sync, replication factors the
	// safeguards accept, configs synced with the source's defaults as
	// SETs (MM2 would DELETE them otherwise). The rest makes a short test.
	fmt.Fprintf(&b, `%[1]s->%[2]s.enabled=true
%[1]s->%[2]s.topics=%[3]s
%[1]s->%[2]s.groups=%[4]s
%[1]s->%[2]s.use.defaults.from=source
%[2]s->%[1]s.enabled=false
%[2]s->%[1]s.emit.heartbeats.enabled=false
sync.topic.acls.enabled=false
replication.factor=-1
sync.group.offsets.enabled=true
%[2]s.offset.flush.interval.ms=500
tasks.max=1
offset.storage.partitions=3
status.storage.partitions=1
sync.group.offsets.interval.seconds=1
emit.checkpoints.interval.seconds=1
emit.heartbeats.interval.seconds=1
refresh.topics.interval.seconds=5
refresh.groups.interval.seconds=5
sync.topic.configs.interval.seconds=2
offset.lag.max=0
`, n.src, n.tgt, n.topic, n.group)
	return b.String()
}

// TestMirrorMaker2 runs MirrorMaker 2 (dedicated mode) from one kguard
// to another, both in front of the real cluster, with the shipped
// policies and the MM2 recipe's grants and settings: the topic's records
// reach <src>.<topic> partition by partition in order, the consumer
// group's committed offsets are translated onto the target, a change of
// the source topic's config reaches the remote topic, and MM2 logs no
// authorization error or policy violation. A deployment whose principal
// lacks the recipe's grants is refused with a clear message and creates
// nothing.
func TestMirrorMaker2(t *testing.T) {
	start := time.Now()
	run := harness.RandHex(t, 3)
	n := newMirrorNames(run)
	bad := newMirrorNames(run + "x") // the refused deployment's
	const source, target, intruder = "mm2-source", "mm2-target", "mm2-intruder"
	acls := mirrorRecipeACLs("User:"+source, "User:"+target, n)
	opts := stackOpts{acls: acls, users: []string{source, target, intruder}}
	gs := startStack(t, opts) // the source cluster's kguard
	gt := startStack(t, opts) // the target cluster's kguard
	dir := t.TempDir()
	cxKeepLogs(t, dir, gs.logFile, gt.logFile)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The source topic, its records and the group's committed offsets
	// are the test's (straight to the cluster): MM2 only reads them. The
	// records are written in transactions, so the source partitions hold
	// commit markers the target's do not: the group's offsets must be
	// translated, not copied.
	const partitions, records, txns = 3, 600, 6
	const retention = "86400000" // a non-default topic config MM2 syncs
	txn := direct(t, gs.kafka, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("mm2-test-"+run))
	adm := kadm.NewClient(direct(t, gs.kafka))
	deleteTopicsWithPrefix(t, adm, n.topic, n.src, "mm2-configs."+n.src, "mm2-offsets."+n.src, "mm2-status."+n.src, "mm2-offset-syncs."+n.tgt)
	// One physical cluster: the mirrored group is the same group on both
	// sides (its source topic's offsets from the test, its remote topic's
	// from MM2).
	cxDeleteGroups(t, adm, n.group, n.workerGroup, bad.workerGroup)
	if _, err := adm.CreateTopic(ctx, partitions, 3, map[string]*string{"retention.ms": kadm.StringPtr(retention)}, n.topic); err != nil {
		t.Fatalf("creating %s: %v", n.topic, err)
	}
	var want [partitions][]string
	for i := range records {
		if i%(records/txns) == 0 {
			if err := txn.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
		}
		p := int32(i % partitions)
		v := fmt.Sprintf("order-%s-%05d", run, i)
		if err := txn.ProduceSync(ctx, &kgo.Record{Topic: n.topic, Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("producing: %v", err)
		}
		want[p] = append(want[p], v)
		if (i+1)%(records/txns) == 0 {
			if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatalf("committing a transaction: %v", err)
			}
		}
	}
	// The group has consumed everything.
	srcEnds, err := adm.ListEndOffsets(ctx, n.topic)
	if err != nil || srcEnds.Error() != nil {
		t.Fatalf("end offsets of %s: %v %v", n.topic, err, srcEnds.Error())
	}
	committed := kadm.Offsets{}
	srcEnds.Each(func(o kadm.ListedOffset) { committed.AddOffset(n.topic, o.Partition, o.Offset, -1) })
	if resp, err := adm.CommitOffsets(ctx, n.group, committed); err != nil || resp.Error() != nil {
		t.Fatalf("committing the group's offsets: %v %v", err, resp.Error())
	}

	props := filepath.Join(dir, "mm2.properties")
	if err := os.WriteFile(props, []byte(mirrorProps(n, gs, gt, source, target)), 0o600); err != nil {
		t.Fatal(err)
	}
	mm := cxStartJava(t, dir, "mm2", "org.apache.kafka.connect.mirror.MirrorMaker", props)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nMM2 log:\n%s\nkguard (target):\n%s", append(args, fileTail(mm.logFile, 80), gt.logTail(10))...)
	}

	// The records arrive on <src>.<topic>, partition by partition, in order.
	var got [partitions][]string
	var tgtEnds kadm.ListedOffsets
	err = cxPoll(ctx, 500*time.Millisecond, "records mirrored", func() (bool, error) {
		if mm.exited() {
			fail("MirrorMaker 2 exited")
		}
		var err error
		tgtEnds, err = adm.ListEndOffsets(ctx, n.remote)
		if err != nil {
			return false, err
		}
		total := int64(0)
		tgtEnds.Each(func(o kadm.ListedOffset) { total += o.Offset })
		return total >= records, tgtEnds.Error()
	})
	if err != nil {
		fail("%v", err)
	}
	mirrored := time.Since(start)
	cl := direct(t, gs.kafka, kgo.ConsumeTopics(n.remote), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for count := 0; count < records; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			fail("reading %s: %v", n.remote, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			count++
		})
	}
	for p := range partitions {
		if strings.Join(got[p], ",") != strings.Join(want[p], ",") {
			t.Fatalf("partition %d of %s: %d records %v..., want %d %v...", p, n.remote, len(got[p]), got[p][:min(3, len(got[p]))], len(want[p]), want[p][:3])
		}
	}

	// The group's offsets are translated onto the target: it has consumed
	// everything there too (the target partitions' end offsets, which
	// differ from the source's: no transaction markers).
	gctx, gcancel := context.WithTimeout(ctx, time.Minute)
	defer gcancel()
	var last string
	err = cxPoll(gctx, 500*time.Millisecond, "group offsets synced", func() (bool, error) {
		if mm.exited() {
			fail("MirrorMaker 2 exited")
		}
		fetched, err := adm.FetchOffsets(gctx, n.group)
		if err != nil {
			return false, err
		}
		ok := true
		var b strings.Builder
		tgtEnds.Each(func(e kadm.ListedOffset) {
			o, found := fetched.Lookup(n.remote, e.Partition)
			src, _ := srcEnds.Lookup(n.topic, e.Partition)
			fmt.Fprintf(&b, " p%d: source %d, target end %d, group %d;", e.Partition, src.Offset, e.Offset, o.At)
			if !found || o.At != e.Offset {
				ok = false
			}
		})
		last = b.String()
		return ok, nil
	})
	if err != nil {
		fail("%v:%s", err, last)
	}
	// A change of the source topic's config reaches the target topic
	// (MM2's periodic topic-config sync: IncrementalAlterConfigs through
	// kguard; the remote topic was created with the source's configs).
	const retention2 = "172800000"
	if rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr(retention2)}}, n.topic); err != nil || rs[0].Err != nil {
		t.Fatalf("changing %s's retention.ms: %v %v", n.topic, err, rs)
	}
	cctx, ccancel := context.WithTimeout(ctx, 45*time.Second)
	defer ccancel()
	var tgtRetention string
	err = cxPoll(cctx, time.Second, "topic config synced", func() (bool, error) {
		rcs, err := adm.DescribeTopicConfigs(cctx, n.remote)
		if err != nil {
			return false, err
		}
		rc, err := rcs.On(n.remote, nil)
		if err != nil {
			return false, err
		}
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" && c.Value != nil {
				tgtRetention = *c.Value
			}
		}
		return tgtRetention == retention2, nil
	})
	if err != nil {
		fail("%v: %s retention.ms %s, want %s", err, n.remote, tgtRetention, retention2)
	}
	t.Logf("FRAMEWORK mirrormaker2: %d records of %s (%d transactions) mirrored to %s in order per partition in %s; group %s's offsets translated onto the target (%s); topic config retention.ms %s -> %s synced; total %s",
		records, n.topic, txns, n.remote, mirrored.Round(time.Second), n.group, strings.TrimSpace(last), retention, retention2, time.Since(start).Round(time.Second))
	// Everything MM2 did was allowed: no authorization error or policy
	// violation in its log (it keeps running through those, warning).
	for _, what := range []string{"AuthorizationException", "PolicyViolationException"} {
		if l := cxGrep(mm.logFile, what); len(l) > 0 {
			t.Errorf("MM2 logged %d lines with %s, the first: %s", len(l), what, l[0])
		}
	}
	mm.stop()

	// Negative: the same deployment logging in to the target as a
	// principal without the recipe's grants.
	t0 := time.Now()
	badProps := filepath.Join(dir, "mm2-intruder.properties")
	if err := os.WriteFile(badProps, []byte(mirrorProps(bad, gs, gt, source, intruder)), 0o600); err != nil {
		t.Fatal(err)
	}
	bm := cxStartJava(t, dir, "mm2-intruder", "org.apache.kafka.connect.mirror.MirrorMaker", badProps)
	var refusal string
	err = cxPoll(ctx, 300*time.Millisecond, "intruder MM2 refused", func() (bool, error) {
		if refusal = cxRefusal(bm.logFile); refusal != "" {
			return true, nil
		}
		if bm.exited() {
			return false, fmt.Errorf("MM2 exited without an authorization error")
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("%v\nMM2 log:\n%s", err, fileTail(bm.logFile, 60))
	}
	named := false
	for _, name := range append([]string{bad.workerGroup}, bad.targetCreated...) {
		named = named || strings.Contains(refusal, name)
	}
	if !named {
		t.Errorf("the refusal names none of the deployment's target topics or its worker group: %s", refusal)
	}
	for _, prefix := range []string{bad.src, "mm2-configs." + bad.src, "mm2-offsets." + bad.src, "mm2-status." + bad.src} {
		if made, err := topicsWithPrefix(ctx, adm, prefix); err != nil || len(made) > 0 {
			t.Errorf("the refused deployment's target topics exist: %v %v", made, err)
		}
	}
	t.Logf("FRAMEWORK mirrormaker2 negative: MM2 logging in to the target as User:%s without the recipe's grants is refused in %s: %s", intruder, time.Since(t0).Round(time.Second), refusal)
}
