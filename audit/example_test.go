package audit_test

import (
	"fmt"
	"time"

	"github.com/kguard/kguard/audit"
)

// An authorization decision as the recorder encodes it (the Kafka record
// value and the bytes the chain hash covers).
func ExampleEvent_Encode() {
	ev := audit.Event{
		Version: audit.SchemaVersion, Type: audit.EventAuthzDecision, Seq: 42,
		Time: time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC),
		Who:  &audit.Who{Principal: "User:alice", Mechanism: "SCRAM-SHA-512", ClientID: "billing"},
		What: &audit.What{APIKey: 0, APIName: "Produce", APIVersion: 11, Operation: "WRITE",
			ResourceType: "TOPIC", ResourceName: "payments",
			Produce: []audit.TopicSummary{{Topic: "payments", Partitions: []audit.PartitionSummary{{Partition: 0, Records: 10, Bytes: 4096}}}}},
		Where:   audit.Where{Client: "10.0.0.7:53122", Listener: "external", Instance: "kg-1", Cluster: "prod-eu"},
		Outcome: &audit.Outcome{Decision: audit.DecisionDeny, ErrorCode: 29, Reasons: []string{"no ACL grants WRITE on TOPIC payments"}, PolicyRev: "a1b2c3", DecisionID: "7f9e"},
	}
	b, _ := ev.Encode()
	fmt.Println(string(b))
	// Output:
	// {"v":1,"type":"authz.decision","seq":42,"prev":"0000000000000000000000000000000000000000000000000000000000000000","time":"2026-11-27T12:00:00.123456789Z","who":{"principal":"User:alice","mechanism":"SCRAM-SHA-512","client_id":"billing"},"what":{"api_key":0,"api_name":"Produce","api_version":11,"operation":"WRITE","resource_type":"TOPIC","resource_name":"payments","produce":[{"topic":"payments","partitions":[{"p":0,"records":10,"bytes":4096}]}]},"where":{"client":"10.0.0.7:53122","listener":"external","instance":"kg-1","cluster":"prod-eu"},"outcome":{"decision":"deny","error_code":29,"reasons":["no ACL grants WRITE on TOPIC payments"],"policy_rev":"a1b2c3","decision_id":"7f9e"}}
}
