package compat_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/test/harness"
)

// memAuditor keeps kguard's audit events in memory.
type memAuditor struct {
	mu     sync.Mutex
	events []audit.Event
}

func (m *memAuditor) Record(ev audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, ev)
	return nil
}

func (m *memAuditor) all() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// TestFetchSessionAcrossTenants: on the real cluster (random 31-bit fetch
// session ids), a principal of another tenant that names the session id of
// a fetch session opened through kguard gets none of its records: an
// incremental fetch is answered FETCH_SESSION_ID_NOT_FOUND and audited as a
// denial, a full fetch with that id opens a session of its own, and the
// owner's session keeps serving the owner.
func TestFetchSessionAcrossTenants(t *testing.T) {
	const userA, userB = "acme-sess", "globex-sess"
	aud := &memAuditor{}
	acl := func(user, prefix string) harness.ACL {
		return harness.ACL{Principal: "User:" + user, Host: "*", Resource: "Topic", Pattern: "PREFIXED",
			Name: prefix, Operation: "All", Permission: "ALLOW"}
	}
	s := startStackWith(t, stackOpts{
		users:   []string{userA, userB},
		acls:    []harness.ACL{acl(userA, "acme."), acl(userB, "globex.")},
		auditor: aud,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	direct, err := kgo.NewClient(kgo.SeedBrokers(s.kafka.Plaintext...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	topic := "acme.sess-" + randHex(t, 4)
	adm := kadm.NewClient(direct)
	if res, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil || res.Err != nil {
		t.Fatalf("creating %s: %v %v", topic, err, res.Err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic) })
	produce := func(v string) {
		t.Helper()
		if err := direct.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	produce("acme-secret-1")

	client := func(user string) *kgo.Client {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.env.Bootstrap()),
			kgo.SASL(scram.Auth{User: user, Pass: s.passwords[user]}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	a, b := client(userA), client(userB)
	// The partition leader and topic id, as acme-sess sees them through kguard.
	var leader int32 = -1
	var tid [16]byte
	for leader < 0 {
		md, err := kadm.NewClient(a).Metadata(ctx, topic)
		if err != nil {
			t.Fatalf("metadata: %v", err)
		}
		if td := md.Topics[topic]; td.Err == nil && len(td.Partitions) == 1 && td.Partitions[0].Leader >= 0 {
			leader, tid = td.Partitions[0].Leader, td.ID
		} else if ctx.Err() != nil {
			t.Fatalf("no leader for %s: %v", topic, td.Err)
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	fetch := func(cl *kgo.Client, session, epoch int32, offset int64, named bool) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 500, 1<<20
		req.SessionID, req.SessionEpoch = session, epoch
		if named {
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic, ft.TopicID = topic, tid
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = offset, 1<<20, -1
			ft.Partitions = append(ft.Partitions, fp)
			req.Topics = append(req.Topics, ft)
		}
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if err != nil {
			t.Fatalf("fetch (session %d, epoch %d): %v", session, epoch, err)
		}
		return resp
	}
	values := func(resp *kmsg.FetchResponse) []string {
		var out []string
		for _, tp := range resp.Topics {
			for i := range tp.Partitions {
				fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: topic, Partition: tp.Partitions[i].Partition},
					&tp.Partitions[i], kgo.DefaultDecompressor(), nil)
				for _, r := range fp.Records {
					out = append(out, string(r.Value))
				}
			}
		}
		return out
	}

	full := fetch(a, 0, 0, 0, true)
	if full.ErrorCode != 0 || full.SessionID == 0 || !slices.Contains(values(full), "acme-secret-1") {
		t.Fatalf("acme-sess full fetch: error %d, session %d, values %q", full.ErrorCode, full.SessionID, values(full))
	}
	sid := full.SessionID
	t.Logf("acme-sess opened fetch session %d on broker %d", sid, leader)
	produce("acme-secret-2")

	inc := fetch(b, sid, 1, 0, false)
	if v := values(inc); len(v) > 0 || inc.ErrorCode != 70 {
		t.Fatalf("globex-sess with acme-sess's session %d, epoch 1: error %d, values %q; want 70 and nothing", sid, inc.ErrorCode, v)
	}
	reopen := fetch(b, sid, 0, 0, false)
	if v := values(reopen); len(v) > 0 || reopen.ErrorCode != 0 || reopen.SessionID == sid {
		t.Fatalf("globex-sess with acme-sess's session id, epoch 0: error %d, session %d, values %q", reopen.ErrorCode, reopen.SessionID, v)
	}
	var denied bool
	for _, ev := range aud.all() {
		if ev.Type == audit.EventAuthzDecision && ev.Who != nil && ev.Who.Principal == "User:"+userB && ev.Outcome != nil &&
			ev.Outcome.Decision == audit.DecisionDeny && ev.Outcome.ErrorCode == 70 &&
			strings.Contains(strings.Join(ev.Outcome.Reasons, ";"), "not created by this connection") {
			denied = true
		}
	}
	if !denied {
		t.Fatal("no audit denial (70) for globex-sess's use of acme-sess's fetch session")
	}
	// The owner's session is intact and still serves the owner.
	deadline := time.Now().Add(30 * time.Second)
	for epoch := int32(1); ; epoch++ {
		own := fetch(a, sid, epoch, 0, false)
		if own.ErrorCode != 0 {
			t.Fatalf("acme-sess incremental fetch, epoch %d: error %d", epoch, own.ErrorCode)
		}
		if slices.Contains(values(own), "acme-secret-2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("acme-sess's session never served its new record")
		}
	}
}

// TestShareConsumerThroughKguard: a franz-go share consumer (KIP-932)
// reads and acknowledges through kguard on the real cluster: its share
// session is opened and used on one connection, which kguard lets it use.
func TestShareConsumerThroughKguard(t *testing.T) {
	const user = "acme-share"
	s := startStackWith(t, stackOpts{
		users: []string{user},
		acls: []harness.ACL{
			{Principal: "User:" + user, Host: "*", Resource: "Topic", Pattern: "PREFIXED", Name: "acme.", Operation: "All", Permission: "ALLOW"},
			{Principal: "User:" + user, Host: "*", Resource: "Group", Pattern: "PREFIXED", Name: "acme.", Operation: "All", Permission: "ALLOW"},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	direct, err := kgo.NewClient(kgo.SeedBrokers(s.kafka.Plaintext...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	run := randHex(t, 4)
	topic, group := "acme.share-"+run, "acme.sg-"+run
	adm := kadm.NewClient(direct)
	if res, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil || res.Err != nil {
		t.Fatalf("creating %s: %v %v", topic, err, res.Err)
	}
	t.Cleanup(func() {
		_, _ = adm.DeleteTopics(context.Background(), topic)
		_, _ = adm.DeleteGroup(context.Background(), group)
	})
	gc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rc := kmsg.NewIncrementalAlterConfigsRequestResource()
	rc.ResourceType, rc.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value = "share.auto.offset.reset", kmsg.StringPtr("earliest")
	rc.Configs = append(rc.Configs, cfg)
	gc.Resources = append(gc.Resources, rc)
	if resp, err := gc.RequestWith(ctx, direct); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Skipf("share groups not available on this cluster: %v %+v", err, resp)
	}
	want := map[string]bool{}
	for i := range 3 {
		v := fmt.Sprintf("share-%s-%d", run, i)
		want[v] = true
		if err := direct.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	var ackErrs []error
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.env.Bootstrap()),
		kgo.SASL(scram.Auth{User: user, Pass: s.passwords[user]}.AsSha512Mechanism()),
		kgo.ShareGroup(group), kgo.ConsumeTopics(topic),
		kgo.ShareAckCallback(func(_ *kgo.Client, res kgo.ShareAckResults) {
			for _, r := range res {
				if r.Err != nil {
					ackErrs = append(ackErrs, r.Err)
				}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("share consumer: %d of %d records before the deadline", len(got), len(want))
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("share fetch error: %v", fe.Err)
		}
		got = append(got, fs.Records()...)
	}
	for _, r := range got {
		if !want[string(r.Value)] {
			t.Fatalf("share consumer got %q", r.Value)
		}
	}
	cl.MarkAcks(kgo.AckAccept, got...)
	if err := cl.FlushAcks(ctx); err != nil || len(ackErrs) > 0 {
		t.Fatalf("acknowledging through kguard: %v %v", err, ackErrs)
	}
}
