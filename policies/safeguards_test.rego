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

# legacy(name, configs): a legacy AlterConfigs topic resource as Decompose builds it.
legacy(name, configs) := {"type": "Topic", "name": name, "configs": configs, "ops": [{"name": k, "op": "SET", "value": v} | some k, v in configs]}

good_topic_configs := {"min.insync.replicas": "2", "retention.ms": "604800000", "cleanup.policy": "delete"}

test_alter_configs_topic if {
	vs := alter(33, [legacy("orders", object.union(good_topic_configs, {"min.insync.replicas": "1"}))])
	vs == [{"resource": "Topic", "name": "orders", "message": "min.insync.replicas 1 is below the minimum 2"}]
}

test_alter_configs_topic_complete_set_passes if alter(33, [legacy("orders", good_topic_configs)]) == []

# A legacy AlterConfigs replaces the whole set: sending only retention.ms
# would reset min.insync.replicas (and cleanup.policy) to the broker default.
test_alter_configs_missing_guarded_is_a_delete if {
	vs := alter(33, [legacy("orders", {"retention.ms": "604800000"})])
	messages(vs) == {
		"min.insync.replicas is missing: AlterConfigs replaces every topic config, which would reset it to the broker default",
		"cleanup.policy is missing: AlterConfigs replaces every topic config, which would reset it to the broker default",
	}
}

test_alter_configs_empty_set_is_a_delete if count(alter(33, [legacy("orders", {})])) == 3

test_alter_configs_broker if {
	vs := alter(33, [{"type": "Broker", "name": "1", "configs": {"min.insync.replicas": "1"}, "ops": []}])
	vs == [{"resource": "Cluster", "name": "1", "message": "min.insync.replicas 1 is below the minimum 2"}]
}

test_alter_configs_broker_missing_min_isr if {
	vs := alter(33, [{"type": "Broker", "name": "", "configs": {"log.cleaner.threads": "2"}, "ops": [{"name": "log.cleaner.threads", "op": "SET", "value": "2"}]}])
	messages(vs) == {"min.insync.replicas is missing: AlterConfigs replaces every dynamic broker config, which would reset it to the broker default"}
}

# A key named twice: the bad value is found whichever comes last.
test_alter_configs_duplicate_key if {
	vs := alter(33, [{"type": "Topic", "name": "orders", "configs": good_topic_configs, "ops": [
		{"name": "min.insync.replicas", "op": "SET", "value": "1"},
		{"name": "min.insync.replicas", "op": "SET", "value": "2"},
		{"name": "retention.ms", "op": "SET", "value": "604800000"},
		{"name": "cleanup.policy", "op": "SET", "value": "delete"},
	]}])
	messages(vs) == {"min.insync.replicas 1 is below the minimum 2"}
}

# Kafka trims numbers before parsing them: so does the safeguard; anything
# that is not a plain integer is refused.
test_numbers_are_trimmed if {
	every v in [" 1", "1 ", "\t1\n", "+1", "01"] {
		messages(create([topic("orders", 3, 3, {"min.insync.replicas": v})])) == {"min.insync.replicas 1 is below the minimum 2"}
	}
	messages(create([topic("orders", 3, 3, {"retention.ms": " -1"})])) == {"retention.ms -1 (infinite) is not allowed"}
}

test_numbers_not_integers_are_violations if {
	every v in ["0x1", "1.5", "1e3", "", " ", "two", "1 2"] {
		messages(create([topic("orders", 3, 3, {"min.insync.replicas": v})])) == {sprintf("min.insync.replicas %s is not an integer", [json.marshal(v)])}
	}
	messages(create([topic("orders", 3, 3, {"retention.ms": "0x1"})])) == {"retention.ms \"0x1\" is not an integer"}
	messages(create([topic("orders", 3, 3, {"retention.ms": null})])) == {"retention.ms null is not an integer"}
	messages(create([topic("orders", 3, 3, {"cleanup.policy": null})])) == {"cleanup.policy null is not a list of policies"}
}

test_numbers_trimmed_good_values_pass if create([topic("orders", 3, 3, {"min.insync.replicas": " 2 ", "retention.ms": "604800000\n"})]) == []

test_alter_configs_number_not_integer if {
	vs := alter(44, [{"type": "Broker", "name": "1", "configs": {"min.insync.replicas": "0x1"}, "ops": [{"name": "min.insync.replicas", "op": "SET", "value": "0x1"}]}])
	messages(vs) == {"min.insync.replicas \"0x1\" is not an integer"}
}

test_incremental_append_checked if {
	vs := alter(44, [{"type": "Topic", "name": "orders", "configs": {"cleanup.policy": "compact"}, "ops": [{"name": "cleanup.policy", "op": "APPEND", "value": "compact"}]}])
	messages(vs) == {"cleanup.policy compact is not allowed for event topics (allowed: delete)"}
}

# The op alone is enough: configs need not repeat it.
test_incremental_append_checked_from_ops if {
	vs := alter(44, [{"type": "Topic", "name": "orders", "configs": {}, "ops": [{"name": "cleanup.policy", "op": "APPEND", "value": "compact"}]}])
	messages(vs) == {"cleanup.policy compact is not allowed for event topics (allowed: delete)"}
}

test_incremental_append_allowed_value_passes if {
	alter(44, [{"type": "Topic", "name": "orders", "configs": {"cleanup.policy": "delete"}, "ops": [{"name": "cleanup.policy", "op": "APPEND", "value": "delete"}]}]) == []
}

test_incremental_subtract_guarded if {
	vs := alter(44, [{"type": "Topic", "name": "billing.state.accounts", "configs": {}, "ops": [{"name": "cleanup.policy", "op": "SUBTRACT", "value": "compact"}]}])
	messages(vs) == {"cleanup.policy may not be changed with SUBTRACT (the resulting value cannot be checked)"}
}

test_incremental_subtract_unguarded_passes if {
	alter(44, [{"type": "Topic", "name": "orders", "configs": {}, "ops": [{"name": "follower.replication.throttled.replicas", "op": "SUBTRACT", "value": "0:1"}]}]) == []
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

# ---- Metadata auto-creation (3): the same rules as CreateTopics ----

metadata(principal, auto, names) := vs if {
	vs := kguard.decision.violations with input as {
		"principal": principal, "api_key": 3, "client_host": "h", "tenant": "",
		"actions": [{"resource": "Topic", "name": n, "operation": "Describe"} | some n in names],
		"details": {"auto_create": auto, "auto_create_topics": names},
	}
}

test_auto_create_naming_convention if {
	vs := metadata("User:alice", true, ["orders", "Bad_Name_AutoCreate"])
	count(vs) == 1
	vs[0].resource == "Topic"
	vs[0].name == "Bad_Name_AutoCreate"
	startswith(vs[0].message, "topic name \"Bad_Name_AutoCreate\" does not follow the naming convention")
}

test_auto_create_good_name_passes if metadata("User:alice", true, ["orders.v1"]) == []

test_auto_create_uses_broker_defaults if {
	vs := metadata("User:alice", true, ["orders"]) with data.config.safeguards.broker_defaults as {"replication_factor": 1, "num_partitions": 100}
	messages(vs) == {"replication factor 1 is below the minimum 3", "100 partitions exceed the ceiling of 64"}
}

# Without known broker defaults the replication factor cannot be checked:
# auto-creation is refused (fail closed).
test_auto_create_unknown_broker_defaults if {
	vs := metadata("User:alice", true, ["orders"]) with data.config.safeguards as {"min_replication_factor": 3, "max_partitions": 64}
	messages(vs) == {"replication factor -1 is below the minimum 3"}
}

test_metadata_without_auto_create_passes if metadata("User:alice", false, ["Bad_Name"]) == []

test_auto_create_exempt if metadata("User:kguard", true, ["Bad_Name"]) == []

# ---- StreamsGroupHeartbeat (88): the internal topics the broker creates ----

streams(principal, topics) := vs if {
	vs := kguard.decision.violations with input as {
		"principal": principal, "api_key": 88, "client_host": "h", "tenant": "",
		"actions": [{"resource": "Group", "name": "app", "operation": "Read"}],
		"details": {"internal_topics": topics},
	}
}

test_streams_internal_topics_checked if {
	vs := streams("User:alice", [
		topic("APP-KSTREAM-REDUCE-STATE-STORE-changelog", 0, -1, {"cleanup.policy": "compact"}),
		topic("app-repartition", 6, -1, {"retention.ms": "-1", "cleanup.policy": "delete"}),
	])
	messages(vs) == {
		"topic name \"APP-KSTREAM-REDUCE-STATE-STORE-changelog\" does not follow the naming convention ^[a-z0-9]+([._-][a-z0-9]+)*$",
		"cleanup.policy compact is not allowed for event topics (allowed: delete)",
		"retention.ms -1 (infinite) is not allowed",
	}
}

test_streams_good_internal_topics_pass if {
	streams("User:alice", [topic("billing.state.totals", 0, -1, {"cleanup.policy": "compact"}), topic("billing.rekeyed", 0, 3, {})]) == []
}

test_streams_internal_low_replication if {
	messages(streams("User:alice", [topic("billing.rekeyed", 0, 1, {})])) == {"replication factor 1 is below the minimum 3"}
}

test_streams_exempt if streams("User:kguard", [topic("BAD", 0, 1, {})]) == []

# The cluster's topic config defaults, when listed, apply to every new topic
# that does not set them (CreateTopics, auto-creation, streams topics).
test_broker_default_topic_configs_checked if {
	defaults := {"replication_factor": 3, "num_partitions": 3, "topic_configs": {"min.insync.replicas": "1"}}
	messages(create([topic("orders", 3, 3, {})])) == {"min.insync.replicas 1 is below the minimum 2"} with data.config.safeguards.broker_defaults as defaults
	create([topic("orders", 3, 3, {"min.insync.replicas": "2"})]) == [] with data.config.safeguards.broker_defaults as defaults
	messages(metadata("User:alice", true, ["orders"])) == {"min.insync.replicas 1 is below the minimum 2"} with data.config.safeguards.broker_defaults as defaults
}
