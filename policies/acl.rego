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

super_users := object.get(settings, "super_users", [])

allow_everyone_if_no_acl_found := object.get(settings, "allow_everyone_if_no_acl_found", false)

# acls are the ACLs of every list, normalized (defaults filled in, pattern
# and permission upper-cased). Computed once per evaluation.
acls contains n if {
	some list in data.acls
	some acl in list
	n := {
		"principal": acl.principal,
		"host": object.get(acl, "host", "*"),
		"resource": acl.resource,
		"pattern": upper(object.get(acl, "pattern", "LITERAL")),
		"name": acl.name,
		"operation": acl.operation,
		"permission": upper(object.get(acl, "permission", "ALLOW")),
	}
}

# computed_index groups the normalized ACLs by resource type, then principal.
computed_index[rt][p] := [acl | some acl in acls; acl.resource == rt; acl.principal == p] if {
	some x in acls
	rt := x.resource
	p := x.principal
}

# by_principal are the ACLs on resource type rt naming principal p. The
# engine evaluates data.kguard.precompute once per policy revision and
# stores it at data.kguard_precomputed, so a decision reads the index there
# (one lookup, without copying the whole index); Rego tests (and policies
# whose data is overridden with `with`) compute the index per evaluation.
by_principal(rt, p) := x if {
	data.kguard_precomputed.ready
	x := data.kguard_precomputed.acl_index[rt][p]
} else := [] if {
	data.kguard_precomputed.ready
} else := object.get(object.get(computed_index, rt, {}), p, [])

# by_resource are all ACLs on resource type rt.
by_resource(rt) := [acl | some list in data.kguard_precomputed.acl_index[rt]; some acl in list] if {
	data.kguard_precomputed.ready
} else := [acl | some list in object.get(computed_index, rt, {}); some acl in list]

# literal_or_prefix_match keeps the ACLs of list whose resource pattern
# matches name: a LITERAL name equal to it or "*", or a non-empty PREFIXED
# name it starts with. (Comprehensions, not helper functions: this is the
# hot loop of an uncached decision.)
literal_or_prefix_match(list, name) := array.concat(
	[acl |
		some acl in list
		acl.pattern == "LITERAL"
		acl.name in [name, "*"]
	],
	[acl |
		some acl in list
		acl.pattern == "PREFIXED"
		acl.name != ""
		startswith(name, acl.name)
	],
)

# resource_acls are all ACLs (any principal, any host) matching a's resource.
resource_acls(a) := literal_or_prefix_match(by_resource(a.resource), a.name)

# applicable are the ACLs for a that name principal p (or User:*) and host h
# (or *).
applicable(a, p, h) := [acl |
	some acl in literal_or_prefix_match(array.concat(by_principal(a.resource, p), by_principal(a.resource, "User:*")), a.name)
	acl.host in [h, "*"]
]

# Operations an ALLOW ACL grants beyond its own and All.
implied := {
	"Describe": ["Read", "Write", "Delete", "Alter"],
	"DescribeConfigs": ["AlterConfigs"],
}

acl_string(acl) := sprintf("%s %s %s %s:%s %s host %s", [
	acl.permission, acl.principal, acl.operation,
	acl.resource, acl.pattern, acl.name, acl.host,
])

# A DENY matches the operation exactly or All.
denies(app, op) := [acl |
	some acl in app
	acl.permission == "DENY"
	acl.operation in [op, "All"]
]

# An ALLOW matches the operation, All, or an operation that implies it.
allows(app, op) := [acl |
	some acl in app
	acl.permission == "ALLOW"
	acl.operation in ops
] if {
	ops := array.concat([op, "All"], object.get(implied, op, []))
}

# Kafka (KIP-679): IdempotentWrite on the cluster is also granted by Write on
# any topic. A DENY Write on every topic (LITERAL "*") takes it away.
idempotent_by_topic_write(a, p, h) := acl if {
	a.resource == "Cluster"
	a.operation == "IdempotentWrite"
	topic_acls := array.concat(by_principal("Topic", p), by_principal("Topic", "User:*"))
	grants := [x |
		some x in topic_acls
		x.permission == "ALLOW"
		x.operation in ["Write", "All"]
		x.host in [h, "*"]
	]
	count(grants) > 0
	blocks := [x |
		some x in topic_acls
		x.permission == "DENY"
		x.operation in ["Write", "All"]
		x.pattern == "LITERAL"
		x.name == "*"
		x.host in [h, "*"]
	]
	count(blocks) == 0
	acl := grants[0]
}

# result decides action a for principal p connecting from host h.
result(a, p, h) := {"allowed": true, "reason": sprintf("%s is a super user", [p])} if {
	p in super_users
} else := decide(a, p, h, applicable(a, p, h))

# decide applies Kafka's order to the ACLs app that apply to a, p and h.
decide(a, p, h, app) := {"allowed": false, "reason": sprintf("denied by ACL %s", [acl_string(d[0])])} if {
	d := denies(app, a.operation)
	count(d) > 0
} else := {"allowed": true, "reason": sprintf("allowed by ACL %s", [acl_string(x[0])])} if {
	x := allows(app, a.operation)
	count(x) > 0
} else := {"allowed": true, "reason": sprintf("IdempotentWrite implied by ACL %s", [acl_string(x)])} if {
	x := idempotent_by_topic_write(a, p, h)
} else := {"allowed": true, "reason": "no ACL found for the resource and allow_everyone_if_no_acl_found is true"} if {
	allow_everyone_if_no_acl_found == true
	count(resource_acls(a)) == 0
} else := {"allowed": false, "reason": sprintf("no ACL allows %s %s %s to %s", [a.operation, a.resource, a.name, p])}
