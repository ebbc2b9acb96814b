# Kafka ACL semantics over data.acls.
#
# data.acls is an object of named ACL lists, so that several data files can
# contribute lists without conflict: {"<list name>": [acl, ...]}. One ACL:
#   {"principal": "User:alice" | "User:*",
#    "host": "10.0.0.1" | "*",                       (default "*")
#    "resource": "Topic" | "Group" | "Cluster" | "TransactionalId" | "DelegationToken",
#    "pattern": "LITERAL" | "PREFIXED",               (default "LITERAL")
#    "name": "orders" | "*" (LITERAL only) | "orders-" (PREFIXED),
#    "operation": "Read" | "Write" | ... | "All",
#    "permission": "ALLOW" | "DENY"}
#
# Settings (data.config.acl): super_users (list of principals),
# allow_everyone_if_no_acl_found (default false).
#
# Order, as Kafka's authorizer: super users allow; a matching DENY denies; a
# matching ALLOW allows (ALLOW Read/Write/Delete/Alter imply Describe, ALLOW
# AlterConfigs implies DescribeConfigs); when no ACL at all matches the
# resource, allow_everyone_if_no_acl_found decides; else deny.
package kguard.acl

default settings := {}

settings := data.config.acl

super_users := {u | some u in object.get(settings, "super_users", [])}

allow_everyone_if_no_acl_found := object.get(settings, "allow_everyone_if_no_acl_found", false)

acls contains acl if {
	some list in data.acls
	some acl in list
}

permission(acl) := upper(object.get(acl, "permission", "ALLOW"))

pattern(acl) := upper(object.get(acl, "pattern", "LITERAL"))

principal_matches(acl, _) if acl.principal == "User:*"

principal_matches(acl, p) if acl.principal == p

host_matches(acl, _) if object.get(acl, "host", "*") == "*"

host_matches(acl, h) if acl.host == h

name_matches(acl, name) if {
	pattern(acl) == "LITERAL"
	acl.name == name
}

name_matches(acl, _) if {
	pattern(acl) == "LITERAL"
	acl.name == "*"
}

name_matches(acl, name) if {
	pattern(acl) == "PREFIXED"
	acl.name != ""
	startswith(name, acl.name)
}

resource_matches(acl, a) if {
	acl.resource == a.resource
	name_matches(acl, a.name)
}

applies(acl, a, p, h) if {
	resource_matches(acl, a)
	principal_matches(acl, p)
	host_matches(acl, h)
}

# DENY matches the operation exactly or All.
deny_op(acl, _) if acl.operation == "All"

deny_op(acl, op) if acl.operation == op

# ALLOW matches the operation, All, or an operation that implies it.
allow_op(acl, _) if acl.operation == "All"

allow_op(acl, op) if acl.operation == op

allow_op(acl, "Describe") if acl.operation in {"Read", "Write", "Delete", "Alter"}

allow_op(acl, "DescribeConfigs") if acl.operation == "AlterConfigs"

acl_string(acl) := sprintf("%s %s %s %s:%s %s host %s", [
	permission(acl), acl.principal, acl.operation,
	acl.resource, pattern(acl), acl.name, object.get(acl, "host", "*"),
])

matching_denies(a, p, h) := [acl |
	some acl in acls
	permission(acl) == "DENY"
	deny_op(acl, a.operation)
	applies(acl, a, p, h)
]

matching_allows(a, p, h) := [acl |
	some acl in acls
	permission(acl) == "ALLOW"
	allow_op(acl, a.operation)
	applies(acl, a, p, h)
]

# Kafka (KIP-679): IdempotentWrite on the cluster is also granted by Write on
# any topic. A DENY Write on every topic (LITERAL "*") takes it away.
idempotent_by_topic_write(a, p, h) := acl if {
	a.resource == "Cluster"
	a.operation == "IdempotentWrite"
	allows := [x |
		some x in acls
		permission(x) == "ALLOW"
		x.resource == "Topic"
		x.operation in {"Write", "All"}
		principal_matches(x, p)
		host_matches(x, h)
	]
	count(allows) > 0
	denies := [x |
		some x in acls
		permission(x) == "DENY"
		x.resource == "Topic"
		x.operation in {"Write", "All"}
		pattern(x) == "LITERAL"
		x.name == "*"
		principal_matches(x, p)
		host_matches(x, h)
	]
	count(denies) == 0
	acl := allows[0]
}

no_acl_for_resource(a) if {
	count([acl | some acl in acls; resource_matches(acl, a)]) == 0
}

# result decides action a for principal p connecting from host h.
result(a, p, h) := {"allowed": true, "reason": sprintf("%s is a super user", [p])} if {
	p in super_users
} else := {"allowed": false, "reason": sprintf("denied by ACL %s", [acl_string(denies[0])])} if {
	denies := matching_denies(a, p, h)
	count(denies) > 0
} else := {"allowed": true, "reason": sprintf("allowed by ACL %s", [acl_string(allows[0])])} if {
	allows := matching_allows(a, p, h)
	count(allows) > 0
} else := {"allowed": true, "reason": sprintf("IdempotentWrite implied by ACL %s", [acl_string(x)])} if {
	x := idempotent_by_topic_write(a, p, h)
} else := {"allowed": true, "reason": "no ACL found for the resource and allow_everyone_if_no_acl_found is true"} if {
	allow_everyone_if_no_acl_found == true
	no_acl_for_resource(a)
} else := {"allowed": false, "reason": sprintf("no ACL allows %s %s %s to %s", [a.operation, a.resource, a.name, p])}
