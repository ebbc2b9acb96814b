package policy

import "testing"

// BenchmarkRecordInputProduce: what recording a Produce decision's input
// costs the proxy per request.
func BenchmarkRecordInputProduce(b *testing.B) {
	actions := []Action{{Topic, "payments.cards", Write}}
	details := map[string]any{"acks": -1, "idempotent": true, "transactional": false, "topics": []string{"payments.cards"}}
	b.ReportAllocs()
	for b.Loop() {
		dst := make(map[string]string, 2)
		if err := RecordInput(dst, actions, details); err != nil {
			b.Fatal(err)
		}
	}
}
