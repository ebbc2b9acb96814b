package kguard.tenant_test

import data.kguard

decide(tenant, res, name, op) := r if {
	r := kguard.decision.results[0] with input as {
		"principal": "User:acme-app", "tenant": tenant, "client_host": "10.2.2.2",
		"api_key": 3, "actions": [{"resource": res, "name": name, "operation": op}], "details": {},
	}
}

allowed(tenant, res, name, op) if {
	kguard.decision.results[0].allowed with input as {
		"principal": "User:acme-app", "tenant": tenant, "client_host": "10.2.2.2",
		"api_key": 3, "actions": [{"resource": res, "name": name, "operation": op}], "details": {},
	}
}

test_own_topic if allowed("acme", "Topic", "acme.orders", "Write")

test_own_group if allowed("acme", "Group", "acme.billing", "Read")

test_own_txn if allowed("acme", "TransactionalId", "acme.tx-1", "Write")

# The ACLs allow acme-app to read globex.*; tenant isolation still forbids it.
test_other_tenant_topic_denied if not allowed("acme", "Topic", "globex.orders", "Read")

test_other_tenant_topic_allowed_without_tenant if allowed("", "Topic", "globex.orders", "Read")

test_other_tenant_describe_denied if not allowed("acme", "Topic", "globex.orders", "Describe")

test_other_txn_denied if not allowed("acme", "TransactionalId", "globex.tx", "Write")

test_unprefixed_group_denied if not allowed("acme", "Group", "billing", "Read")

# Cluster-wide listings would leak names: Describe Cluster is denied to
# tenants even though the ACLs grant it.
test_cluster_describe_denied_for_tenant if not allowed("acme", "Cluster", "kafka-cluster", "Describe")

test_cluster_describe_allowed_without_tenant if allowed("", "Cluster", "kafka-cluster", "Describe")

test_idempotent_write_allowed_for_tenant if allowed("acme", "Cluster", "kafka-cluster", "IdempotentWrite")

test_tenant_denial_reason if {
	r := decide("acme", "Topic", "globex.orders", "Read")
	contains(r.reason, `starting with "acme."`)
}

test_default_prefix_for_unlisted_tenant if {
	not allowed("initech", "Topic", "acme.orders", "Write")
	r := decide("initech", "Topic", "acme.orders", "Write")
	contains(r.reason, `"initech."`)
}

tenant_of(p) := t if {
	t := data.kguard.tenant.of with input as {"principal": p}
}

test_mapping_exact if tenant_of("User:acme-app") == "acme"

test_mapping_exact_beats_prefix if tenant_of("User:acme-admin-x") == "globex"

test_mapping_longest_prefix if tenant_of("User:acme-admin-7") == "acme-admins"

test_mapping_prefix if tenant_of("User:globex-batch") == "globex"

test_mapping_none if tenant_of("User:alice") == ""

test_mapping_without_data if {
	t := data.kguard.tenant.of with input as {"principal": "User:acme-app"} with data.config.principal_tenants as {}
	t == ""
}
