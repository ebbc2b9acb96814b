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
