# Tenant isolation.
#
# A principal with a tenant (input.tenant, set by authentication from the
# principal-to-tenant mapping) sees and touches only topics, groups and
# transactional ids whose names start with the tenant's prefix, and no
# cluster-wide operation except those its tenant entry lists (by default
# IdempotentWrite only: cluster-wide listings - ListGroups, DescribeAcls,
# DescribeLogDirs, ... - would reveal other tenants' names).
#
# data.config.tenants: {"<tenant>": {"prefix": "acme.", "cluster_operations": ["IdempotentWrite"]}}
# A tenant without an entry gets the prefix "<tenant>." and the defaults.
package kguard.tenant

# ---- principal to tenant mapping ----
#
# data.config.principal_tenants maps principals to tenants, for
# authentication (Engine.Tenant) when its own configuration does not name
# the tenant: {"principals": {"User:acme-app": "acme"},
#              "prefixes": {"User:globex-": "globex"}}.
# An exact entry wins, then the longest matching prefix; "" means no tenant.
# Input: {"principal": "User:..."}.
of := t if {
	t := data.config.principal_tenants.principals[input.principal]
} else := t if {
	matches := [[count(pre), tn] |
		some pre, tn in data.config.principal_tenants.prefixes
		startswith(input.principal, pre)
	]
	count(matches) > 0
	t := max(matches)[1]
} else := ""

# ---- isolation ----

default entry := {}

entry := data.config.tenants[input.tenant]

default prefix := ""

prefix := object.get(entry, "prefix", concat("", [input.tenant, "."])) if input.tenant != ""

cluster_operations := {op | some op in object.get(entry, "cluster_operations", ["IdempotentWrite"])}

scoped := {"Topic", "Group", "TransactionalId"}

denial(a) := sprintf("tenant %s may only use %s names starting with %q", [input.tenant, a.resource, prefix]) if {
	input.tenant != ""
	a.resource in scoped
	not startswith(a.name, prefix)
}

denial(a) := sprintf("tenant %s may not %s the cluster", [input.tenant, a.operation]) if {
	input.tenant != ""
	a.resource == "Cluster"
	not a.operation in cluster_operations
}

denial(a) := sprintf("tenant %s may not use delegation tokens", [input.tenant]) if {
	input.tenant != ""
	a.resource == "DelegationToken"
}
