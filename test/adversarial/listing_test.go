package adversarial_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// victimActivity gives the victims (globex by tenant, frank by ACL) a
// consumer group with committed offsets and an open transaction, straight
// on the cluster, so that listings have something of theirs to leak.
func victimActivity(t *testing.T, s *stack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, pre := range []string{"globex.", "frank-"} {
		topic := map[string]string{"globex.": "globex.ledger", "frank-": "frank-secret"}[pre]
		adm := kadm.NewClient(s.directClient(t))
		offs := kadm.Offsets{}
		offs.AddOffset(topic, 0, 1, -1)
		if _, err := adm.CommitOffsets(ctx, pre+"group", offs); err != nil {
			t.Fatalf("committing %sgroup's offsets: %v", pre, err)
		}
		tx := s.directClient(t, kgo.TransactionalID(pre+"txn-"+randHex(3)), kgo.DefaultProduceTopic(topic))
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := tx.ProduceSync(ctx, kgo.StringRecord(`{"open":"txn"}`)).FirstErr(); err != nil {
			t.Fatalf("transactional produce to %s: %v", topic, err)
		}
		// Left open: ListTransactions shows it until the test ends.
		t.Cleanup(func() { _ = tx.EndTransaction(context.Background(), kgo.TryAbort) })
	}
}

// TestListingsHideOtherTenants sends every request form that names no
// resource and gets a listing back (all topics, all groups, all
// transactions, a topic-partition cursor, a regex subscription, config
// resources) as acme and as erin: no name of globex's or frank's may come
// back, nor a topic id of theirs.
func TestListingsHideOtherTenants(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			victimActivity(t, s)
			md, err := kadm.NewClient(s.directClient(t)).Metadata(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, attacker := range []string{acme, erin} {
				own := map[string]string{acme: "acme.", erin: "erin-"}[attacker]
				var forbidden [][]byte
				for name, td := range md.Topics {
					if !strings.HasPrefix(name, own) {
						forbidden = append(forbidden, td.ID[:])
					}
				}
				forbidden = append(forbidden, []byte("globex."), []byte("frank-"))
				if attacker == acme {
					forbidden = append(forbidden, []byte("erin-"))
				} else {
					forbidden = append(forbidden, []byte("acme."))
				}
				a := attack(t, s, "listings as "+attacker+": all topics, groups, transactions, cursors, regex subscriptions, config resources")
				rc := s.login(t, attacker, "")
				av := kmsg.NewPtrApiVersionsRequest()
				av.SetVersion(3)
				avr, err := rc.send(av)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, k := range avr.(*kmsg.ApiVersionsResponse).ApiKeys {
					for v := k.MinVersion; v <= k.MaxVersion; v++ {
						for _, req := range listingRequests(k.ApiKey, v, own) {
							req.SetVersion(v)
							n++
							resp, err := rc.send(req)
							if err != nil && s.name == "kfake" && k.ApiKey == 75 {
								// kfake closes the connection on a
								// DescribeTopicPartitions it does not
								// handle (kguard logs "upstream closed").
								rc = s.login(t, attacker, "")
								continue
							}
							if err != nil {
								t.Errorf("%s v%d: %v", kmsg.NameForKey(k.ApiKey), v, err)
								rc = s.login(t, attacker, "")
								continue
							}
							b := resp.AppendTo(nil)
							for _, f := range forbidden {
								if bytes.Contains(b, f) {
									t.Errorf("%s v%d (%s) as %s: the answer contains %q", kmsg.NameForKey(k.ApiKey), v, describeListing(req), attacker, printable(f))
								}
							}
						}
					}
				}
				a.Sent("User:%s: %d listing requests (Metadata all topics, ListGroups, ListTransactions, DescribeTopicPartitions all and with a cursor at another tenant's topic, OffsetFetch of its own group with null topics, ListConfigResources)", attacker, n)
				a.Got("no name or topic id outside %q in any answer", own)
				heartbeatRegex(t, s, a, attacker, own, forbidden)
			}
		})
	}
}

// listingRequests are the requests of key at version v that list without
// naming (empty for APIs that name what they return).
func listingRequests(key, v int16, own string) []kmsg.Request {
	switch key {
	case 3:
		r := kmsg.NewPtrMetadataRequest()
		if v == 0 {
			r.Topics = []kmsg.MetadataRequestTopic{} // v0: empty means all
		}
		return []kmsg.Request{r}
	case 16:
		return []kmsg.Request{kmsg.NewPtrListGroupsRequest()}
	case 66:
		r := kmsg.NewPtrListTransactionsRequest()
		r.DurationFilterMillis = -1
		return []kmsg.Request{r}
	case 75:
		all := kmsg.NewPtrDescribeTopicPartitionsRequest()
		all.ResponsePartitionLimit = 2000
		cur := kmsg.NewPtrDescribeTopicPartitionsRequest()
		cur.ResponsePartitionLimit = 2000
		mine := kmsg.NewDescribeTopicPartitionsRequestTopic()
		mine.Topic = map[string]string{"acme.": "acme.orders", "erin-": "erin-data"}[own]
		cur.Topics = append(cur.Topics, mine)
		c := kmsg.NewDescribeTopicPartitionsRequestCursor()
		c.Topic, c.Partition = "globex.ledger", 0
		cur.Cursor = &c
		return []kmsg.Request{all, cur}
	case 9:
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Group = own + "group"
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = own + "group"
		r.Groups = append(r.Groups, g)
		if v < 2 {
			return nil // null topics means all from v2
		}
		return []kmsg.Request{r}
	case 74:
		return []kmsg.Request{kmsg.NewPtrListConfigResourcesRequest()}
	}
	return nil
}

func describeListing(r kmsg.Request) string {
	if d, ok := r.(*kmsg.DescribeTopicPartitionsRequest); ok && d.Cursor != nil {
		return "cursor at " + d.Cursor.Topic
	}
	return "listing"
}

func printable(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("topic id %x", b)
		}
	}
	return string(b)
}

// heartbeatRegex joins a consumer group of the attacker's own with the
// KIP-848 regex subscription ".*": the broker resolves the regex (as
// kguard's super-user identity), and the assignment it hands out must not
// name a topic the attacker may not read.
func heartbeatRegex(t *testing.T, s *stack, a *attackCase, attacker, own string, forbidden [][]byte) {
	t.Helper()
	group := own + "rx-" + randHex(3)
	rc := s.loginCoordinator(t, attacker, group)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	avr, err := rc.send(av)
	if err != nil {
		t.Fatal(err)
	}
	var max int16 = -1
	for _, k := range avr.(*kmsg.ApiVersionsResponse).ApiKeys {
		if k.ApiKey == 68 {
			max = k.MaxVersion
		}
	}
	if max < 1 {
		a.Got("ConsumerGroupHeartbeat with a regex not offered here (max v%d)", max)
		return
	}
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.SetVersion(max)
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = group, "m-"+randHex(8), 0, 30000
	hb.SubscribedTopicRegex = kmsg.StringPtr(".*")
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	a.Sent("User:%s ConsumerGroupHeartbeat v%d group %s regex \".*\"", attacker, max, group)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := rc.send(hb)
		if err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		r := resp.(*kmsg.ConsumerGroupHeartbeatResponse)
		if r.ErrorCode != 0 {
			a.Got("heartbeat error %d", r.ErrorCode)
			return
		}
		b := r.AppendTo(nil)
		for _, f := range forbidden {
			if bytes.Contains(b, f) {
				t.Errorf("the regex assignment for %s names %s", attacker, printable(f))
				a.Got("assignment LEAKS %s", printable(f))
				return
			}
		}
		if r.Assignment != nil && len(r.Assignment.Topics) > 0 {
			a.Got("assignment of %d topics, all the attacker's own", len(r.Assignment.Topics))
			return
		}
		hb.MemberID, hb.MemberEpoch = *r.MemberID, r.MemberEpoch
		hb.SubscribedTopicRegex, hb.RebalanceTimeoutMillis = nil, -1
		time.Sleep(500 * time.Millisecond)
	}
	a.Got("no assignment within 15 s (nothing leaked)")
}
