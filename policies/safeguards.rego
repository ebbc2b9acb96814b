# Safeguards: requests that are authorized but break the platform's rules are
# refused with POLICY_VIOLATION and the message of each violation.
#
# Settings (data.config.safeguards), all optional:
#   exempt_principals        principals the safeguards do not apply to
#   min_replication_factor   CreateTopics (a -1 request uses broker_defaults.replication_factor)
#   min_insync_replicas      CreateTopics, AlterConfigs, IncrementalAlterConfigs (topic and broker)
#   topic_name_pattern       regex every new topic name must match (CreateTopics, auto-creation)
#   max_partitions           ceiling for CreateTopics and CreatePartitions
#   retention_ms             {"min": ms, "max": ms, "allow_infinite": bool}
#   topic_classes            [{"name", "pattern" (regex on the topic name), "cleanup_policy": [allowed],
#                              optional: "owner": "group" (the class applies only to a name
#                              "<group>-<rest>" for a group the principal may Read: a Kafka
#                              Streams application id), "name_pattern" (regex replacing
#                              topic_name_pattern for the class; with an owner it is matched
#                              against the owning group, not the generated name),
#                              "retention_ms" (merged over retention_ms for the class)}],
#                            the first class that applies decides (frameworks: docs/policy.md)
#   durable_produce_topics   regexes: Produce to a matching topic needs acks=all (-1) or an idempotent producer
#   broker_defaults          {"replication_factor", "num_partitions"} used for -1 in CreateTopics
#                            (and auto-creation, streams internal topics); "topic_configs": the
#                            cluster's topic config defaults a new topic gets unless it sets them
package kguard.safeguards

default cfg := {}

cfg := data.config.safeguards

exempt if input.principal in object.get(cfg, "exempt_principals", [])

violation(resource, name, msg) := {"resource": resource, "name": name, "message": msg}

broker_defaults := object.get(cfg, "broker_defaults", {})

effective_rf(t) := rf if {
	t.replication_factor == -1
	rf := object.get(broker_defaults, "replication_factor", -1)
} else := t.replication_factor

effective_partitions(t) := n if {
	t.partitions == -1
	n := object.get(broker_defaults, "num_partitions", -1)
} else := t.partitions

# ---- CreateTopics (19) ----

create_topics contains t if {
	input.api_key == 19
	not exempt
	some t in input.details.topics
}

# The internal topics a Kafka Streams topology names (StreamsGroupHeartbeat,
# KIP-1071) are created by the broker itself: the same rules. Partitions 0
# means derived from the (existing) source topics.
create_topics contains t if {
	input.api_key == 88
	not exempt
	some t in input.details.internal_topics
}

# A topic the broker would auto-create for a Metadata request must meet the
# same rules, with the broker's defaults (partitions, replication factor,
# no topic config).
create_topics contains {"name": name, "partitions": -1, "replication_factor": -1, "configs": {}} if {
	input.api_key == 3
	not exempt
	input.details.auto_create
	some name in input.details.auto_create_topics
}

violations contains violation("Topic", t.name, msg) if {
	some t in create_topics
	some msg in name_problems(t.name)
}

violations contains violation("Topic", t.name, msg) if {
	some t in create_topics
	lo := cfg.min_replication_factor
	rf := effective_rf(t)
	rf < lo
	msg := sprintf("replication factor %d is below the minimum %d", [rf, lo])
}

violations contains violation("Topic", t.name, msg) if {
	some t in create_topics
	hi := cfg.max_partitions
	n := effective_partitions(t)
	n > hi
	msg := sprintf("%d partitions exceed the ceiling of %d", [n, hi])
}

# A new topic gets the broker's topic config defaults for what it does not
# set: broker_defaults.topic_configs (when the operator lists them) are
# checked with the request's own configs.
violations contains violation("Topic", t.name, msg) if {
	some t in create_topics
	configs := object.union(object.get(broker_defaults, "topic_configs", {}), object.get(t, "configs", {}))
	some msg in config_problems(t.name, configs)
}

# ---- CreatePartitions (37) ----

violations contains violation("Topic", t.name, msg) if {
	input.api_key == 37
	not exempt
	some t in input.details.topics
	hi := cfg.max_partitions
	t.count > hi
	msg := sprintf("%d partitions exceed the ceiling of %d", [t.count, hi])
}

# ---- AlterConfigs (33) and IncrementalAlterConfigs (44) ----

altered contains r if {
	input.api_key in {33, 44}
	not exempt
	some r in input.details.resources
}

violations contains violation("Topic", r.name, msg) if {
	some r in altered
	r.type == "Topic"
	some msg in config_problems(r.name, r.configs)
}

# Every value set or appended is checked on its own, so that a key named
# twice in one resource cannot hide a bad value behind a good one.
violations contains violation("Topic", r.name, msg) if {
	some r in altered
	r.type == "Topic"
	some op in r.ops
	op.op in {"SET", "APPEND"}
	some msg in config_problems(r.name, {op.name: op.value})
}

violations contains violation("Cluster", r.name, msg) if {
	some r in altered
	r.type == "Broker"
	some msg in min_isr_problems(r.configs)
}

violations contains violation("Cluster", r.name, msg) if {
	some r in altered
	r.type == "Broker"
	some op in r.ops
	op.op in {"SET", "APPEND"}
	some msg in min_isr_problems({op.name: op.value})
}

# Deleting a guarded setting reverts it to the broker default, which the
# safeguard cannot see: refuse it.
guarded_configs := {"min.insync.replicas", "retention.ms", "cleanup.policy"}

# When the operator lists the cluster's default for the setting
# (broker_defaults.topic_configs), the default is visible: the DELETE is
# checked as a SET of it (MirrorMaker 2's topic-config sync deletes the
# settings that are defaults on the source topic).
violations contains violation("Topic", r.name, msg) if {
	some r in altered
	r.type == "Topic"
	some op in r.ops
	op.op == "DELETE"
	op.name in guarded_configs
	some msg in delete_problems(r.name, op.name)
}

delete_problems(name, key) := {sprintf("deleting %s resets it to the broker default: %s", [key, m]) |
	some m in config_problems(name, {key: d})
} if {
	d := object.get(broker_defaults, "topic_configs", {})[key]
} else := {sprintf("%s may not be deleted (reset to the broker default)", [key])}

# SUBTRACT leaves a value the safeguard cannot see (what remains of the
# topic's list): refuse it on a guarded setting.
violations contains violation("Topic", r.name, msg) if {
	some r in altered
	r.type == "Topic"
	some op in r.ops
	op.op == "SUBTRACT"
	op.name in guarded_configs
	msg := sprintf("%s may not be changed with SUBTRACT (the resulting value cannot be checked)", [op.name])
}

# A legacy AlterConfigs (33) replaces the resource's whole set of dynamic
# configs: a guarded setting it leaves out is deleted (reset to the broker
# default), so it must be named, with an acceptable value.
violations contains violation("Topic", r.name, msg) if {
	some r in altered
	input.api_key == 33
	r.type == "Topic"
	some name in guarded_configs
	not name in object.keys(r.configs)
	msg := sprintf("%s is missing: AlterConfigs replaces every topic config, which would reset it to the broker default", [name])
}

violations contains violation("Cluster", r.name, msg) if {
	some r in altered
	input.api_key == 33
	r.type == "Broker"
	_ := cfg.min_insync_replicas
	not "min.insync.replicas" in object.keys(r.configs)
	msg := "min.insync.replicas is missing: AlterConfigs replaces every dynamic broker config, which would reset it to the broker default"
}

# ---- Produce (0) ----

violations contains violation("Topic", topic, msg) if {
	input.api_key == 0
	not exempt
	input.details.acks != -1
	not input.details.idempotent
	some topic in input.details.topics
	some pat in object.get(cfg, "durable_produce_topics", [])
	regex.match(pat, topic)
	msg := sprintf("topic %s requires acks=all or an idempotent producer (acks=%d)", [topic, input.details.acks])
}

# ---- topic config checks, shared ----

config_problems(name, configs) := (min_isr_problems(configs) | retention_problems(name, configs)) | cleanup_problems(name, configs)

# java_space is what Java's String.trim removes (every char up to U+0020):
# Kafka trims a number before parsing it, and so does the safeguard.
java_space := "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f\u0020"

# number(v) is the integer Kafka reads from the config value v (trimmed,
# optional sign, decimal digits); undefined for anything else.
number(v) := to_number(trim_prefix(t, "+")) if {
	is_string(v)
	t := trim(v, java_space)
	regex.match(`^[+-]?[0-9]+$`, t)
}

# A guarded numeric setting that is not a plain integer is a violation: what
# the broker would make of it cannot be checked.
not_a_number(key, configs) := {sprintf("%s %s is not an integer", [key, json.marshal(v)])} if {
	v := configs[key]
	not number(v)
} else := set()

min_isr_problems(configs) := not_a_number("min.insync.replicas", configs) | {msg |
	v := configs["min.insync.replicas"]
	lo := cfg.min_insync_replicas
	n := number(v)
	n < lo
	msg := sprintf("min.insync.replicas %d is below the minimum %d", [n, lo])
}

retention_problems(name, configs) := not_a_number("retention.ms", configs) | {msg |
	v := configs["retention.ms"]
	n := number(v)
	some msg in retention_msgs(class_retention(name), n)
}

retention := object.get(cfg, "retention_ms", {})

# class_retention: the retention rules for a topic, its class's over the
# global ones.
class_retention(name) := object.union(retention, cls.retention_ms) if {
	cls := topic_class(name)
	is_object(cls.retention_ms)
} else := retention

retention_msgs(ret, n) := {"retention.ms -1 (infinite) is not allowed"} if {
	n == -1
	not object.get(ret, "allow_infinite", false)
} else := {sprintf("retention.ms %d is below the minimum %d", [n, ret.min])} if {
	n >= 0
	n < ret.min
} else := {sprintf("retention.ms %d is above the maximum %d", [n, ret.max])} if {
	n > ret.max
} else := set()

# ---- topic classes ----

# owner_groups(c, name): the groups g the principal may Read (as the ACL
# and tenant rules decide a Read Group action) for which name is
# "<g>-<rest>" and rest still matches the class pattern. A Kafka Streams
# application's id is its group, and its internal topics are
# "<application.id>-<name>-changelog" / "-repartition".
owner_groups(c, name) := {g |
	parts := split(name, "-")
	some i in numbers.range(1, count(parts) - 1)
	g := concat("-", array.slice(parts, 0, i))
	g != ""
	regex.match(c.pattern, concat("-", array.slice(parts, i, count(parts))))
	data.kguard.action_result({"resource": "Group", "name": g, "operation": "Read"}).allowed
}

class_applies(c, name) if {
	regex.match(c.pattern, name)
	not c.owner
}

class_applies(c, name) if {
	regex.match(c.pattern, name)
	c.owner == "group"
	count(owner_groups(c, name)) > 0
}

topic_class(name) := cls if {
	classes := object.get(cfg, "topic_classes", [])
	idx := [i | some i, c in classes; class_applies(c, name)]
	count(idx) > 0
	cls := classes[idx[0]]
}

# name_problems(name): the naming convention, or the class's own. For a
# class with an owner the convention is the owning group's (the rest of
# the name is generated by the framework, e.g. Kafka Streams' upper-case
# KSTREAM-AGGREGATE-STATE-STORE-0000000003): some owning group must follow
# it.
name_problems(name) := {msg |
	cls := topic_class(name)
	cls.owner == "group"
	pat := object.get(cls, "name_pattern", cfg.topic_name_pattern)
	owners := owner_groups(cls, name)
	not any_matches(pat, owners)
	msg := sprintf("topic name %q: its application id (%s) does not follow the naming convention %s", [name, concat(", ", sort(owners)), pat])
} if {
	topic_class(name).owner
} else := {msg |
	pat := object.get(topic_class(name), "name_pattern", cfg.topic_name_pattern)
	not regex.match(pat, name)
	msg := sprintf("topic name %q does not follow the naming convention %s", [name, pat])
} if {
	topic_class(name)
} else := {msg |
	pat := cfg.topic_name_pattern
	not regex.match(pat, name)
	msg := sprintf("topic name %q does not follow the naming convention %s", [name, pat])
}

any_matches(pat, names) if {
	some n in names
	regex.match(pat, n)
}

cleanup_problems(name, configs) := {msg |
	v := configs["cleanup.policy"]
	not is_string(v)
	msg := sprintf("cleanup.policy %s is not a list of policies", [json.marshal(v)])
} | {msg |
	v := configs["cleanup.policy"]
	cls := topic_class(name)
	some part in split(v, ",")
	p := trim_space(part)
	not p in cls.cleanup_policy
	msg := sprintf("cleanup.policy %s is not allowed for %s topics (allowed: %s)", [p, cls.name, concat(",", cls.cleanup_policy)])
}
