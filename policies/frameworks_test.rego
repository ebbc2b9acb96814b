package kguard.frameworks_test

# The shipped topic classes for Kafka Streams, Kafka Connect and
# MirrorMaker 2 (policies/config/safeguards.json), with the ACLs of the
# recipes in docs/policy.md.

import data.kguard

# The Streams recipe for application id "wordcount" run as User:wc, and a
# tenant application acme.wc run as User:acme-wc (tenant acme).
recipe_acls := {"frameworks": [
	{"principal": "User:wc", "resource": "Group", "pattern": "PREFIXED", "name": "wordcount", "operation": "Read"},
	{"principal": "User:wc", "resource": "Topic", "pattern": "PREFIXED", "name": "wordcount-", "operation": "All"},
	{"principal": "User:acme-wc", "resource": "Group", "pattern": "PREFIXED", "name": "acme.wc", "operation": "Read"},
	{"principal": "User:acme-wc", "resource": "Group", "pattern": "LITERAL", "name": "wc", "operation": "Read"},
	{"principal": "User:caps", "resource": "Group", "pattern": "LITERAL", "name": "WordCount", "operation": "Read"},
]}

t(name, parts, rf, configs) := {"name": name, "partitions": parts, "replication_factor": rf, "configs": configs, "assignments": false}

create(principal, tenant, topics) := vs if {
	vs := kguard.decision.violations with input as {
		"principal": principal, "tenant": tenant, "client_host": "10.1.1.1", "api_key": 19,
		"actions": [], "details": {"topics": topics, "validate_only": false},
	}
		with data.acls as recipe_acls
}

heartbeat(principal, group, topics) := vs if {
	vs := kguard.decision.violations with input as {
		"principal": principal, "tenant": "", "client_host": "10.1.1.1", "api_key": 88,
		"actions": [{"resource": "Group", "name": group, "operation": "Read"}],
		"details": {"internal_topics": topics},
	}
		with data.acls as recipe_acls
}

alter(principal, resources) := vs if {
	vs := kguard.decision.violations with input as {
		"principal": principal, "tenant": "", "client_host": "h", "api_key": 44,
		"actions": [], "details": {"resources": resources},
	}
		with data.acls as recipe_acls
}

messages(vs) := {v.message | some v in vs}

# What Kafka Streams 4.x asks for (InternalTopicManager): a compacted
# changelog, a windowed changelog (compact,delete), a repartition topic
# with infinite retention (Streams purges it with DeleteRecords), a
# foreign-key join subscription topic; replication factor -1.
changelog := t("wordcount-KSTREAM-AGGREGATE-STATE-STORE-0000000003-changelog", 3, -1, {"cleanup.policy": "compact", "message.timestamp.type": "CreateTime"})

windowed := t("wordcount-counts-per-minute-changelog", 3, -1, {"cleanup.policy": "compact,delete", "retention.ms": "86460000", "message.timestamp.type": "CreateTime"})

repartition := t("wordcount-KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition", 3, -1, {"cleanup.policy": "delete", "retention.ms": "-1", "segment.bytes": "52428800", "message.timestamp.type": "CreateTime"})

fk_subscription := t("wordcount-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic", 3, -1, {"cleanup.policy": "delete", "retention.ms": "-1"})

streams_topics := [changelog, windowed, repartition, fk_subscription]

test_streams_internal_topics_of_own_application_pass if create("User:wc", "", streams_topics) == []

test_streams_internal_topics_by_heartbeat_pass if heartbeat("User:wc", "wordcount", [
	t(changelog.name, 0, -1, changelog.configs),
	t(repartition.name, 0, -1, repartition.configs),
]) == []

# Without the application's group the names are ordinary topics: every
# safeguard applies (naming, compaction, infinite retention).
test_streams_internal_topics_of_other_application_refused if {
	ms := messages(create("User:acme-wc", "", [changelog, repartition]))
	sprintf("topic name %q does not follow the naming convention ^[a-z0-9]+([._-][a-z0-9]+)*$", [changelog.name]) in ms
	"cleanup.policy compact is not allowed for event topics (allowed: delete)" in ms
	"retention.ms -1 (infinite) is not allowed" in ms
}

test_streams_heartbeat_of_other_principal_refused if {
	ms := messages(heartbeat("User:nobody", "wordcount", [t(changelog.name, 0, -1, changelog.configs)]))
	"cleanup.policy compact is not allowed for event topics (allowed: delete)" in ms
}

# The other safeguards still hold for the streams classes.
test_streams_repartition_may_not_be_compacted if {
	messages(create("User:wc", "", [t("wordcount-x-repartition", 3, -1, {"cleanup.policy": "compact"})])) == {"cleanup.policy compact is not allowed for streams-repartition topics (allowed: delete)"}
}

test_streams_changelog_infinite_retention_refused if {
	messages(create("User:wc", "", [t("wordcount-store-changelog", 3, -1, {"cleanup.policy": "compact,delete", "retention.ms": "-1"})])) == {"retention.ms -1 (infinite) is not allowed"}
}

test_streams_repartition_retention_bounds_kept if {
	messages(create("User:wc", "", [t("wordcount-x-repartition", 3, -1, {"retention.ms": "1000"})])) == {"retention.ms 1000 is below the minimum 3600000"}
}

test_streams_low_replication_refused if {
	messages(create("User:wc", "", [t(changelog.name, 3, 1, changelog.configs)])) == {"replication factor 1 is below the minimum 3"}
}

test_streams_partition_ceiling_kept if {
	messages(create("User:wc", "", [t(repartition.name, 100, -1, repartition.configs)])) == {"100 partitions exceed the ceiling of 64"}
}

# The application id must follow the naming convention, the generated rest
# need not.
test_streams_application_id_follows_convention if {
	messages(create("User:caps", "", [t("WordCount-store-changelog", 3, -1, {"cleanup.policy": "compact"})])) == {"topic name \"WordCount-store-changelog\": its application id (WordCount) does not follow the naming convention ^[a-z0-9]+([._-][a-z0-9]+)*$"}
}

# The owning group is decided as a Read Group action: tenant isolation
# applies (acme-wc's LITERAL grant on "wc" is outside its tenant prefix).
test_streams_owner_within_tenant if {
	create("User:acme-wc", "acme", [t("acme.wc-KSTREAM-AGGREGATE-STATE-STORE-0000000001-changelog", 3, -1, {"cleanup.policy": "compact"})]) == []
	"cleanup.policy compact is not allowed for event topics (allowed: delete)" in messages(create("User:acme-wc", "acme", [t("wc-store-changelog", 3, -1, {"cleanup.policy": "compact"})]))
}

# A streams-changelog name with no dash before the suffix has no owner.
test_streams_changelog_needs_application_prefix if {
	"cleanup.policy compact is not allowed for event topics (allowed: delete)" in messages(create("User:wc", "", [t("wordcount-changelog", 3, -1, {"cleanup.policy": "compact"})]))
}

test_streams_owner_may_compact_its_changelog_later if {
	alter("User:wc", [{"type": "Topic", "name": changelog.name, "configs": {"cleanup.policy": "compact"}, "ops": [{"name": "cleanup.policy", "op": "SET", "value": "compact"}]}]) == []
}

# ---- Kafka Connect (distributed worker) ----

test_connect_internal_topics_pass if {
	create("User:connect", "", [
		t("connect-configs", 1, -1, {"cleanup.policy": "compact"}),
		t("connect-offsets", 25, -1, {"cleanup.policy": "compact"}),
		t("connect-status", 5, -1, {"cleanup.policy": "compact"}),
		t("payments-connect-offsets", 25, 3, {"cleanup.policy": "compact"}),
	]) == []
}

test_connect_internal_topics_keep_other_safeguards if {
	messages(create("User:connect", "", [t("connect-offsets", 25, 2, {"cleanup.policy": "compact"})])) == {"replication factor 2 is below the minimum 3"}
	messages(create("User:connect", "", [t("connect-status", 5, 3, {"cleanup.policy": "delete"})])) == {"cleanup.policy delete is not allowed for connect-internal topics (allowed: compact)"}
}

# ---- MirrorMaker 2 (source alias "primary", target "backup") ----

test_mm2_internal_topics_pass if {
	create("User:mm2", "", [
		t("mm2-configs.primary.internal", 1, -1, {"cleanup.policy": "compact"}),
		t("mm2-offsets.primary.internal", 25, -1, {"cleanup.policy": "compact"}),
		t("mm2-status.primary.internal", 5, -1, {"cleanup.policy": "compact"}),
		t("mm2-offset-syncs.backup.internal", 1, 3, {"cleanup.policy": "compact"}),
		t("primary.checkpoints.internal", 1, 3, {"cleanup.policy": "compact"}),
		t("heartbeats", 1, 3, {"cleanup.policy": "compact"}),
		t("primary.heartbeats", 1, 3, {"cleanup.policy": "compact"}),
	]) == []
}

test_mm2_mirrored_topic_is_an_event_topic if {
	messages(create("User:mm2", "", [t("primary.orders", 3, 3, {"cleanup.policy": "compact"})])) == {"cleanup.policy compact is not allowed for event topics (allowed: delete)"}
}

# MM2's topic-config sync DELETEs every setting that is a default on the
# source topic. With the cluster's defaults listed, a DELETE is checked as
# a SET of the default; without them it is refused.
mm2_sync := [{"type": "Topic", "name": "primary.orders", "configs": {}, "ops": [
	{"name": "retention.ms", "op": "DELETE", "value": null},
	{"name": "cleanup.policy", "op": "DELETE", "value": null},
	{"name": "segment.bytes", "op": "DELETE", "value": null},
]}]

cluster_defaults := {"replication_factor": 3, "num_partitions": 3, "topic_configs": {"retention.ms": "604800000", "cleanup.policy": "delete", "min.insync.replicas": "2"}}

test_mm2_config_sync_deletes_with_known_defaults if {
	alter("User:mm2", mm2_sync) == [] with data.config.safeguards.broker_defaults as cluster_defaults
}

test_mm2_config_sync_deletes_without_known_defaults if {
	messages(alter("User:mm2", mm2_sync)) == {
		"retention.ms may not be deleted (reset to the broker default)",
		"cleanup.policy may not be deleted (reset to the broker default)",
	}
}

test_delete_to_a_bad_default_refused if {
	vs := alter("User:mm2", [{"type": "Topic", "name": "primary.checkpoints.internal", "configs": {}, "ops": [{"name": "cleanup.policy", "op": "DELETE", "value": null}]}]) with data.config.safeguards.broker_defaults as cluster_defaults
	messages(vs) == {"deleting cleanup.policy resets it to the broker default: cleanup.policy delete is not allowed for mm2-checkpoints topics (allowed: compact)"}
	low := object.union(cluster_defaults, {"topic_configs": {"min.insync.replicas": "1"}})
	vs2 := alter("User:mm2", [{"type": "Topic", "name": "primary.orders", "configs": {}, "ops": [{"name": "min.insync.replicas", "op": "DELETE", "value": null}]}]) with data.config.safeguards.broker_defaults as low
	messages(vs2) == {"deleting min.insync.replicas resets it to the broker default: min.insync.replicas 1 is below the minimum 2"}
}
