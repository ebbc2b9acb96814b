package adversarial_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
)

// Fetch and share sessions (issue 10, findings 1 and 6): what a principal
// receives through a session must be authorized for that principal, and
// records returned by ShareFetch go through data protection as Fetch's.

// sessionFetch is a Fetch v12 (topics by name) on session/epoch, naming
// partition 0 of topic from offset 0 when topic is set.
func sessionFetch(session, epoch int32, topic string) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 100, 1<<20
	req.SessionID, req.SessionEpoch = session, epoch
	if topic != "" {
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = topic
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, -1
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
	}
	return req
}

func fetchValues(topic string, resp *kmsg.FetchResponse) []string {
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

func mustFetch(t *testing.T, rc *rawConn, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	resp, err := rc.send(req)
	if err != nil {
		t.Fatalf("fetch (session %d, epoch %d): %v", req.SessionID, req.SessionEpoch, err)
	}
	return resp.(*kmsg.FetchResponse)
}

// TestFetchSessionRide: acme opens an incremental fetch session on
// acme.orders; globex, on its own connection to the same broker, names
// acme's session id. Epoch > 0 is answered FETCH_SESSION_ID_NOT_FOUND with
// no records and audited; epoch 0 and -1 go on without the id (a session
// of globex's own, nothing of acme's); acme on a second connection cannot
// use it either; acme's session keeps serving acme. On the real cluster
// the session id is Kafka's random 31-bit number.
func TestFetchSessionRide(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			a := attack(t, s, "ride another tenant's fetch session by its id")
			topic := "acme.fs-" + randHex(4)
			direct := newAcmeTopic(t, s, topic, "acme-fetch-secret")
			addr := s.leaderOf(t, topic, 0)
			owner := s.login(t, acme, addr)
			full := mustFetch(t, owner, sessionFetch(0, 0, topic))
			if full.ErrorCode != 0 || full.SessionID == 0 || len(fetchValues(topic, full)) == 0 {
				t.Fatalf("acme's full fetch: error %d, session %d", full.ErrorCode, full.SessionID)
			}
			sid := full.SessionID
			a.Sent("User:%s Fetch v12 session 0 epoch 0 %s[0] -> session %d", acme, topic, sid)
			if err := direct.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: 0, Value: []byte("acme-fetch-secret-new")}).FirstErr(); err != nil {
				t.Fatalf("producing to %s: %v", topic, err)
			}

			rider := s.login(t, globex, addr)
			for _, epoch := range []int32{1, 2} {
				resp := mustFetch(t, rider, sessionFetch(sid, epoch, ""))
				v := fetchValues(topic, resp)
				a.Sent("User:%s Fetch v12 session %d epoch %d, no topics", globex, sid, epoch)
				a.Got("%v, %d topics, %d records", kerr.ErrorForCode(resp.ErrorCode), len(resp.Topics), len(v))
				if len(v) > 0 || resp.ErrorCode != kerr.FetchSessionIDNotFound.Code || len(resp.Topics) != 0 {
					t.Fatalf("globex on acme's session (epoch %d): error %d, %d topics, %d records: %.200q", epoch, resp.ErrorCode, len(resp.Topics), len(v), v)
				}
			}
			for _, epoch := range []int32{0, -1} {
				resp := mustFetch(t, rider, sessionFetch(sid, epoch, ""))
				v := fetchValues(topic, resp)
				a.Sent("User:%s Fetch v12 session %d epoch %d, no topics", globex, sid, epoch)
				a.Got("%v, session %d, %d topics, %d records", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, len(resp.Topics), len(v))
				if len(v) > 0 || len(resp.Topics) != 0 || resp.SessionID == sid {
					t.Fatalf("globex with acme's session id (epoch %d): error %d, session %d, records %q", epoch, resp.ErrorCode, resp.SessionID, v)
				}
			}
			second := s.login(t, acme, addr)
			resp := mustFetch(t, second, sessionFetch(sid, 1, ""))
			a.Sent("User:%s (second connection) Fetch v12 session %d epoch 1", acme, sid)
			a.Got("%v", kerr.ErrorForCode(resp.ErrorCode))
			if resp.ErrorCode != kerr.FetchSessionIDNotFound.Code || len(fetchValues(topic, resp)) > 0 {
				t.Fatalf("acme's second connection on the first one's session: error %d", resp.ErrorCode)
			}
			own := mustFetch(t, owner, sessionFetch(sid, 1, ""))
			if own.ErrorCode != 0 {
				t.Fatalf("acme's own incremental fetch after the attempts: error %d", own.ErrorCode)
			}
			a.Got("acme's own session still answers (%v)", kerr.ErrorForCode(own.ErrorCode))
			ev := s.waitAudit(t, "denying globex's use of acme's fetch session", denial(globex, "Fetch", "not created by this connection"))
			a.Got("audited: %s %s deny %d %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.ErrorCode, ev.Outcome.Reasons)
			if ev.Outcome.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("audit event code %d, want 70", ev.Outcome.ErrorCode)
			}
		})
	}
}

// newAcmeTopic creates topic (3 partitions) straight on the cluster and
// writes n records prefix-<i> to its partition 0; it returns the direct
// client (manual partitioning). Cases use topics of their own: the seed
// topics carry what other cases left (open transactions, records on any
// partition).
func newAcmeTopic(t *testing.T, s *stack, topic, prefix string) *kgo.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	direct := s.directClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := createTopics(ctx, direct, topic); err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
	for i := range 3 {
		if err := direct.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}).FirstErr(); err != nil {
			t.Fatalf("producing to %s: %v", topic, err)
		}
	}
	return direct
}

// shareFromEarliest makes group's share partitions start at the log start
// (share.auto.offset.reset, a group config), on kfake and on Kafka alike.
func shareFromEarliest(t *testing.T, s *stack, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rc := kmsg.NewIncrementalAlterConfigsRequestResource()
	rc.ResourceType, rc.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value = "share.auto.offset.reset", kmsg.StringPtr("earliest")
	rc.Configs = append(rc.Configs, cfg)
	req.Resources = append(req.Resources, rc)
	resp, err := req.RequestWith(ctx, s.directClient(t))
	if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("setting share.auto.offset.reset on %s: %v %+v", group, err, resp)
	}
}

// shareMember is one raw share-group member.
type shareMember struct {
	rc            *rawConn
	group, member string
	epoch         int32
}

// coordinatorOf is kguard's listener for group's coordinator. On a
// cluster that has just started the coordinators may not be available
// yet (a retriable error): it asks again for up to a minute.
func (s *stack) coordinatorOf(t *testing.T, group string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(s.directClient(t))
	var c kadm.FindCoordinatorResponse
	for {
		var ok bool
		c, ok = adm.FindGroupCoordinators(ctx, group)[group]
		if ok && c.Err == nil {
			break
		}
		if !ok || !kerr.IsRetriable(c.Err) || ctx.Err() != nil {
			t.Fatalf("coordinator of %s: %v", group, c.Err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	addr, ok := s.brokerAddr[c.NodeID]
	if !ok {
		t.Fatalf("kguard has no listener for node %d", c.NodeID)
	}
	return addr
}

// heartbeat joins the member to its share group through a connection of
// user to the group's coordinator and heartbeats until it is assigned
// partitions; it returns the first error code.
func (m *shareMember) heartbeat(t *testing.T, s *stack, user string, topics ...string) int16 {
	t.Helper()
	rc := s.login(t, user, s.coordinatorOf(t, m.group))
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.SetVersion(1)
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = m.group, m.member, topics
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := rc.send(hb)
		if err != nil {
			t.Fatalf("ShareGroupHeartbeat: %v", err)
		}
		r := resp.(*kmsg.ShareGroupHeartbeatResponse)
		if r.ErrorCode != 0 {
			return r.ErrorCode
		}
		if r.Assignment != nil && len(r.Assignment.TopicPartitions) > 0 {
			return 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("share member %s was assigned nothing", m.member)
		}
		hb.MemberEpoch, hb.SubscribedTopicNames = r.MemberEpoch, nil
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *shareMember) fetch(t *testing.T, id [16]byte, partition int32, named bool) *kmsg.ShareFetchResponse {
	t.Helper()
	sf := kmsg.NewPtrShareFetchRequest()
	sf.SetVersion(1)
	sf.GroupID, sf.MemberID, sf.ShareSessionEpoch = kmsg.StringPtr(m.group), kmsg.StringPtr(m.member), m.epoch
	sf.MaxWaitMillis, sf.MaxBytes, sf.MaxRecords, sf.BatchSize = 100, 1<<20, 500, 500
	if named {
		tp := kmsg.NewShareFetchRequestTopic()
		tp.TopicID = id
		pp := kmsg.NewShareFetchRequestTopicPartition()
		pp.Partition, pp.PartitionMaxBytes = partition, 1<<20
		tp.Partitions = append(tp.Partitions, pp)
		sf.Topics = append(sf.Topics, tp)
	}
	resp, err := m.rc.send(sf)
	if err != nil {
		t.Fatalf("ShareFetch: %v", err)
	}
	return resp.(*kmsg.ShareFetchResponse)
}

func shareRecordValues(topic string, resp *kmsg.ShareFetchResponse) ([]string, int16) {
	var out []string
	var code int16
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if p.ErrorCode != 0 {
				code = p.ErrorCode
			}
			fp := kmsg.NewFetchResponseTopicPartition()
			fp.Partition, fp.RecordBatches = p.Partition, p.Records
			r, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: topic, Partition: p.Partition}, &fp, kgo.DefaultDecompressor(), nil)
			for _, rec := range r.Records {
				out = append(out, string(rec.Value))
			}
		}
	}
	return out, code
}

func topicID(t *testing.T, rc *rawConn, topic string) [16]byte {
	t.Helper()
	md, err := rc.metadata([]string{topic})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	return md.Topics[0].TopicID
}

// TestShareFetchDataProtection: acme.payments is protected (card
// encrypted, signed, decrypt for acme-app only, unsigned or bad records
// dropped). acme-app reads it through a share group: the record produced
// through kguard comes back decrypted, the record written around kguard
// (unsigned) is dropped, and a data.protection event names the topic, as
// for Fetch.
func TestShareFetchDataProtection(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) { testShareFetchDataProtection(t, s) })
	}
}

func testShareFetchDataProtection(t *testing.T, s *stack) {
	a := attack(t, s, "read a protected topic through a share group")
	group := "acme.sg-" + randHex(4)
	shareFromEarliest(t, s, group)
	run := randHex(4)
	want := fmt.Sprintf(`{"secret":"share-%s","card":"4111111111111111"}`, run)
	unsigned := fmt.Sprintf(`{"secret":"unsigned-%s","card":"4111111111111111"}`, run)
	p := s.client(t, acme, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Written around kguard: not signed.
	direct := s.directClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := direct.ProduceSync(ctx, &kgo.Record{Topic: "acme.payments", Partition: 0, Value: []byte(unsigned)}).FirstErr(); err != nil {
		t.Fatalf("producing around kguard: %v", err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "acme.payments", Partition: 0, Value: []byte(want)}).FirstErr(); err != nil {
		t.Fatalf("producing through kguard: %v", err)
	}
	rc := s.login(t, acme, s.leaderOf(t, "acme.payments", 0))
	id := topicID(t, rc, "acme.payments")
	m := &shareMember{rc: rc, group: group, member: "acme-member-" + randHex(6)}
	if code := m.heartbeat(t, s, acme, "acme.payments"); code != 0 {
		t.Fatalf("ShareGroupHeartbeat: %v", kerr.ErrorForCode(code))
	}
	a.Sent("User:%s ShareFetch v1 group %s acme.payments[0] from the earliest offset", acme, group)
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Contains(got, want) {
		resp := m.fetch(t, id, 0, m.epoch == 0)
		if resp.ErrorCode != 0 {
			t.Fatalf("ShareFetch: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		m.epoch++
		v, code := shareRecordValues("acme.payments", resp)
		if code != 0 {
			t.Fatalf("ShareFetch partition error %v", kerr.ErrorForCode(code))
		}
		got = append(got, v...)
		if time.Now().After(deadline) {
			t.Fatalf("the record produced through kguard never came back decrypted; got %.200q", got)
		}
	}
	a.Got("%d records, the one produced through kguard decrypted: %.120q", len(got), want)
	if slices.Contains(got, unsigned) {
		t.Fatalf("share consumer got the unsigned record %q; on_bad_signature: drop", unsigned)
	}
	ev := s.waitAudit(t, "data.protection for the share fetch", func(ev audit.Event) bool {
		return ev.Type == audit.EventDataProtection && denial(acme, "ShareFetch", "acme.payments")(ev)
	})
	a.Got("audited: %s %s %s %v", ev.Type, ev.What.APIName, ev.Outcome.Decision, ev.Outcome.Reasons)
	if !strings.Contains(strings.Join(ev.Outcome.Reasons, ";"), "without a signature (drop)") {
		t.Fatalf("data.protection reasons %q", ev.Outcome.Reasons)
	}
}

// TestShareSessionRide: a share session is keyed on the broker by group
// and member id, which anyone may name. acme's second connection (same
// principal, same group rights) naming the first connection's member id
// cannot fetch from, acknowledge through, close or reopen that share
// session: SHARE_SESSION_NOT_FOUND, audited; so is globex naming it.
func TestShareSessionRide(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) { testShareSessionRide(t, s) })
	}
}

func testShareSessionRide(t *testing.T, s *stack) {
	a := attack(t, s, "ride another connection's share session by group and member id")
	group := "acme.sg-" + randHex(4)
	shareFromEarliest(t, s, group)
	topic := "acme.sr-" + randHex(4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	direct := newAcmeTopic(t, s, topic, "acme-share")
	addr := s.leaderOf(t, topic, 0)
	owner := &shareMember{rc: s.login(t, acme, addr), group: group, member: "acme-member-" + randHex(6)}
	id := topicID(t, owner.rc, topic)
	if code := owner.heartbeat(t, s, acme, topic); code != 0 {
		t.Fatalf("ShareGroupHeartbeat: %v", kerr.ErrorForCode(code))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp := owner.fetch(t, id, 0, owner.epoch == 0)
		if resp.ErrorCode != 0 {
			t.Fatalf("the owner's ShareFetch (epoch %d): %v", owner.epoch, kerr.ErrorForCode(resp.ErrorCode))
		}
		owner.epoch++
		v, code := shareRecordValues(topic, resp)
		if len(v) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the owner's share session returned no records (partition error %v)", kerr.ErrorForCode(code))
		}
	}
	a.Sent("User:%s opened share session %s/%s", acme, group, owner.member)
	for i := range 2 { // news for the session
		if err := direct.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("acme-share-new-%d", i))}).FirstErr(); err != nil {
			t.Fatalf("producing to %s: %v", topic, err)
		}
	}

	rider := &shareMember{rc: s.login(t, acme, addr), group: group, member: owner.member}
	for _, epoch := range []int32{owner.epoch, -1, 0} {
		rider.epoch = epoch
		resp := rider.fetch(t, id, 0, epoch == 0)
		v, _ := shareRecordValues(topic, resp)
		a.Sent("User:%s (another connection) ShareFetch epoch %d with the owner's member id", acme, epoch)
		a.Got("%v, %d records", kerr.ErrorForCode(resp.ErrorCode), len(v))
		if resp.ErrorCode != kerr.ShareSessionNotFound.Code || len(v) > 0 {
			t.Fatalf("ShareFetch on another connection's share session (epoch %d): error %d, %d records", epoch, resp.ErrorCode, len(v))
		}
	}
	ack := kmsg.NewPtrShareAcknowledgeRequest()
	ack.SetVersion(1)
	ack.GroupID, ack.MemberID, ack.ShareSessionEpoch = kmsg.StringPtr(group), kmsg.StringPtr(owner.member), owner.epoch
	at := kmsg.NewShareAcknowledgeRequestTopic()
	at.TopicID = id
	ap := kmsg.NewShareAcknowledgeRequestTopicPartition()
	ab := kmsg.NewShareAcknowledgeRequestTopicPartitionAcknowledgementBatch()
	ab.FirstOffset, ab.LastOffset, ab.AcknowledgeTypes = 0, 0, []int8{3}
	ap.AcknowledgementBatches = append(ap.AcknowledgementBatches, ab)
	at.Partitions = append(at.Partitions, ap)
	ack.Topics = append(ack.Topics, at)
	resp, err := rider.rc.send(ack)
	if err != nil {
		t.Fatalf("ShareAcknowledge: %v", err)
	}
	a.Sent("User:%s (another connection) ShareAcknowledge reject offset 0 with the owner's member id", acme)
	a.Got("%v", kerr.ErrorForCode(resp.(*kmsg.ShareAcknowledgeResponse).ErrorCode))
	if code := resp.(*kmsg.ShareAcknowledgeResponse).ErrorCode; code != kerr.ShareSessionNotFound.Code {
		t.Fatalf("ShareAcknowledge through another connection's share session: error %d", code)
	}
	other := &shareMember{rc: s.login(t, globex, addr), group: group, member: owner.member, epoch: owner.epoch}
	gresp := other.fetch(t, id, 0, false)
	a.Sent("User:%s ShareFetch with acme's group and member id", globex)
	a.Got("%v", kerr.ErrorForCode(gresp.ErrorCode))
	if v, _ := shareRecordValues(topic, gresp); len(v) > 0 || gresp.ErrorCode == 0 {
		t.Fatalf("globex on acme's share session: error %d, %d records", gresp.ErrorCode, len(v))
	}
	if r := owner.fetch(t, id, 0, false); r.ErrorCode != 0 {
		t.Fatalf("the owner's share session after the attempts: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	ev := s.waitAudit(t, "denying the share session ride", denial(acme, "ShareAcknowledge", "not opened by this connection"))
	a.Got("audited: %s %s deny %d %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.ErrorCode, ev.Outcome.Reasons)
	s.waitAudit(t, "denying the share fetch ride", denial(acme, "ShareFetch", "not opened by this connection"))
}
