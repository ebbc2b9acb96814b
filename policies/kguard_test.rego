package kguard_test

import data.kguard

req(p, actions) := {
	"principal": p, "tenant": "", "client_host": "10.3.3.3", "client_addr": "10.3.3.3:5000",
	"api_key": 0, "actions": actions, "details": {},
}

test_results_follow_action_order if {
	d := kguard.decision with input as req("User:alice", [
		{"resource": "Topic", "name": "orders", "operation": "Write"},
		{"resource": "Topic", "name": "secret", "operation": "Write"},
		{"resource": "Topic", "name": "orders", "operation": "Describe"},
	])
	[r.allowed | some r in d.results] == [true, false, true]
}

test_no_actions_no_results if {
	d := kguard.decision with input as req("User:alice", [])
	d.results == []
	d.violations == []
}

test_audit_topic_write_denied_even_for_super_user if {
	d := kguard.decision with input as req("User:admin", [{"resource": "Topic", "name": "__kguard_audit", "operation": "Write"}])
	not d.results[0].allowed
	contains(d.results[0].reason, "only User:kguard")
}

test_audit_topic_delete_and_alter_configs_denied if {
	d := kguard.decision with input as req("User:ops", [
		{"resource": "Topic", "name": "__kguard_audit", "operation": "Delete"},
		{"resource": "Topic", "name": "__kguard_audit", "operation": "AlterConfigs"},
		{"resource": "Topic", "name": "__kguard_audit", "operation": "Read"},
	])
	[r.allowed | some r in d.results] == [false, false, true]
}

test_audit_topic_written_by_kguard if {
	d := kguard.decision with input as req("User:kguard", [{"resource": "Topic", "name": "__kguard_audit", "operation": "Write"}])
	d.results[0].allowed
}

test_audit_topic_name_from_data if {
	d := kguard.decision with input as req("User:admin", [{"resource": "Topic", "name": "audit.log", "operation": "Write"}])
		with data.config.kguard.audit_topic as "audit.log"
	not d.results[0].allowed
}

# An id kguard could not resolve and a subscription regex name no real
# topic: a wildcard ALLOW (ops) or a PREFIXED ACL that happens to match the
# placeholder name must not let them through; super users keep their rights.
test_unresolved_topic_id_and_regex_denied_whatever_the_acls if {
	d := kguard.decision with input as req("User:ops", [
		{"resource": "Topic", "name": "topic-id:0102030000000000000000000000000a", "operation": "Read"},
		{"resource": "Topic", "name": "topic-regex:.*", "operation": "Describe"},
		{"resource": "Topic", "name": "orders", "operation": "Read"},
	])
	[r.allowed | some r in d.results] == [false, false, true]
	contains(d.results[0].reason, "not known to kguard")
	contains(d.results[1].reason, "subscribe by name")
}

test_unresolved_topic_id_not_matched_by_prefix_acl if {
	d := kguard.decision with input as req("User:alice", [{"resource": "Topic", "name": "topic-id:00", "operation": "Read"}])
		with data.acls.extra as [{"principal": "User:alice", "resource": "Topic", "pattern": "PREFIXED", "name": "topic-", "operation": "Read", "permission": "ALLOW"}]
	not d.results[0].allowed
}

test_unresolved_topic_id_allowed_for_super_user if {
	d := kguard.decision with input as req("User:admin", [{"resource": "Topic", "name": "topic-id:00", "operation": "Read"}])
	d.results[0].allowed
}
