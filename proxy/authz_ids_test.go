package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
)

// deniedFor finds the denied authorization event of principal on api whose
// resource or reasons name want.
func deniedFor(e *azEnv, principal string, api int16, want string) *audit.Event {
	evs := e.events.of(audit.EventAuthzDecision)
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		if ev.Who == nil || ev.What == nil || ev.Outcome == nil || ev.Who.Principal != principal ||
			ev.What.APIKey != api || ev.Outcome.Decision != audit.DecisionDeny {
			continue
		}
		if strings.Contains(ev.What.ResourceName+" "+strings.Join(ev.Outcome.Reasons, " "), want) {
			return &ev
		}
	}
	return nil
}

// TestNamesIDsCursors: what a principal receives is authorized however the
// request named it (issue 10, finding 2 and its class). alice may Describe
// orders and ro, not secret.
func TestNamesIDsCursors(t *testing.T) {
	e := startAzEnv(t)
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	td, err := kadm.NewClient(direct).ListTopics(ctx, "orders", "secret")
	if err != nil {
		t.Fatal(err)
	}
	secretID, ordersID := td["secret"].ID, td["orders"].ID

	t.Run("MetadataAllowedNameForbiddenID", func(t *testing.T) {
		r := e.login(t, "alice")
		for _, v := range []int16{12, maxVersion(t, r, 3)} {
			md := kmsg.NewPtrMetadataRequest()
			md.SetVersion(v)
			md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("orders"), TopicID: secretID}}
			resp := r.roundTrip(md).(*kmsg.MetadataResponse)
			if len(resp.Topics) != 1 {
				t.Fatalf("v%d: %d topics in the answer: %+v", v, len(resp.Topics), resp.Topics)
			}
			tp := resp.Topics[0]
			if tp.ErrorCode != 29 || len(tp.Partitions) != 0 || (tp.Topic != nil && *tp.Topic == "secret") {
				t.Fatalf("v%d: orders' name with secret's id answered %q error %d with %d partitions, want 29 and nothing of secret",
					v, strPtr(tp.Topic), tp.ErrorCode, len(tp.Partitions))
			}
			if ev := deniedFor(e, "User:alice", 3, "secret"); ev == nil {
				t.Fatalf("v%d: no audited Metadata denial naming secret", v)
			}
		}
	})
	t.Run("MetadataMixedNameAndID", func(t *testing.T) {
		r := e.login(t, "alice")
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(12)
		md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("ro"), TopicID: ordersID}, {TopicID: secretID}}
		resp := r.roundTrip(md).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 2 {
			t.Fatalf("%d topics: %+v", len(resp.Topics), resp.Topics)
		}
		// The first entry is the id's topic, orders, answered by the broker.
		if got := resp.Topics[0]; got.ErrorCode != 0 || strPtr(got.Topic) != "orders" || got.TopicID != ordersID || len(got.Partitions) != 3 {
			t.Fatalf("ro's name with orders' id: %q error %d, %d partitions", strPtr(got.Topic), got.ErrorCode, len(got.Partitions))
		}
		if got := resp.Topics[1]; got.ErrorCode != 29 || got.Topic != nil || got.TopicID != secretID || len(got.Partitions) != 0 {
			t.Fatalf("secret by id: %q error %d, %d partitions", strPtr(got.Topic), got.ErrorCode, len(got.Partitions))
		}
	})
	t.Run("DeleteTopicsAllowedNameForbiddenID", func(t *testing.T) {
		r := e.login(t, "alice")
		dt := kmsg.NewPtrDeleteTopicsRequest()
		dt.SetVersion(maxVersion(t, r, 20))
		if dt.Version < 6 {
			t.Skipf("DeleteTopics v%d has no topic ids", dt.Version)
		}
		dt.TimeoutMillis = 5000
		dt.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("orders"), TopicID: secretID}}
		resp := r.roundTrip(dt).(*kmsg.DeleteTopicsResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 29 {
			t.Fatalf("delete orders' name with secret's id: %+v", resp.Topics)
		}
		left, err := kadm.NewClient(direct).ListTopics(ctx, "secret", "orders")
		if err != nil {
			t.Fatal(err)
		}
		if !left.Has("secret") || !left.Has("orders") {
			t.Fatalf("topics left after the denied delete: %v", left.Names())
		}
		if ev := deniedFor(e, "User:alice", 20, "secret"); ev == nil {
			t.Fatal("no audited DeleteTopics denial naming secret")
		}
	})
	t.Run("ConsumerGroupHeartbeatSubscriptions", func(t *testing.T) {
		r := e.login(t, "alice")
		hb := func(names []string, regex *string) *kmsg.ConsumerGroupHeartbeatResponse {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.SetVersion(maxVersion(t, r, 68))
			req.Group, req.RebalanceTimeoutMillis = "g-alice", 30000
			req.SubscribedTopicNames = names
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			if req.Version >= 1 {
				req.SubscribedTopicRegex = regex
			}
			return r.roundTrip(req).(*kmsg.ConsumerGroupHeartbeatResponse)
		}
		if got := hb([]string{"orders", "secret"}, nil); got.ErrorCode != 29 || got.Assignment != nil {
			t.Fatalf("subscribing to secret by name: error %d, assignment %+v", got.ErrorCode, got.Assignment)
		}
		if deniedFor(e, "User:alice", 68, "secret") == nil {
			t.Fatal("no audited ConsumerGroupHeartbeat denial naming secret")
		}
		if got := hb([]string{"orders"}, nil); got.ErrorCode != 0 {
			t.Fatalf("subscribing to orders: error %d %s", got.ErrorCode, strPtr(got.ErrorMessage))
		}
		if maxVersion(t, r, 68) >= 1 {
			if got := hb(nil, kmsg.StringPtr("sec.*")); got.ErrorCode != 29 || got.Assignment != nil {
				t.Fatalf("subscribing by regex: error %d, assignment %+v", got.ErrorCode, got.Assignment)
			}
			if deniedFor(e, "User:alice", 68, "regex") == nil {
				t.Fatal("no audited ConsumerGroupHeartbeat denial of the regex")
			}
		}
	})
	// A group description shows member subscriptions and assignments:
	// a group naming a topic the principal may not Describe is answered
	// as Kafka 4 does, 29 and no members.
	t.Run("ConsumerGroupDescribeHidesForeignTopics", func(t *testing.T) {
		r := e.login(t, "alice")
		describe := func() kmsg.ConsumerGroupDescribeResponseGroup {
			req := kmsg.NewPtrConsumerGroupDescribeRequest()
			req.SetVersion(maxVersion(t, r, 69))
			req.Groups, req.IncludeAuthorizedOperations = []string{"g-alice"}, true
			resp := r.roundTrip(req).(*kmsg.ConsumerGroupDescribeResponse)
			if len(resp.Groups) != 1 {
				t.Fatalf("%d groups", len(resp.Groups))
			}
			return resp.Groups[0]
		}
		join := func(r *raw, names ...string) {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.SetVersion(maxVersion(t, r, 68))
			req.Group, req.RebalanceTimeoutMillis = "g-alice", 30000
			req.SubscribedTopicNames, req.Topics = names, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			if got := r.roundTrip(req).(*kmsg.ConsumerGroupHeartbeatResponse); got.ErrorCode != 0 {
				t.Fatalf("joining g-alice with %q: error %d", names, got.ErrorCode)
			}
		}
		join(r, "orders")
		if g := describe(); g.ErrorCode != 0 || len(g.Members) == 0 {
			t.Fatalf("g-alice with orders only: error %d, %d members", g.ErrorCode, len(g.Members))
		}
		join(e.login(t, "admin"), "secret") // a super user's member subscribes to secret
		g := describe()
		for _, m := range g.Members {
			if contains(m.SubscribedTopics, "secret") {
				t.Fatalf("alice sees a member subscribed to secret: %+v", m)
			}
		}
		if g.ErrorCode != 29 || len(g.Members) != 0 {
			t.Fatalf("g-alice naming secret: error %d, %d members", g.ErrorCode, len(g.Members))
		}
		if deniedFor(e, "User:alice", 69, "Topic names hidden") == nil {
			t.Fatal("no audited filter decision for the hidden group")
		}
	})
	// DescribeShareGroupOffsets with null topics lists every topic the
	// share group has offsets for: only those alice may Describe are
	// shown; a named one she may not gets 29, a group she may not 30.
	t.Run("DescribeShareGroupOffsetsAllTopics", func(t *testing.T) {
		admin := e.login(t, "admin")
		alter := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		alter.SetVersion(maxVersion(t, admin, 91))
		alter.GroupID = "share-alice"
		for _, tn := range []string{"orders", "secret"} {
			at := kmsg.NewAlterShareGroupOffsetsRequestTopic()
			at.Topic = tn
			ap := kmsg.NewAlterShareGroupOffsetsRequestTopicPartition()
			ap.Partition, ap.StartOffset = 0, 0
			at.Partitions = append(at.Partitions, ap)
			alter.Topics = append(alter.Topics, at)
		}
		if ar := admin.roundTrip(alter).(*kmsg.AlterShareGroupOffsetsResponse); ar.ErrorCode != 0 {
			t.Fatalf("admin alter share offsets: %d", ar.ErrorCode)
		}
		r := e.login(t, "alice")
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		req.SetVersion(maxVersion(t, r, 90))
		req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: "share-alice"}}
		resp := r.roundTrip(req).(*kmsg.DescribeShareGroupOffsetsResponse)
		if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
			t.Fatalf("all topics of share-alice: %+v", resp.Groups)
		}
		var shown []string
		for _, tp := range resp.Groups[0].Topics {
			shown = append(shown, tp.Topic)
		}
		if len(shown) != 1 || shown[0] != "orders" {
			t.Fatalf("all topics of share-alice shown to alice: %q, want [orders]", shown)
		}
		if deniedFor(e, "User:alice", 90, "Topic names hidden") == nil {
			t.Fatal("no audited filter decision hiding secret")
		}
		named := func(tn string) kmsg.DescribeShareGroupOffsetsRequestGroupTopic {
			return kmsg.DescribeShareGroupOffsetsRequestGroupTopic{Topic: tn, Partitions: []int32{0}}
		}
		req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{
			{GroupID: "share-alice", Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{named("orders"), named("secret")}},
			{GroupID: "g-bob"},
		}
		resp = r.roundTrip(req).(*kmsg.DescribeShareGroupOffsetsResponse)
		if len(resp.Groups) != 2 || resp.Groups[1].GroupID != "g-bob" || resp.Groups[1].ErrorCode != 30 || len(resp.Groups[1].Topics) != 0 {
			t.Fatalf("named topics and a denied group: %+v", resp.Groups)
		}
		g := resp.Groups[0]
		if g.ErrorCode != 0 || len(g.Topics) != 2 || g.Topics[0].Topic != "orders" || g.Topics[0].Partitions[0].ErrorCode != 0 ||
			g.Topics[1].Topic != "secret" || g.Topics[1].Partitions[0].ErrorCode != 29 || g.Topics[1].Partitions[0].StartOffset != -1 {
			t.Fatalf("share-alice named orders and secret: %+v", g)
		}
	})
	// DescribeTopicPartitions: a cursor naming a denied topic of the list
	// gets 29 for that topic and the allowed topics after it from their
	// first partition (the broker's answer), never the cursor's topic;
	// a cursor outside the list is refused.
	t.Run("DescribeTopicPartitionsCursor", func(t *testing.T) {
		r := e.login(t, "alice")
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.SetVersion(maxVersion(t, r, 75))
		req.ResponsePartitionLimit = 100
		req.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "globex.t1"}, {Topic: "orders"}}
		req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "globex.t1", Partition: 1}
		resp := r.roundTrip(req).(*kmsg.DescribeTopicPartitionsResponse)
		if len(resp.Topics) != 2 || strPtr(resp.Topics[0].Topic) != "globex.t1" || resp.Topics[0].ErrorCode != 29 ||
			len(resp.Topics[0].Partitions) != 0 || resp.Topics[0].TopicID != [16]byte{} {
			t.Fatalf("denied cursor topic: %+v", resp.Topics)
		}
		if o := resp.Topics[1]; strPtr(o.Topic) != "orders" || o.ErrorCode != 0 || len(o.Partitions) != 3 {
			t.Fatalf("orders after a denied cursor: %q error %d, %d partitions", strPtr(o.Topic), o.ErrorCode, len(o.Partitions))
		}
		if resp.NextCursor != nil {
			t.Fatalf("next cursor %+v", resp.NextCursor)
		}
		// Only denied topics from the cursor on: answered by kguard.
		req.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "orders"}, {Topic: "secret"}}
		req.Cursor.Topic = "secret"
		resp = r.roundTrip(req).(*kmsg.DescribeTopicPartitionsResponse)
		for _, tp := range resp.Topics {
			if strPtr(tp.Topic) == "secret" && (tp.ErrorCode != 29 || len(tp.Partitions) != 0) {
				t.Fatalf("secret as the cursor: error %d, %d partitions", tp.ErrorCode, len(tp.Partitions))
			}
		}
		// A cursor outside the list: refused as Kafka refuses it (42 on
		// every listed topic), never forwarded, audited.
		req.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "orders"}}
		resp = r.roundTrip(req).(*kmsg.DescribeTopicPartitionsResponse)
		if len(resp.Topics) != 1 || strPtr(resp.Topics[0].Topic) != "orders" || resp.Topics[0].ErrorCode != 42 || len(resp.Topics[0].Partitions) != 0 {
			t.Fatalf("cursor outside the list: %+v", resp.Topics)
		}
		if deniedFor(e, "User:alice", 75, "cursor") == nil {
			t.Fatal("no audited refusal of the cursor")
		}
	})
	// DescribeTransactions lists the topics of an open transaction: those
	// alice may not Describe are left out, as Kafka leaves them out.
	t.Run("DescribeTransactionsHidesForeignTopics", func(t *testing.T) {
		tx := e.client(t, "admin", kgo.TransactionalID("tx-alice"), kgo.DefaultProduceTopic("orders"))
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, tn := range []string{"orders", "secret"} {
			if err := tx.ProduceSync(ctx, &kgo.Record{Topic: tn, Value: []byte("in-txn")}).FirstErr(); err != nil {
				t.Fatalf("produce to %s in the transaction: %v", tn, err)
			}
		}
		defer func() { _ = tx.EndTransaction(ctx, kgo.TryAbort) }()
		r := e.login(t, "alice")
		req := kmsg.NewPtrDescribeTransactionsRequest()
		req.SetVersion(maxVersion(t, r, 65))
		req.TransactionalIDs = []string{"tx-alice"}
		resp := r.roundTrip(req).(*kmsg.DescribeTransactionsResponse)
		if len(resp.TransactionStates) != 1 || resp.TransactionStates[0].ErrorCode != 0 {
			t.Fatalf("describe tx-alice: %+v", resp.TransactionStates)
		}
		var topics []string
		for _, tp := range resp.TransactionStates[0].Topics {
			topics = append(topics, tp.Topic)
		}
		if len(topics) != 1 || topics[0] != "orders" {
			t.Fatalf("topics of tx-alice shown to alice: %q, want [orders]", topics)
		}
		if deniedFor(e, "User:alice", 65, "Topic names hidden") == nil {
			t.Fatal("no audited filter decision hiding secret")
		}
	})
}
