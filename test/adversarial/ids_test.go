package adversarial_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
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
