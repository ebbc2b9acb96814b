# kguard's authorization entry point.
#
# The engine evaluates data.kguard.decision once per request. Input document:
# see docs/policy.md. Output:
#   {"results": [{"allowed": bool, "reason": string}, ...]   one per input action, same order
#    "violations": [{"resource", "name", "message"}]          safeguard denials (POLICY_VIOLATION)
#    "reasons": [string]}                                     optional: extra request-level reasons
#
# Per-action results are cached by the engine keyed on (principal, tenant,
# client host, action, policy revision): the rules below that decide an
# action must depend only on those (and data), never on other input fields.
package kguard

import data.kguard.acl
import data.kguard.safeguards
import data.kguard.tenant

default kguard_principal := "User:kguard"

kguard_principal := data.config.kguard.principal

default audit_topic := "__kguard_audit"

audit_topic := data.config.kguard.audit_topic

# Operations on the audit topic reserved to kguard's own principal.
audit_reserved_ops := {"Write", "Delete", "Alter", "AlterConfigs", "All"}

audit_denial(a) := sprintf("only %s may %s the audit topic %s", [kguard_principal, a.operation, audit_topic]) if {
	a.resource == "Topic"
	a.name == audit_topic
	a.operation in audit_reserved_ops
	input.principal != kguard_principal
}

# unnamed_denial: a topic kguard could not name (an id it cannot resolve,
# "topic-id:<hex>", or a subscription regex the broker resolves with
# kguard's own rights, "topic-regex:<expr>") is denied to everybody but
# super users, whatever the ACLs: no PREFIXED, wildcard or DENY ACL can be
# matched against a topic whose name is not known.
unnamed_denial(a) := sprintf("topic id %s is not known to kguard", [trim_prefix(a.name, "topic-id:")]) if {
	a.resource == "Topic"
	startswith(a.name, "topic-id:")
	not input.principal in acl.super_users
} else := sprintf("a topic regex (%s) cannot be authorized per topic through kguard: subscribe by name", [trim_prefix(a.name, "topic-regex:")]) if {
	a.resource == "Topic"
	startswith(a.name, "topic-regex:")
	not input.principal in acl.super_users
}

# action_result decides one action: the audit-topic rule, topics kguard
# cannot name, then tenant isolation, then Kafka ACL semantics.
action_result(a) := {"allowed": false, "reason": r} if {
	r := audit_denial(a)
} else := {"allowed": false, "reason": r} if {
	r := unnamed_denial(a)
} else := {"allowed": false, "reason": r} if {
	r := tenant.denial(a)
} else := acl.result(a, input.principal, input.client_host)

# safeguard_apis are the API keys whose requests the safeguards examine
# (Produce, CreateTopics, AlterConfigs, CreatePartitions,
# IncrementalAlterConfigs); add a key here when adding a safeguard for it.
safeguard_apis := {0, 19, 33, 37, 44}

# precompute holds input-independent values that the engine evaluates once
# per policy revision and stores at data.kguard_precomputed.
precompute := {"ready": true, "acl_index": acl.computed_index}

decision := {
	"results": [action_result(a) | some a in input.actions],
	"violations": [v | input.api_key in safeguard_apis; some v in safeguards.violations],
}
