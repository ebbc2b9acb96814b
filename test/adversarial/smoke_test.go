package adversarial_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCrossTenantFetchByName is the baseline every other case builds on:
// acme asks, by name, for the records of globex's topic and gets
// TOPIC_AUTHORIZATION_FAILED without records, and the denial is audited.
func TestCrossTenantFetchByName(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			a := attack(t, s, "fetch another tenant's topic by name")
			rc := s.login(t, acme, s.leaderOf(t, "globex.ledger", 0))
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(12)
			req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 100, 1<<20, -1
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = "globex.ledger"
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.PartitionMaxBytes = 0, 1<<20
			ft.Partitions = append(ft.Partitions, fp)
			req.Topics = append(req.Topics, ft)
			a.Sent("User:%s Fetch v12 globex.ledger[0] from offset 0", acme)
			resp, err := rc.send(req)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			fr := resp.(*kmsg.FetchResponse)
			if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
				t.Fatalf("answer has %d topics", len(fr.Topics))
			}
			p := fr.Topics[0].Partitions[0]
			a.Got("%s, %d bytes of records", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
			if p.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(p.RecordBatches) != 0 {
				t.Fatalf("acme fetched globex.ledger: error %d, %d bytes of records", p.ErrorCode, len(p.RecordBatches))
			}
			ev := s.waitAudit(t, "denying acme's fetch of globex.ledger", denial(acme, "Fetch", "globex.ledger"))
			a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
		})
	}
}
