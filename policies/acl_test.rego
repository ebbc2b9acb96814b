# Kafka ACL semantics, over the example ACLs in acls/example.json.
package kguard.acl_test

import data.kguard.acl

allowed(p, host, res, name, op) if {
	acl.result({"resource": res, "name": name, "operation": op}, p, host).allowed
}

test_literal_allow if allowed("User:alice", "10.1.1.1", "Topic", "orders", "Write")

test_default_deny if not allowed("User:alice", "10.1.1.1", "Topic", "orders", "Read")

test_unknown_principal_denied if not allowed("User:mallory", "10.1.1.1", "Topic", "orders", "Write")

test_write_implies_describe if allowed("User:alice", "10.1.1.1", "Topic", "orders", "Describe")

test_implied_describe_only_for_describe if not allowed("User:alice", "10.1.1.1", "Topic", "orders", "DescribeConfigs")

test_prefixed_allow if allowed("User:alice", "10.1.1.1", "Topic", "reports-2026", "Read")

test_prefixed_needs_prefix if not allowed("User:alice", "10.1.1.1", "Topic", "xreports-2026", "Read")

test_deny_wins_over_prefixed_allow if not allowed("User:alice", "10.1.1.1", "Topic", "reports-secret", "Read")

# A DENY Read does not deny Describe, which the prefixed ALLOW Read implies.
test_deny_read_keeps_implied_describe if allowed("User:alice", "10.1.1.1", "Topic", "reports-secret", "Describe")

test_alterconfigs_implies_describeconfigs if allowed("User:alice", "10.1.1.1", "Topic", "configs", "DescribeConfigs")

test_alterconfigs_does_not_imply_alter if not allowed("User:alice", "10.1.1.1", "Topic", "configs", "Alter")

test_wildcard_literal_name_and_host_match if allowed("User:bob", "10.0.0.7", "Topic", "anything", "Read")

test_host_mismatch_denied if not allowed("User:bob", "10.0.0.8", "Topic", "anything", "Read")

test_wildcard_principal if allowed("User:carol", "10.1.1.1", "Topic", "public", "Read")

test_deny_all_from_host_wins if not allowed("User:carol", "192.0.2.66", "Topic", "public", "Read")

test_deny_all_from_host_covers_describe if not allowed("User:carol", "192.0.2.66", "Topic", "public", "Describe")

test_group_prefixed if allowed("User:alice", "10.1.1.1", "Group", "alice-consumers", "Read")

test_group_other_denied if not allowed("User:alice", "10.1.1.1", "Group", "bob-consumers", "Read")

test_resource_type_must_match if not allowed("User:alice", "10.1.1.1", "Group", "orders", "Write")

test_super_user if allowed("User:admin", "10.1.1.1", "Cluster", "kafka-cluster", "Alter")

test_super_user_beats_deny if allowed("User:admin", "192.0.2.66", "Topic", "public", "Read") with data.acls.extra as [{"principal": "User:admin", "resource": "Topic", "name": "public", "operation": "All", "permission": "DENY"}]

test_all_allows_everything if allowed("User:ops", "10.1.1.1", "Cluster", "kafka-cluster", "ClusterAction")

test_idempotent_write_from_topic_write if allowed("User:alice", "10.1.1.1", "Cluster", "kafka-cluster", "IdempotentWrite")

test_idempotent_write_needs_some_write if not allowed("User:bob", "10.0.0.7", "Cluster", "kafka-cluster", "IdempotentWrite")

test_idempotent_write_denied_by_deny_all_topics if {
	not allowed("User:alice", "10.1.1.1", "Cluster", "kafka-cluster", "IdempotentWrite") with data.acls.extra as [{"principal": "User:alice", "resource": "Topic", "pattern": "LITERAL", "name": "*", "operation": "Write", "permission": "DENY"}]
}

# The allow_everyone_if_no_acl_found tests use their own ACLs, so that other
# data sets loaded beside the example (the demo's wildcards) do not matter.
only_alice_tx := {"t": [{"principal": "User:alice", "resource": "TransactionalId", "name": "alice-tx", "operation": "Write", "permission": "ALLOW"}]}

test_no_acl_found_default_false if {
	not allowed("User:carol", "10.1.1.1", "TransactionalId", "unclaimed", "Write") with data.acls as only_alice_tx
}

test_no_acl_found_true_allows_unclaimed if {
	allowed("User:carol", "10.1.1.1", "TransactionalId", "unclaimed", "Write") with data.acls as only_alice_tx
		with data.config.acl.allow_everyone_if_no_acl_found as true
}

test_no_acl_found_true_keeps_claimed_txn if {
	not allowed("User:carol", "10.1.1.1", "TransactionalId", "alice-tx", "Write") with data.acls as only_alice_tx
		with data.config.acl.allow_everyone_if_no_acl_found as true
}

# A wildcard ACL (bob's LITERAL "*" on topics) counts as an ACL for every
# topic, as in Kafka.
test_no_acl_found_wildcard_counts if {
	not allowed("User:carol", "10.1.1.1", "Topic", "unclaimed", "Read") with data.config.acl.allow_everyone_if_no_acl_found as true
}

test_no_acl_found_true_keeps_claimed_resources if {
	not allowed("User:carol", "10.1.1.1", "Topic", "orders", "Read") with data.config.acl.allow_everyone_if_no_acl_found as true
}

test_empty_prefix_matches_nothing if {
	not allowed("User:carol", "10.1.1.1", "Topic", "x", "Read") with data.acls.extra as [{"principal": "User:carol", "resource": "Topic", "pattern": "PREFIXED", "name": "", "operation": "Read", "permission": "ALLOW"}]
}

test_reason_names_the_deny_acl if {
	r := acl.result({"resource": "Topic", "name": "reports-secret", "operation": "Read"}, "User:alice", "10.1.1.1")
	contains(r.reason, "DENY User:alice Read Topic:LITERAL reports-secret")
}
