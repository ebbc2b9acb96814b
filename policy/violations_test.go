package policy

import "testing"

// TestJoinedViolations: a client sees every violation of a resource at
// once, most severe first, each message once.
func TestJoinedViolations(t *testing.T) {
	d := &Decision{Violations: []Violation{
		{Resource: "Topic", Name: "Orders", Message: `topic name "Orders" does not follow the naming convention ^[a-z]+$`},
		{Resource: "Topic", Name: "Orders", Message: "cleanup.policy compact is not allowed for event topics (allowed: delete)"},
		{Resource: "Topic", Name: "other", Message: "replication factor 1 is below the minimum 3"},
		{Resource: "Topic", Name: "Orders", Message: "replication factor 1 is below the minimum 3"},
		{Resource: "Topic", Name: "Orders", Message: "70 partitions exceed the ceiling of 64"},
		{Resource: "Topic", Name: "Orders", Message: "replication factor 1 is below the minimum 3"},
	}}
	v, ok := d.Joined("Topic", "Orders")
	want := "replication factor 1 is below the minimum 3; cleanup.policy compact is not allowed for event topics (allowed: delete); " +
		`70 partitions exceed the ceiling of 64; topic name "Orders" does not follow the naming convention ^[a-z]+$`
	if !ok || v.Message != want || v.Name != "Orders" {
		t.Fatalf("joined %+v %v\nwant %q", v, ok, want)
	}
	if _, ok := d.Joined("Topic", "none"); ok {
		t.Fatal("a resource without violations has one")
	}
	if all, _ := d.JoinedAll(); all.Severity() != 0 {
		t.Fatalf("JoinedAll starts with %q", all.Message)
	}
}
