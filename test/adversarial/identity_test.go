package adversarial_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/proxy/wire/records"
)

// TestReauthenticateAsAnotherPrincipal: KIP-368 re-authentication on a
// logged-in connection must keep the principal. acme logs in, then
// re-authenticates with globex's valid credentials: refused and the
// connection closed, so nothing is ever decided as globex on a connection
// (and fetch sessions) opened as acme.
func TestReauthenticateAsAnotherPrincipal(t *testing.T) {
	s := shared(t)
	a := attack(t, s, "re-authenticate a logged-in connection as another principal")
	rc := s.login(t, acme, "")
	a.Sent("User:%s logged in; SaslHandshake v1 + SaslAuthenticate v2 PLAIN with globex-app's valid password", acme)
	err := rc.login(globex, s.passwords[globex])
	a.Got("%v", err)
	if err == nil {
		t.Fatal("re-authentication as another principal succeeded")
	}
	if !rc.closedByPeer(5 * time.Second) {
		t.Error("the connection stays open after a refused principal change")
	} else {
		a.Got("connection closed")
	}
	s.waitAudit(t, "a failed re-authentication naming the principal change", func(ev audit.Event) bool {
		return ev.Who != nil && (ev.Who.Principal == "User:"+acme || ev.Who.Principal == "User:"+globex) &&
			ev.Outcome != nil && ev.Outcome.Decision == audit.DecisionDeny && ev.Type != audit.EventAuthzDecision
	})
}

// TestTransactionalRecordsWithoutTransactionalID: a Produce whose batch is
// transactional (attribute bit, a producer id guessed from another
// tenant's ongoing transaction) but whose request names no transactional
// id must be refused, as Kafka refuses it (TRANSACTIONAL_ID_AUTHORIZATION_
// FAILED): otherwise records could join a transaction the principal may
// not write to. Nothing may be appended.
func TestTransactionalRecordsWithoutTransactionalID(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			victimActivity(t, s) // globex has an open transaction
			ctx := context.Background()
			adm := kadm.NewClient(s.directClient(t))
			var pid int64 = 1
			var epoch int16
			if ds, err := adm.DescribeProducers(ctx, kadmSet("globex.ledger", 0, 1, 2)); err == nil {
				ds.EachPartition(func(p kadm.DescribedProducersPartition) {
					for _, pr := range p.ActiveProducers {
						pid, epoch = pr.ProducerID, pr.ProducerEpoch
					}
				})
			}
			before, err := adm.ListEndOffsets(ctx, "acme.orders")
			if err != nil {
				t.Fatal(err)
			}
			a := attack(t, s, "transactional records with another tenant's producer id and no transactional id")
			rc := s.login(t, acme, s.leaderOf(t, "acme.orders", 0))
			b := records.Batch{RecordBatch: kmsg.RecordBatch{Magic: 2, Attributes: 0x10, ProducerID: pid, ProducerEpoch: epoch,
				FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli()}}
			raw, err := records.EncodeBatch(nil, &b, []records.Record{{Value: []byte(`{"injected":true}`)}})
			if err != nil {
				t.Fatal(err)
			}
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(9)
			req.Acks, req.TimeoutMillis = -1, 5000
			tp := kmsg.NewProduceRequestTopic()
			tp.Topic = "acme.orders"
			pp := kmsg.NewProduceRequestTopicPartition()
			pp.Partition, pp.Records = 0, raw
			tp.Partitions = append(tp.Partitions, pp)
			req.Topics = append(req.Topics, tp)
			a.Sent("User:%s Produce v9 acme.orders[0], TransactionalID null, one transactional batch with producer id %d epoch %d", acme, pid, epoch)
			resp, err := rc.send(req)
			if err != nil {
				a.Got("connection closed: %v", err)
			} else {
				code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
				a.Got("%v", kerr.ErrorForCode(code))
				if code == 0 {
					t.Errorf("transactional records without a transactional id were appended")
				}
			}
			after, err := adm.ListEndOffsets(ctx, "acme.orders")
			if err != nil {
				t.Fatal(err)
			}
			if b, a2 := before["acme.orders"][0].Offset, after["acme.orders"][0].Offset; a2 != b {
				t.Errorf("acme.orders[0] end offset moved %d -> %d", b, a2)
			}
		})
	}
}

func kadmSet(topic string, parts ...int32) kadm.TopicsSet {
	s := kadm.TopicsSet{}
	s.Add(topic, parts...)
	return s
}
