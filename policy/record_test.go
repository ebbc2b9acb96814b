package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestRecordInputRoundTripRedacts(t *testing.T) {
	actions := []Action{{Cluster, ClusterName, AlterConfigs}, {Topic, `we"ird<name>`, AlterConfigs}, {Group, "g é", Read}}
	details := map[string]any{"resources": []any{
		map[string]any{"type": "Broker", "name": "1", "incremental": true,
			"configs": map[string]any{"listener.name.x.ssl.keystore.password": "hunter2", "min.insync.replicas": "2", "sasl.jaas.config": "secret-jaas"},
			"ops": []any{map[string]any{"name": "ssl.key.password", "op": "SET", "value": "hunter3"},
				map[string]any{"name": "retention.ms", "op": "SET", "value": "1000"}}},
	}, "validate_only": false}
	dst := map[string]string{}
	if err := RecordInput(dst, actions, details); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hunter2", "hunter3", "secret-jaas"} {
		if strings.Contains(dst[RecordedDetails], s) {
			t.Fatalf("recorded details leak %q: %s", s, dst[RecordedDetails])
		}
	}
	gotA, gotD, err := DecodeInput(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotA, actions) {
		t.Fatalf("actions %v, want %v", gotA, actions)
	}
	res := gotD["resources"].([]any)[0].(map[string]any)
	cfg := res["configs"].(map[string]any)
	if cfg["min.insync.replicas"] != "2" || cfg["sasl.jaas.config"] != Redacted {
		t.Fatalf("configs %v", cfg)
	}
	ops := res["ops"].([]any)
	if ops[0].(map[string]any)["value"] != Redacted || ops[1].(map[string]any)["value"] != "1000" {
		t.Fatalf("ops %v", ops)
	}
	// The hand-written actions encoding is encoding/json's.
	want, _ := json.Marshal([][3]string{{"Cluster", "AlterConfigs", ClusterName}, {"Topic", "AlterConfigs", `we"ird<name>`}, {"Group", "Read", "g é"}})
	if dst[RecordedActions] != string(want) {
		t.Fatalf("actions %s, want %s", dst[RecordedActions], want)
	}
	// The original details are untouched.
	if details["resources"].([]any)[0].(map[string]any)["configs"].(map[string]any)["sasl.jaas.config"] != "secret-jaas" {
		t.Fatal("RecordInput changed the request's details")
	}
	if _, _, err := DecodeInput(map[string]string{"tenant": "x"}); err != ErrNoInput {
		t.Fatalf("no input: %v", err)
	}
	big := map[string]string{}
	if err := RecordInput(big, []Action{{Topic, strings.Repeat("x", MaxRecordedInput), Read}}, nil); err != nil || big[RecordedOmitted] == "" || big[RecordedActions] != "" {
		t.Fatalf("oversized input: %v %v", err, big)
	}
}
