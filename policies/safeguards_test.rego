package kguard.safeguards_test

import data.kguard

topic(name, parts, rf, configs) := {"name": name, "partitions": parts, "replication_factor": rf, "configs": configs, "assignments": false}

create(topics) := vs if {
	vs := kguard.decision.violations with input as {
		"principal": "User:ops", "tenant": "", "client_host": "10.4.4.4", "api_key": 19,
		"actions": [], "details": {"topics": topics, "validate_only": false},
	}
}

messages(vs) := {v.message | some v in vs}

test_good_topic_passes if create([topic("orders.v1", 12, 3, {"min.insync.replicas": "2", "retention.ms": "604800000"})]) == []

test_broker_default_rf_passes if create([topic("orders", -1, -1, {})]) == []

test_low_replication_factor if {
	vs := create([topic("orders", 3, 2, {})])
	count(vs) == 1
	vs[0].resource == "Topic"
	vs[0].name == "orders"
	vs[0].message == "replication factor 2 is below the minimum 3"
}

test_broker_default_rf_checked if {
	vs := create([topic("orders", 3, -1, {})]) with data.config.safeguards.broker_defaults.replication_factor as 1
	"replication factor 1 is below the minimum 3" in messages(vs)
}

test_partition_ceiling if "100 partitions exceed the ceiling of 64" in messages(create([topic("orders", 100, 3, {})]))

test_naming_convention if {
	vs := create([topic("Bad_Name", 3, 3, {})])
	count(vs) == 1
	startswith(vs[0].message, "topic name \"Bad_Name\" does not follow the naming convention")
}

test_min_isr if "min.insync.replicas 1 is below the minimum 2" in messages(create([topic("orders", 3, 3, {"min.insync.replicas": "1"})]))

test_retention_too_short if "retention.ms 1000 is below the minimum 3600000" in messages(create([topic("orders", 3, 3, {"retention.ms": "1000"})]))

test_retention_too_long if "retention.ms 9999999999 is above the maximum 2592000000" in messages(create([topic("orders", 3, 3, {"retention.ms": "9999999999"})]))

test_retention_infinite if "retention.ms -1 (infinite) is not allowed" in messages(create([topic("orders", 3, 3, {"retention.ms": "-1"})]))

test_retention_infinite_allowed_by_data if {
	create([topic("orders", 3, 3, {"retention.ms": "-1"})]) == [] with data.config.safeguards.retention_ms.allow_infinite as true
}

test_cleanup_policy_for_event_topic if {
	vs := create([topic("orders", 3, 3, {"cleanup.policy": "compact"})])
	messages(vs) == {"cleanup.policy compact is not allowed for event topics (allowed: delete)"}
}

test_cleanup_policy_for_state_topic if create([topic("billing.state.accounts", 3, 3, {"cleanup.policy": "compact"})]) == []

test_cleanup_policy_list if {
	vs := create([topic("billing.state.accounts", 3, 3, {"cleanup.policy": "compact,delete"})])
	messages(vs) == {"cleanup.policy delete is not allowed for state topics (allowed: compact)"}
}

test_several_topics_several_violations if {
	vs := create([topic("ok", 3, 3, {}), topic("bad", 3, 1, {}), topic("Worse", 200, 3, {})])
	{v.name | some v in vs} == {"bad", "Worse"}
	count(vs) == 3
}

test_exempt_principal if {
	vs := kguard.decision.violations with input as {
		"principal": "User:kguard", "tenant": "", "client_host": "10.4.4.4", "api_key": 19,
		"actions": [], "details": {"topics": [topic("x", 1, 1, {})]},
	}
	vs == []
}

test_create_partitions_ceiling if {
	vs := kguard.decision.violations with input as {
		"principal": "User:ops", "api_key": 37, "actions": [], "client_host": "h", "tenant": "",
		"details": {"topics": [{"name": "orders", "count": 65}, {"name": "small", "count": 10}]},
	}
	vs == [{"resource": "Topic", "name": "orders", "message": "65 partitions exceed the ceiling of 64"}]
}

alter(key, resources) := vs if {
	vs := kguard.decision.violations with input as {
		"principal": "User:ops", "api_key": key, "actions": [], "client_host": "h", "tenant": "",
		"details": {"resources": resources},
	}
}

test_alter_configs_topic if {
	vs := alter(33, [{"type": "Topic", "name": "orders", "configs": {"min.insync.replicas": "1"}, "ops": []}])
	vs == [{"resource": "Topic", "name": "orders", "message": "min.insync.replicas 1 is below the minimum 2"}]
}

test_alter_configs_broker if {
	vs := alter(33, [{"type": "Broker", "name": "1", "configs": {"min.insync.replicas": "1"}, "ops": []}])
	vs == [{"resource": "Cluster", "name": "1", "message": "min.insync.replicas 1 is below the minimum 2"}]
}

test_incremental_set_checked if {
	vs := alter(44, [{"type": "Topic", "name": "orders", "configs": {"retention.ms": "5"}, "ops": [{"name": "retention.ms", "op": "SET", "value": "5"}]}])
	messages(vs) == {"retention.ms 5 is below the minimum 3600000"}
}

test_incremental_delete_guarded if {
	vs := alter(44, [{"type": "Topic", "name": "orders", "configs": {}, "ops": [{"name": "min.insync.replicas", "op": "DELETE", "value": null}]}])
	messages(vs) == {"min.insync.replicas may not be deleted (reset to the broker default)"}
}

test_alter_good_configs if alter(44, [{"type": "Topic", "name": "orders", "configs": {"min.insync.replicas": "2"}, "ops": [{"name": "min.insync.replicas", "op": "SET", "value": "2"}]}]) == []

produce(acks, idempotent, topics) := vs if {
	vs := kguard.decision.violations with input as {
		"principal": "User:alice", "api_key": 0, "client_host": "h", "tenant": "",
		"actions": [{"resource": "Topic", "name": t, "operation": "Write"} | some t in topics],
		"details": {"acks": acks, "idempotent": idempotent, "topics": topics},
	}
}

test_produce_acks1_to_durable_topic if {
	vs := produce(1, false, ["payments.cards", "orders"])
	vs == [{"resource": "Topic", "name": "payments.cards", "message": "topic payments.cards requires acks=all or an idempotent producer (acks=1)"}]
}

test_produce_tenant_durable_topic if count(produce(0, false, ["acme.payments.cards"])) == 1

test_produce_acks_all_ok if produce(-1, false, ["payments.cards"]) == []

test_produce_idempotent_ok if produce(1, true, ["payments.cards"]) == []

test_produce_other_topic_ok if produce(1, false, ["orders"]) == []
