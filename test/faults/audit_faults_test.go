package faults_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/test/harness"
)

// Superuser tampering (an event inserted into the live topic, and on copy
// topics one altered and one deleted) is covered against this cluster by
// audit's TestRealKafkaTamper (PLAINTEXT listener, no authorizer) and is not
// repeated here.

// TestAuditNormalTraffic: producers and a consumer through kguard (a child
// process) for a few thousand Produce requests, then SIGTERM. The spool is
// drained, the topic holds seqs 1..N of this instance exactly, every
// Produce request the client wrote has its authz.decision event (and the
// events count every acknowledged record), and both audit.Verify and
// `kguard audit verify` pass; the CLI with another public key fails.
func TestAuditNormalTraffic(t *testing.T) {
	s := newAuditStack(t, "normal")
	unlock := harness.ClusterLock(t, s.kafka.Script, syscall.LOCK_SH)
	defer unlock()
	s.start()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topic := namePrefix + "audit-normal-" + randHex(t, 4)
	s.createClientTopic(topic)
	tr := s.startTraffic(topic, 4)
	if err := tr.waitProduce(ctx, 3000); err != nil {
		t.Fatal(err)
	}
	tr.stop()
	t.Logf("traffic: %s", tr)
	rec, shipped := s.auditProgress()
	t.Logf("kguard metrics before SIGTERM: %d events recorded, %d shipped", rec, shipped)
	s.stop(syscall.SIGTERM)

	sp := s.drainedSpool()
	trl, err := s.readTrail(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	c := compare(trl, sp.last, sp.events)
	checkCounts(t, "normal traffic, SIGTERM", c)
	line := fmt.Sprintf("audit fault normal traffic: client wrote %d produce requests (%d records acknowledged), topic has %d produce authz.decision events covering %d records, %d authz.decision events in all, %d connection.open",
		tr.produceReqs.Load(), tr.acked.Load(), trl.produce.decisions, trl.produce.records, trl.types[audit.EventAuthzDecision], trl.types[audit.EventConnectionOpen])
	t.Log(line)
	fmt.Println(line)
	if trl.produce.decisions < tr.produceReqs.Load() {
		t.Errorf("%d produce authz.decision events for %d produce requests", trl.produce.decisions, tr.produceReqs.Load())
	}
	if trl.types[audit.EventAuthzDecision] < int(tr.produceReqs.Load()) {
		t.Errorf("%d authz.decision events for %d produce requests", trl.types[audit.EventAuthzDecision], tr.produceReqs.Load())
	}
	if trl.produce.records < tr.acked.Load() {
		t.Errorf("produce decisions cover %d records of %s, %d were acknowledged", trl.produce.records, topic, tr.acked.Load())
	}
	if trl.types[audit.EventAuditStart] != 1 || trl.types[audit.EventAuditStop] != 1 {
		t.Errorf("%d audit.start and %d audit.stop events, want 1 each", trl.types[audit.EventAuditStart], trl.types[audit.EventAuditStop])
	}
	s.verifyTrail(ctx, sp.last)

	out, rightErr := s.cliVerify(ctx, s.pubFile)
	t.Logf("kguard audit verify: %v\n%s", rightErr, out)
	if rightErr != nil {
		t.Errorf("kguard audit verify exited with %v on an untouched trail", err)
	}
	other := filepath.Join(t.TempDir(), "other.pem")
	if _, err := audit.GenerateKeyFile(other); err != nil {
		t.Fatal(err)
	}
	out, err = s.cliVerify(ctx, other+".pub")
	t.Logf("kguard audit verify with another key: %v\n%s", err, out)
	if err == nil {
		t.Errorf("kguard audit verify with a public key that did not sign the checkpoints exited 0")
	}
	fmt.Printf("audit fault normal traffic: kguard audit verify: with the signing key's .pub: %v; with another key: %v\n", exitText(rightErr), exitText(err))
}

// exitText describes a command's outcome.
func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// TestAuditBrokerOutage kills -9 the leader of the audit topic partition
// that holds this kguard instance's events while traffic flows through
// kguard, keeps the traffic going, restarts the node, stops kguard with
// SIGTERM, and checks that seqs 1..N are all in the topic (N = the last seq
// kguard recorded, from its drained spool) and verify passes.
func TestAuditBrokerOutage(t *testing.T) {
	s := newAuditStack(t, "outage")
	unlock := harness.ClusterLock(t, s.kafka.Script, syscall.LOCK_EX)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	waitHealthy(t, s.adm, 3*time.Minute)
	s.start()
	topic := namePrefix + "audit-outage-" + randHex(t, 4)
	s.createClientTopic(topic)
	tr := s.startTraffic(topic, 4)
	if err := tr.waitProduce(ctx, 500); err != nil {
		t.Fatal(err)
	}
	// Where this instance's events go, and who leads that partition.
	var part int32 = -1
	for part < 0 {
		trl, err := s.readTrail(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for p := range trl.partitions {
			part = p
		}
		if len(trl.partitions) > 1 {
			t.Fatalf("instance events in partitions %v", trl.partitions)
		}
		if part < 0 {
			if ctx.Err() != nil {
				t.Fatal("no audit event shipped")
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	md, err := s.adm.Metadata(ctx, s.topic)
	if err != nil {
		t.Fatal(err)
	}
	leader := md.Topics[s.topic].Partitions[part].Leader
	if leader < 0 {
		t.Fatalf("%s/%d has no leader", s.topic, part)
	}
	killed := false
	defer func() {
		if killed { // the test failed between kill and restart
			rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer rcancel()
			_ = s.cluster(rctx, "restart", strconv.Itoa(int(leader)))
		}
	}()
	rec0, sh0 := s.auditProgress()
	req0 := tr.produceReqs.Load()
	t.Logf("killing node %d (leader of %s/%d, this instance's audit partition) at %d produce requests, %d events recorded, %d shipped",
		leader, s.topic, part, req0, rec0, sh0)
	if err := s.cluster(ctx, "kill", strconv.Itoa(int(leader))); err != nil {
		t.Fatal(err)
	}
	killed = true
	downAt := time.Now()
	// Keep the traffic going with the node down: at least 10 s and 1000
	// more produce requests.
	if err := tr.waitProduce(ctx, req0+1000); err != nil {
		t.Fatalf("producing with node %d down: %v", leader, err)
	}
	if d := 10*time.Second - time.Since(downAt); d > 0 {
		time.Sleep(d)
	}
	rec1, sh1 := s.auditProgress()
	if md, err := s.adm.Metadata(ctx, s.topic); err == nil {
		t.Logf("%s/%d led by node %d now", s.topic, part, md.Topics[s.topic].Partitions[part].Leader)
	}
	line := fmt.Sprintf("audit fault broker outage: node %d down %v: client wrote %d produce requests meanwhile; kguard recorded %d events (+%d), shipped %d (+%d), %d waiting in the spool at the restart",
		leader, time.Since(downAt).Round(time.Millisecond), tr.produceReqs.Load()-req0, rec1, rec1-rec0, sh1, sh1-sh0, rec1-sh1)
	t.Log(line)
	fmt.Println(line)
	if err := s.cluster(ctx, "restart", strconv.Itoa(int(leader))); err != nil {
		t.Fatal(err)
	}
	killed = false
	req1 := tr.produceReqs.Load()
	if err := tr.waitProduce(ctx, req1+500); err != nil {
		t.Fatalf("producing after node %d rejoined: %v", leader, err)
	}
	tr.stop()
	t.Logf("traffic: %s (first error: %v)", tr, tr.err())
	waitHealthy(t, s.adm, 3*time.Minute)
	rec2, sh2 := s.auditProgress()
	t.Logf("kguard metrics before SIGTERM: %d events recorded, %d shipped", rec2, sh2)
	s.stop(syscall.SIGTERM)

	sp := s.drainedSpool()
	trl, err := s.readTrail(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	c := compare(trl, sp.last, sp.events)
	checkCounts(t, fmt.Sprintf("broker outage (audit partition leader node %d killed -9 and restarted)", leader), c)
	// A broker's death closes the client connections kguard had open to
	// it; requests written into those sockets as they closed were never
	// read (nor forwarded) and are retried. Every answered one is audited.
	written, answered := tr.produceReqs.Load(), tr.produceAnswered.Load()
	t.Logf("%d produce authz.decision events; produce requests: %d written, %d answered", trl.produce.decisions, written, answered)
	if trl.produce.decisions < answered {
		t.Errorf("%d produce authz.decision events for %d answered produce requests", trl.produce.decisions, answered)
	}
	if written-answered > 50 {
		t.Errorf("%d produce requests written but not answered: more than the connections the outage closed could hold", written-answered)
	}
	s.verifyTrail(ctx, sp.last)
}

// TestAuditKguardSIGKILL kills kguard with SIGKILL while traffic flows,
// reads what its spool held at that moment (every event Record accepted),
// restarts it over the same spool and instance id, lets traffic continue,
// stops it with SIGTERM, and checks: every event recorded before the kill
// is in the topic with the bytes it was spooled with, the chain continues
// from the last spooled event (seqs 1..N, no gap, no seq with two
// contents), and verify passes.
func TestAuditKguardSIGKILL(t *testing.T) {
	s := newAuditStack(t, "sigkill")
	unlock := harness.ClusterLock(t, s.kafka.Script, syscall.LOCK_SH)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s.start()
	topic := namePrefix + "audit-sigkill-" + randHex(t, 4)
	s.createClientTopic(topic)
	tr := s.startTraffic(topic, 4)
	if err := tr.waitProduce(ctx, 1500); err != nil {
		t.Fatal(err)
	}
	rec0, sh0 := s.auditProgress()
	s.stop(syscall.SIGKILL)
	req0 := tr.produceReqs.Load()
	atKill, err := readSpool(s.spool)
	if err != nil {
		t.Fatalf("reading the spool of the killed kguard: %v", err)
	}
	line := fmt.Sprintf("audit fault kguard SIGKILL: at the kill %d events recorded (spool up to seq %d; metrics a moment before: %d recorded, %d shipped), shipped cursor %d, %d events still in the spool, %d unshipped, torn tail %d bytes",
		atKill.last, atKill.last, rec0, sh0, atKill.cursor, len(atKill.events), atKill.last-atKill.cursor, atKill.torn)
	t.Log(line)
	fmt.Println(line)
	if int64(atKill.last) < rec0 {
		t.Fatalf("spool ends at seq %d, but kguard reported %d events recorded before the kill", atKill.last, rec0)
	}
	time.Sleep(time.Second) // clients see connections refused
	s.start()
	if err := tr.waitProduce(ctx, req0+1000); err != nil {
		t.Fatalf("producing through the restarted kguard: %v", err)
	}
	tr.stop()
	t.Logf("traffic: %s (first error: %v)", tr, tr.err())
	s.stop(syscall.SIGTERM)

	sp := s.drainedSpool()
	if sp.last <= atKill.last {
		t.Fatalf("the restarted kguard recorded nothing: spool ends at %d, was %d at the kill", sp.last, atKill.last)
	}
	trl, err := s.readTrail(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	// The events of the second run start right after the last spooled one.
	var firstStart2 uint64
	for seq := atKill.last + 1; seq <= sp.last; seq++ {
		if vs := trl.values[seq]; len(vs) > 0 {
			if ev, err := audit.DecodeEvent(vs[0]); err == nil && ev.Type == audit.EventAuditStart {
				firstStart2 = seq
				break
			}
		}
	}
	beforeKillMissing := 0
	for seq := uint64(1); seq <= atKill.last; seq++ {
		if len(trl.values[seq]) == 0 {
			beforeKillMissing++
		}
	}
	c := compare(trl, sp.last, atKill.events, sp.events)
	line = fmt.Sprintf("audit fault kguard SIGKILL: of %d events recorded before the kill %d missing from the topic; second run's audit.start at seq %d; %d audit.start events in all",
		atKill.last, beforeKillMissing, firstStart2, trl.types[audit.EventAuditStart])
	t.Log(line)
	fmt.Println(line)
	checkCounts(t, "kguard SIGKILL mid-traffic, restarted over the same spool, SIGTERM", c)
	if beforeKillMissing != 0 {
		t.Errorf("%d events recorded before the SIGKILL are not in the topic", beforeKillMissing)
	}
	if firstStart2 == 0 {
		t.Errorf("no audit.start of the restarted kguard after seq %d", atKill.last)
	}
	if trl.types[audit.EventAuditStart] != 2 {
		t.Errorf("%d audit.start events, want 2 (one per run)", trl.types[audit.EventAuditStart])
	}
	if trl.types[audit.EventAuditStop] != 1 {
		t.Errorf("%d audit.stop events, want 1 (only the second run stopped cleanly)", trl.types[audit.EventAuditStop])
	}
	s.verifyTrail(ctx, sp.last)
}
