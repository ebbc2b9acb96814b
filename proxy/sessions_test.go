package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
)

// sessionDenials returns the authz.decision denials with code for user.
func sessionDenials(e *azEnv, user string, code int16) []audit.Event {
	var out []audit.Event
	for _, ev := range e.events.of(audit.EventAuthzDecision) {
		if ev.Who.Principal == "User:"+user && ev.Outcome != nil && ev.Outcome.Decision == audit.DecisionDeny && ev.Outcome.ErrorCode == code {
			out = append(out, ev)
		}
	}
	return out
}

// A fetch session belongs to the connection that opened it: another
// principal (another tenant) naming its id gets nothing of it, and
// neither does the same principal on another connection. The owner's
// session keeps working.
func TestFetchSessionOwnership(t *testing.T) {
	e := startAzEnv(t)
	a := e.login(t, "acme-app")
	if resp := a.roundTrip(produceTo(9, -1, nil, []string{"acme-secret-1"}, "acme.t1")).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	full := fetchFrom(12, nil, "acme.t1")
	full.SessionID, full.SessionEpoch = 0, 0
	fresp := a.roundTrip(full).(*kmsg.FetchResponse)
	if fresp.ErrorCode != 0 || fresp.SessionID == 0 || len(fetchedValues(t, &fresp.Topics[0].Partitions[0])) == 0 {
		t.Fatalf("full fetch: error %d, session %d, topics %+v", fresp.ErrorCode, fresp.SessionID, fresp.Topics)
	}
	sid := fresp.SessionID
	// New data for the session's partition, which B must not see.
	if resp := a.roundTrip(produceTo(9, -1, nil, []string{"acme-secret-2"}, "acme.t1")).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	leaks := func(who string, resp *kmsg.FetchResponse) {
		t.Helper()
		for _, tp := range resp.Topics {
			for i := range tp.Partitions {
				if len(tp.Partitions[i].RecordBatches) > 0 {
					t.Fatalf("%s: got %d bytes of records of %q from session %d", who, len(tp.Partitions[i].RecordBatches), tp.Topic, sid)
				}
			}
		}
	}

	b := e.login(t, "globex-app")
	for _, epoch := range []int32{1, 7} {
		inc := fetchFrom(12, nil)
		inc.SessionID, inc.SessionEpoch = sid, epoch
		resp := b.roundTrip(inc).(*kmsg.FetchResponse)
		leaks("globex-app epoch "+itoa(epoch), resp)
		if resp.ErrorCode != 70 || len(resp.Topics) != 0 {
			t.Fatalf("globex-app on acme-app's session, epoch %d: error %d, %d topics; want 70 and none", epoch, resp.ErrorCode, len(resp.Topics))
		}
	}
	if d := sessionDenials(e, "globex-app", 70); len(d) != 2 || !strings.Contains(strings.Join(d[0].Outcome.Reasons, ";"), "not created by this connection") {
		t.Fatalf("audit: %d denials (70) for globex-app: %+v", len(d), d)
	}
	// Epoch 0 (a Java client restarting its session) and -1 (sessionless)
	// go on without the session id: a fresh session of B's own, and A's
	// session is not closed.
	for _, epoch := range []int32{0, -1} {
		req := fetchFrom(12, nil)
		req.SessionID, req.SessionEpoch = sid, epoch
		resp := b.roundTrip(req).(*kmsg.FetchResponse)
		leaks("globex-app epoch "+itoa(epoch), resp)
		if resp.ErrorCode != 0 || len(resp.Topics) != 0 || (resp.SessionID == sid) {
			t.Fatalf("globex-app epoch %d with acme-app's session id: error %d, session %d, %d topics", epoch, resp.ErrorCode, resp.SessionID, len(resp.Topics))
		}
	}
	// The same principal on another connection: not its session either.
	a2 := e.login(t, "acme-app")
	inc := fetchFrom(12, nil)
	inc.SessionID, inc.SessionEpoch = sid, 1
	if resp := a2.roundTrip(inc).(*kmsg.FetchResponse); resp.ErrorCode != 70 {
		leaks("acme-app on a second connection", resp)
		t.Fatalf("acme-app on a second connection: error %d, want 70", resp.ErrorCode)
	}
	// The owner still reads its session (incremental, naming nothing), and
	// the read is audited with the topic the session served.
	aresp := a.roundTrip(inc).(*kmsg.FetchResponse)
	if aresp.ErrorCode != 0 || len(aresp.Topics) != 1 || aresp.Topics[0].Topic != "acme.t1" {
		t.Fatalf("owner's incremental fetch: error %d, topics %+v", aresp.ErrorCode, aresp.Topics)
	}
	if v := fetchedValues(t, &aresp.Topics[0].Partitions[0]); len(v) == 0 || v[len(v)-1] != "acme-secret-2" {
		t.Fatalf("owner's incremental fetch: values %q", v)
	}
	served := func() int {
		n := 0
		for _, ev := range e.events.of(audit.EventAuthzDecision) {
			if ev.Who.Principal == "User:acme-app" && ev.What != nil && ev.What.ResourceName == "acme.t1" && ev.Outcome.Decision == audit.DecisionAllow &&
				strings.Contains(strings.Join(ev.Outcome.Reasons, ";"), "fetch session topics") {
				n++
			}
		}
		return n
	}
	if n := served(); n != 1 {
		t.Fatalf("audit: %d events name acme.t1 for the owner's session read, want 1", n)
	}
	// Once per connection, topic and policy revision: the next read from
	// the session is not a second event.
	if resp := a.roundTrip(produceTo(9, -1, nil, []string{"acme-secret-3"}, "acme.t1")).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	inc.SessionEpoch = 2
	if aresp := a.roundTrip(inc).(*kmsg.FetchResponse); aresp.ErrorCode != 0 || len(aresp.Topics) != 1 {
		t.Fatalf("owner's second incremental fetch: error %d, %d topics", aresp.ErrorCode, len(aresp.Topics))
	}
	if n := served(); n != 1 {
		t.Fatalf("audit: %d events name acme.t1 after a second session read, want still 1", n)
	}
}

// shareFetcher is one raw share-group member on one connection.
type shareFetcher struct {
	r      *raw
	group  string
	member string
	epoch  int32
	ver    int16
}

func newShareFetcher(t *testing.T, r *raw, group, member string, topics ...string) *shareFetcher {
	t.Helper()
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.SetVersion(maxVersion(t, r, 76))
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = group, member, topics
	if resp := r.roundTrip(hb).(*kmsg.ShareGroupHeartbeatResponse); resp.ErrorCode != 0 {
		t.Fatalf("ShareGroupHeartbeat: error %d %v", resp.ErrorCode, strPtr(resp.ErrorMessage))
	}
	return &shareFetcher{r: r, group: group, member: member, ver: maxVersion(t, r, 78)}
}

// request is the next ShareFetch of the session naming topics (by id).
func (s *shareFetcher) request(ids ...[16]byte) *kmsg.ShareFetchRequest {
	sf := kmsg.NewPtrShareFetchRequest()
	sf.SetVersion(s.ver)
	sf.GroupID, sf.MemberID, sf.ShareSessionEpoch = kmsg.StringPtr(s.group), kmsg.StringPtr(s.member), s.epoch
	sf.MaxWaitMillis, sf.MaxBytes, sf.MaxRecords, sf.BatchSize = 50, 1<<20, 100, 100
	for _, id := range ids {
		tp := kmsg.NewShareFetchRequestTopic()
		tp.TopicID = id
		pp := kmsg.NewShareFetchRequestTopicPartition()
		pp.PartitionMaxBytes = 1 << 20
		tp.Partitions = append(tp.Partitions, pp)
		sf.Topics = append(sf.Topics, tp)
	}
	return sf
}

// fetchUntil share-fetches id (named in the first request only) until a
// partition has records or an error, and returns that partition.
func (s *shareFetcher) fetchUntil(t *testing.T, id [16]byte) kmsg.ShareFetchResponseTopicPartition {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var req *kmsg.ShareFetchRequest
		if s.epoch == 0 {
			req = s.request(id)
		} else {
			req = s.request()
		}
		resp := s.r.roundTrip(req).(*kmsg.ShareFetchResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("ShareFetch epoch %d: error %d %v", s.epoch, resp.ErrorCode, strPtr(resp.ErrorMessage))
		}
		s.epoch++
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if tp.TopicID == id && (p.ErrorCode != 0 || len(p.Records) > 0) {
					return p
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("ShareFetch: no records before the deadline")
	return kmsg.ShareFetchResponseTopicPartition{}
}

func shareValues(t *testing.T, p *kmsg.ShareFetchResponseTopicPartition) []string {
	t.Helper()
	fp := kmsg.NewFetchResponseTopicPartition()
	fp.Partition, fp.RecordBatches = p.Partition, p.Records
	return fetchedValues(t, &fp)
}

// ShareFetch returns records as Fetch does, so its records go through data
// protection as Fetch's: decrypted for a principal who may decrypt,
// withheld (with the data.protection event) on a bad signature under
// on_bad_signature: fail.
func TestShareFetchDataProtection(t *testing.T) {
	e := startProtEnv(t, protOpts{})
	for _, g := range []string{"sg-pay", "sg-fail"} {
		e.Cluster.SetGroupConfigs(g, map[string]string{"share.auto.offset.reset": "earliest"})
	}
	cl := e.client(t, "alice")
	produceAll(t, cl, pr("pay", 1), pr("payfail", 1), pr("payfail", 2))
	alice := loginRaw(t, e, "alice")
	ids := topicIDs(t, alice, "pay", "payfail")

	sf := newShareFetcher(t, alice, "sg-pay", "alice-share-member-01", "pay")
	p := sf.fetchUntil(t, ids["pay"])
	if v := shareValues(t, &p); p.ErrorCode != 0 || len(v) != 1 || v[0] != string(payment(1)) {
		t.Fatalf("ShareFetch pay as alice: error %d, values %.80q; want the decrypted record", p.ErrorCode, v)
	}

	// Tamper with the second payfail record behind kguard's back.
	stored := consume(t, func(o ...kgo.Opt) *kgo.Client { return e.direct(t, o...) }, "payfail", 2)
	forged := &kgo.Record{Topic: "payfail", Key: stored[1].Key, Headers: stored[1].Headers,
		Value: bytes.Replace(stored[1].Value, []byte(`"amount": 12.50`), []byte(`"amount": 2.50`), 1)}
	produceAll(t, e.direct(t), forged)
	sf = newShareFetcher(t, alice, "sg-fail", "alice-share-member-02", "payfail")
	p = sf.fetchUntil(t, ids["payfail"])
	if p.ErrorCode != 2 || len(p.Records) != 0 || len(p.AcquiredRecords) != 0 {
		t.Fatalf("ShareFetch payfail: error %d, %d record bytes, %d acquired ranges; want 2 and nothing", p.ErrorCode, len(p.Records), len(p.AcquiredRecords))
	}
	if !hasProtectionEvent(e.events, "fetch", audit.DecisionDeny, 2, "payfail/0: partition withheld (2); signature: crypto: integrity check failed: record 0: signature bad: format 2 batch without its context (first record)") {
		t.Fatalf("no data.protection event for the withheld share partition: %+v", protectionReasons(e.events))
	}
}

// A share session belongs to the connection that opened it: another
// principal naming the same group and member id cannot fetch from it,
// acknowledge through it or close it.
func TestShareSessionOwnership(t *testing.T) {
	e := startProtEnv(t, protOpts{})
	e.Cluster.SetGroupConfigs("sg-own", map[string]string{"share.auto.offset.reset": "earliest"})
	produceAll(t, e.client(t, "alice"), pr("plain", 1))
	alice := loginRaw(t, e, "alice")
	ids := topicIDs(t, alice, "plain")
	sf := newShareFetcher(t, alice, "sg-own", "alice-share-member-03", "plain")
	if p := sf.fetchUntil(t, ids["plain"]); p.ErrorCode != 0 || len(p.Records) == 0 {
		t.Fatalf("owner's share fetch: error %d", p.ErrorCode)
	}
	produceAll(t, e.client(t, "alice"), pr("plain", 2))

	bob := loginRaw(t, e, "bob")
	rider := &shareFetcher{r: bob, group: "sg-own", member: "alice-share-member-03", ver: sf.ver}
	for _, epoch := range []int32{sf.epoch, -1, 0} {
		rider.epoch = epoch
		resp := bob.roundTrip(rider.request()).(*kmsg.ShareFetchResponse)
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if len(p.Records) > 0 || len(p.AcquiredRecords) > 0 {
					t.Fatalf("bob riding alice's share session (epoch %d) got records", epoch)
				}
			}
		}
		if resp.ErrorCode != 122 {
			t.Fatalf("bob riding (or reopening) alice's share session (epoch %d): error %d, want 122", epoch, resp.ErrorCode)
		}
	}
	ack := kmsg.NewPtrShareAcknowledgeRequest()
	ack.SetVersion(maxVersion(t, bob, 79))
	ack.GroupID, ack.MemberID, ack.ShareSessionEpoch = kmsg.StringPtr("sg-own"), kmsg.StringPtr("alice-share-member-03"), sf.epoch
	at := kmsg.NewShareAcknowledgeRequestTopic()
	at.TopicID = ids["plain"]
	ap := kmsg.NewShareAcknowledgeRequestTopicPartition()
	ab := kmsg.NewShareAcknowledgeRequestTopicPartitionAcknowledgementBatch()
	ab.FirstOffset, ab.LastOffset, ab.AcknowledgeTypes = 0, 0, []int8{3} // reject
	ap.AcknowledgementBatches = append(ap.AcknowledgementBatches, ab)
	at.Partitions = append(at.Partitions, ap)
	ack.Topics = append(ack.Topics, at)
	if resp := bob.roundTrip(ack).(*kmsg.ShareAcknowledgeResponse); resp.ErrorCode != 122 {
		t.Fatalf("bob acknowledging through alice's share session: error %d, want 122", resp.ErrorCode)
	}
	var denials int
	for _, ev := range e.events.of(audit.EventAuthzDecision) {
		if ev.Who.Principal == "User:bob" && ev.Outcome.Decision == audit.DecisionDeny && ev.Outcome.ErrorCode == 122 {
			denials++
		}
	}
	if denials != 4 {
		t.Fatalf("audit: %d denials (122) for bob, want 4", denials)
	}
	// The owner's session is intact.
	if p := sf.fetchUntil(t, ids["plain"]); p.ErrorCode != 0 || len(p.Records) == 0 {
		t.Fatalf("owner's share fetch after the attempts: error %d", p.ErrorCode)
	}
	// Once alice's connection is gone, the member id may be opened again.
	alice.c.Close()
	rider.epoch = 0
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := bob.roundTrip(rider.request(ids["plain"])).(*kmsg.ShareFetchResponse)
		if resp.ErrorCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reopening the member id after its connection closed: error %d", resp.ErrorCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A franz-go share consumer through kguard: its ShareFetch and
// ShareAcknowledge share one connection, so the session ownership never
// gets in its way; alice gets the produced bytes back (decrypted), bob the
// stored ciphertext; explicit acknowledgements succeed.
func TestShareConsumerThroughKguard(t *testing.T) {
	e := startProtEnv(t, protOpts{})
	for _, g := range []string{"sg-alice", "sg-bob"} {
		e.Cluster.SetGroupConfigs(g, map[string]string{"share.auto.offset.reset": "earliest"})
	}
	produceAll(t, e.client(t, "alice"), pr("pay", 1), pr("pay", 2), pr("pay", 3))
	read := func(user, group string) []*kgo.Record {
		t.Helper()
		var ackErrs []error
		cl := e.client(t, user, kgo.ShareGroup(group), kgo.ConsumeTopics("pay"),
			kgo.ShareAckCallback(func(_ *kgo.Client, res kgo.ShareAckResults) {
				for _, r := range res {
					if r.Err != nil {
						ackErrs = append(ackErrs, r.Err)
					}
				}
			}))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		var out []*kgo.Record
		for len(out) < 3 {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%s: %d of 3 records before the deadline", user, len(out))
			}
			for _, fe := range fs.Errors() {
				t.Fatalf("%s: share fetch error: %v", user, fe.Err)
			}
			out = append(out, fs.Records()...)
		}
		cl.MarkAcks(kgo.AckAccept, out...)
		if err := cl.FlushAcks(ctx); err != nil {
			t.Fatalf("%s: acknowledging: %v", user, err)
		}
		if len(ackErrs) > 0 {
			t.Fatalf("%s: acknowledgement errors: %v", user, ackErrs)
		}
		return out
	}
	for _, r := range read("alice", "sg-alice") {
		var id int
		if _, err := fmt.Sscanf(string(r.Key), "k%d", &id); err != nil || !bytes.Equal(r.Value, payment(id)) {
			t.Fatalf("alice's share consumer got %.80q for key %s, want the produced record", r.Value, r.Key)
		}
	}
	for _, r := range read("bob", "sg-bob") {
		if bytes.Contains(r.Value, []byte("4111-1111-1111-")) {
			t.Fatalf("bob's share consumer got the card in clear: %.120q", r.Value)
		}
	}
}
