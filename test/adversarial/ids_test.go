package adversarial_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Names, ids and cursors (issue 10, finding 2 and its class): what a
// principal receives must be authorized for it however the request named
// the topic. The broker resolves a topic id whenever one is given, so kguard
// must authorize the id's topic, not the name next to it.

// topicID asks the cluster directly for a topic's id.
func (s *stack) topicID(t *testing.T, topic string) [16]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	td, err := kadm.NewClient(s.directClient(t)).ListTopics(ctx, topic)
	if err != nil || !td.Has(topic) || td[topic].Err != nil {
		t.Fatalf("id of %s: %v %v", topic, err, td[topic].Err)
	}
	return td[topic].ID
}

// checkMetadataHides fails when any answered topic carries forbidden's name, its
// id with partitions, or partitions at all for a denied entry.
func checkMetadataHides(t *testing.T, a *attackCase, resp *kmsg.MetadataResponse, forbidden string, forbiddenID [16]byte) {
	t.Helper()
	for _, tp := range resp.Topics {
		name := "<null>"
		if tp.Topic != nil {
			name = *tp.Topic
		}
		a.Got("topic %s id %x: %s, %d partitions", name, tp.TopicID[:4], kerr.ErrorForCode(tp.ErrorCode), len(tp.Partitions))
		if name == forbidden || (tp.TopicID == forbiddenID && (len(tp.Partitions) > 0 || tp.ErrorCode != kerr.TopicAuthorizationFailed.Code)) {
			t.Fatalf("%s disclosed: name %s, error %d, %d partitions", forbidden, name, tp.ErrorCode, len(tp.Partitions))
		}
	}
}

// TestMetadataAllowedNameForbiddenID: Metadata v12 with one entry pairing a
// topic the principal owns with the id of a topic it may not see. Before
// the fix kguard authorized the name and the broker answered for the id:
// the forbidden topic came back with its partitions. Tenants (acme asking
// for globex.ledger) and plain ACLs without tenants (erin asking for
// frank-secret).
func TestMetadataAllowedNameForbiddenID(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			for _, c := range []struct{ who, own, forbidden string }{
				{acme, "acme.orders", "globex.ledger"},
				{erin, "erin-data", "frank-secret"},
			} {
				t.Run(c.who, func(t *testing.T) {
					a := attack(t, s, "metadata: own name + forbidden topic id ("+c.who+")")
					id := s.topicID(t, c.forbidden)
					rc := s.login(t, c.who, "")
					req := kmsg.NewPtrMetadataRequest()
					req.SetVersion(12)
					req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(c.own), TopicID: id}}
					a.Sent("User:%s Metadata v12 [{name %s, id of %s}]", c.who, c.own, c.forbidden)
					resp, err := rc.send(req)
					if err != nil {
						t.Fatalf("metadata: %v", err)
					}
					md := resp.(*kmsg.MetadataResponse)
					checkMetadataHides(t, a, md, c.forbidden, id)
					if len(md.Topics) != 1 || md.Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
						t.Fatalf("want one entry with TOPIC_AUTHORIZATION_FAILED, got %d entries", len(md.Topics))
					}
					ev := s.waitAudit(t, "denying the id's topic", denial(c.who, "Metadata", c.forbidden))
					a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)

					// The same with the id alone and beside an owned name
					// in a second entry: 29 for the id, nothing of it.
					a.Sent("User:%s Metadata v12 [{name %s}, {id of %s}]", c.who, c.own, c.forbidden)
					req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(c.own)}, {TopicID: id}}
					resp, err = rc.send(req)
					if err != nil {
						t.Fatalf("metadata: %v", err)
					}
					checkMetadataHides(t, a, resp.(*kmsg.MetadataResponse), c.forbidden, id)
				})
			}
		})
	}
}

// TestDeleteTopicsAllowedNameForbiddenID: DeleteTopics v6 with an owned
// name and a forbidden topic's id in one entry is decided on the id's
// topic: 29, and the topic is still there.
func TestDeleteTopicsAllowedNameForbiddenID(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			a := attack(t, s, "delete topics: own name + forbidden topic id")
			id := s.topicID(t, "frank-secret")
			rc := s.login(t, erin, "")
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.SetVersion(6)
			req.TimeoutMillis = 5000
			req.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("erin-data"), TopicID: id}}
			a.Sent("User:%s DeleteTopics v6 [{name erin-data, id of frank-secret}]", erin)
			resp, err := rc.send(req)
			if err != nil {
				t.Fatalf("delete topics: %v", err)
			}
			dt := resp.(*kmsg.DeleteTopicsResponse)
			if len(dt.Topics) != 1 {
				t.Fatalf("%d entries", len(dt.Topics))
			}
			a.Got("%s", kerr.ErrorForCode(dt.Topics[0].ErrorCode))
			if dt.Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
				t.Fatalf("want TOPIC_AUTHORIZATION_FAILED, got %s", kerr.ErrorForCode(dt.Topics[0].ErrorCode))
			}
			s.topicID(t, "frank-secret") // still there
			s.topicID(t, "erin-data")
			ev := s.waitAudit(t, "denying the id's topic", denial(erin, "DeleteTopics", "frank-secret"))
			a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
		})
	}
}

// TestConsumerGroupHeartbeatForeignSubscription: a KIP-848 member of its
// own group subscribing to another tenant's topic by name, or by a regex
// the broker would resolve with kguard's rights, gets 29 and no
// assignment.
func TestConsumerGroupHeartbeatForeignSubscription(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			for _, c := range []struct {
				what  string
				names []string
				regex *string
				audit string
			}{
				{"by name", []string{"acme.orders", "globex.ledger"}, nil, "globex.ledger"},
				{"by regex", nil, kmsg.StringPtr("globex\\..*"), "regex"},
			} {
				t.Run(c.what, func(t *testing.T) {
					a := attack(t, s, "consumer group heartbeat subscribing to another tenant's topic "+c.what)
					rc := s.login(t, acme, "")
					req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
					req.SetVersion(1)
					req.Group, req.RebalanceTimeoutMillis = "acme.adv-"+randHex(4), 30000
					req.SubscribedTopicNames, req.SubscribedTopicRegex = c.names, c.regex
					req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
					re := "null"
					if c.regex != nil {
						re = *c.regex
					}
					a.Sent("User:%s ConsumerGroupHeartbeat v1 group %s names %q regex %s", acme, req.Group, c.names, re)
					resp, err := rc.send(req)
					if err != nil {
						t.Fatalf("heartbeat: %v", err)
					}
					hb := resp.(*kmsg.ConsumerGroupHeartbeatResponse)
					a.Got("%s, assignment %v", kerr.ErrorForCode(hb.ErrorCode), hb.Assignment != nil)
					if hb.ErrorCode != kerr.TopicAuthorizationFailed.Code || hb.Assignment != nil {
						t.Fatalf("want TOPIC_AUTHORIZATION_FAILED and no assignment, got %s", kerr.ErrorForCode(hb.ErrorCode))
					}
					ev := s.waitAudit(t, "denying the subscription", denial(acme, "ConsumerGroupHeartbeat", c.audit))
					a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
				})
			}
		})
	}
}

// TestGroupAndTransactionDescribesNameNoForeignTopic: a description of the
// principal's own group or transaction lists topics the request did not
// name. A super user (the cluster's own identity) puts another tenant's
// topic into acme's KIP-848 group and into acme's open transaction;
// acme's ConsumerGroupDescribe must then answer 29 with no members (as
// Kafka 4), and its DescribeTransactions must leave the topic out (as
// Kafka). Before the fix the broker answered kguard's identity: member
// subscriptions, assignments and transaction topics named globex.ledger.
func TestGroupAndTransactionDescribesNameNoForeignTopic(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			direct := s.directClient(t)
			acmeCl := s.client(t, acme)

			t.Run("ConsumerGroupDescribe", func(t *testing.T) {
				a := attack(t, s, "describe own KIP-848 group with a member subscribed to another tenant's topic")
				group := "acme.adv-g-" + randHex(4)
				hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
				hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = group, "adv-"+randHex(8), 30000
				hb.SubscribedTopicNames = []string{"globex.ledger"}
				hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
				hr, err := hb.RequestWith(ctx, direct)
				if err != nil || hr.ErrorCode != 0 {
					t.Fatalf("super user joining %s: %v %v", group, err, hr)
				}
				defer func() {
					leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
					leave.Group, leave.MemberID, leave.MemberEpoch = group, *hr.MemberID, -1
					_, _ = leave.RequestWith(context.Background(), direct)
				}()
				req := kmsg.NewPtrConsumerGroupDescribeRequest()
				req.Groups = []string{group}
				a.Sent("User:%s ConsumerGroupDescribe [%s] (a super user's member subscribes to globex.ledger)", acme, group)
				resp, err := req.RequestWith(ctx, acmeCl)
				if err != nil {
					t.Fatalf("describe: %v", err)
				}
				if len(resp.Groups) != 1 {
					t.Fatalf("%d groups", len(resp.Groups))
				}
				g := resp.Groups[0]
				a.Got("%s, %d members", kerr.ErrorForCode(g.ErrorCode), len(g.Members))
				for _, m := range g.Members {
					for _, tn := range m.SubscribedTopics {
						if tn == "globex.ledger" {
							t.Fatalf("acme sees a member subscribed to globex.ledger")
						}
					}
				}
				if g.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(g.Members) != 0 {
					t.Fatalf("want TOPIC_AUTHORIZATION_FAILED and no members, got %s with %d members", kerr.ErrorForCode(g.ErrorCode), len(g.Members))
				}
				ev := s.waitAudit(t, "the hidden group", denial(acme, "ConsumerGroupDescribe", "Topic names hidden"))
				a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
			})

			t.Run("DescribeTransactions", func(t *testing.T) {
				a := attack(t, s, "describe own open transaction holding another tenant's topic")
				txid := "acme.adv-tx-" + randHex(4)
				tx := s.directClient(t, kgo.TransactionalID(txid))
				if err := tx.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = tx.EndTransaction(context.Background(), kgo.TryAbort) }()
				for _, tn := range []string{"acme.orders", "globex.ledger"} {
					if err := tx.ProduceSync(ctx, &kgo.Record{Topic: tn, Value: []byte("adv-in-txn")}).FirstErr(); err != nil {
						t.Fatalf("super user producing to %s in %s: %v", tn, txid, err)
					}
				}
				req := kmsg.NewPtrDescribeTransactionsRequest()
				req.TransactionalIDs = []string{txid}
				a.Sent("User:%s DescribeTransactions [%s] (open, holding acme.orders and globex.ledger)", acme, txid)
				resp, err := req.RequestWith(ctx, acmeCl)
				if err != nil {
					t.Fatalf("describe: %v", err)
				}
				if len(resp.TransactionStates) != 1 || resp.TransactionStates[0].ErrorCode != 0 {
					t.Fatalf("describe %s: %+v", txid, resp.TransactionStates)
				}
				var topics []string
				for _, tp := range resp.TransactionStates[0].Topics {
					topics = append(topics, tp.Topic)
				}
				a.Got("topics %q", topics)
				if len(topics) != 1 || topics[0] != "acme.orders" {
					t.Fatalf("topics of %s shown to acme: %q, want [acme.orders]", txid, topics)
				}
				ev := s.waitAudit(t, "the hidden topic", denial(acme, "DescribeTransactions", "Topic names hidden"))
				a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
			})
		})
	}
}

// TestDescribeTopicPartitionsCursorAtForbiddenTopic: a cursor at a topic
// the principal may not describe, among the topics it names, is never
// forwarded: 29 for that topic, the principal's own topics after it from
// partition 0. A cursor outside the named topics is refused as Kafka
// refuses it (42 on every named topic) and audited.
func TestDescribeTopicPartitionsCursorAtForbiddenTopic(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			a := attack(t, s, "describe topic partitions with a cursor at another tenant's topic")
			rc := s.login(t, globex, "")
			req := kmsg.NewPtrDescribeTopicPartitionsRequest()
			req.ResponsePartitionLimit = 2000
			req.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "acme.orders"}, {Topic: "globex.ledger"}}
			req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "acme.orders", Partition: 1}
			a.Sent("User:%s DescribeTopicPartitions [acme.orders, globex.ledger] cursor acme.orders/1", globex)
			resp, err := rc.send(req)
			if err != nil {
				t.Fatalf("describe: %v", err)
			}
			dr := resp.(*kmsg.DescribeTopicPartitionsResponse)
			for _, tp := range dr.Topics {
				name := "<null>"
				if tp.Topic != nil {
					name = *tp.Topic
				}
				a.Got("%s: %s, %d partitions", name, kerr.ErrorForCode(tp.ErrorCode), len(tp.Partitions))
				switch name {
				case "acme.orders":
					if tp.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(tp.Partitions) != 0 || tp.TopicID != [16]byte{} {
						t.Fatalf("acme.orders disclosed to globex: error %d, %d partitions", tp.ErrorCode, len(tp.Partitions))
					}
				case "globex.ledger":
					if tp.ErrorCode != 0 || len(tp.Partitions) != 3 {
						t.Fatalf("globex.ledger after the cursor: error %d, %d partitions", tp.ErrorCode, len(tp.Partitions))
					}
				default:
					t.Fatalf("unexpected topic %s", name)
				}
			}
			if len(dr.Topics) != 2 {
				t.Fatalf("%d topics, want acme.orders and globex.ledger", len(dr.Topics))
			}
			ev := s.waitAudit(t, "denying the cursor's topic", denial(globex, "DescribeTopicPartitions", "acme.orders"))
			a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)

			req.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "globex.ledger"}}
			req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "acme.payments", Partition: 0}
			a.Sent("User:%s DescribeTopicPartitions [globex.ledger] cursor acme.payments/0", globex)
			resp, err = rc.send(req)
			if err != nil {
				t.Fatalf("describe: %v", err)
			}
			dr = resp.(*kmsg.DescribeTopicPartitionsResponse)
			if len(dr.Topics) != 1 || dr.Topics[0].ErrorCode != kerr.InvalidRequest.Code || len(dr.Topics[0].Partitions) != 0 {
				t.Fatalf("cursor outside the list: %+v", dr.Topics)
			}
			a.Got("globex.ledger: %s", kerr.ErrorForCode(dr.Topics[0].ErrorCode))
			ev = s.waitAudit(t, "refusing the cursor", denial(globex, "DescribeTopicPartitions", "cursor names a topic"))
			a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
		})
	}
}
