package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Tenants maps authenticated principals to tenants. The tenant is
// passed to the policy as input.tenant (policy.Request.Tenant); the shipped
// Rego then confines the principal to its tenant's names (see
// policies/tenant.rego and data.config.tenants for each tenant's prefix).
//
// Principals are named as the policy sees them, "User:<name>". An exact
// entry in Principals wins; otherwise Rules are tried in order and the first
// that matches decides. A principal nothing here matches is mapped by the
// policy's own principal-to-tenant data when the authorizer has one
// (policy.Engine.Tenant: data.config.principal_tenants in the shipped
// policies); otherwise it has no tenant ("").
//
//	tenants:
//	  principals:
//	    "User:alice": acme
//	  rules:
//	    - prefix: "User:globex-"       # principal name starts with it
//	      tenant: globex
//	    - regex: "^User:([a-z]+)\\.svc$" # RE2, matched against the whole name
//	      tenant: "$1"                  # $1 / ${name} expand the match
type Tenants struct {
	// Principals maps exact principal names to tenants.
	Principals map[string]string `yaml:"principals"`
	// Rules are tried in order when no exact name matches.
	Rules []TenantRule `yaml:"rules"`
	// VirtualClusters gives tenants a virtual cluster: kguard adds the
	// tenant's physical prefix to every topic name, group id and
	// transactional id its principals send and strips it from every
	// response, so the tenant sees its names without the prefix and
	// nothing outside it (docs/authorization.md, "Virtual clusters").
	//
	//	virtual_clusters:
	//	  acme: {prefix: "acme."}
	VirtualClusters map[string]VirtualCluster `yaml:"virtual_clusters"`
}

// VirtualCluster is one tenant's virtual cluster.
type VirtualCluster struct {
	// Prefix is the physical prefix of the tenant's names. Prefixes of
	// different tenants must not be prefixes of one another.
	Prefix string `yaml:"prefix"`
}

// TenantRule maps principals by prefix or regular expression. Exactly one
// of Prefix and Regex is set.
type TenantRule struct {
	// Prefix matches principal names that start with it.
	Prefix string `yaml:"prefix"`
	// Regex is an RE2 expression that must match the whole principal name
	// (it is anchored). Tenant may refer to its groups as $1 or ${name}.
	Regex string `yaml:"regex"`
	// Tenant is the tenant name (a template for Regex rules).
	Tenant string `yaml:"tenant"`
}

// Pattern compiles Regex anchored to the whole principal name (nil for a
// Prefix rule).
func (r TenantRule) Pattern() (*regexp.Regexp, error) {
	if r.Regex == "" {
		return nil, nil
	}
	return regexp.Compile(`^(?:` + r.Regex + `)$`)
}

// Problems checks the tenants section; each error names its key. Nil
// means the section is valid and every rule's Pattern compiles.
func (t *Tenants) Problems() []error {
	var errs []error
	for p, tn := range t.Principals {
		if p == "" {
			errs = append(errs, fmt.Errorf("config tenants.principals: empty principal name"))
		}
		if tn == "" {
			errs = append(errs, fmt.Errorf("config tenants.principals.%s: empty tenant", p))
		}
	}
	errs = append(errs, t.virtualClusterProblems()...)
	for i, r := range t.Rules {
		key := fmt.Sprintf("tenants.rules[%d]", i)
		if (r.Prefix == "") == (r.Regex == "") {
			errs = append(errs, fmt.Errorf("config %s: exactly one of prefix and regex is required", key))
			continue
		}
		if r.Tenant == "" {
			errs = append(errs, fmt.Errorf("config %s.tenant: required", key))
			continue
		}
		if r.Regex != "" {
			if _, err := r.Pattern(); err != nil {
				errs = append(errs, fmt.Errorf("config %s.regex: %w", key, err))
			}
		} else if strings.Contains(r.Tenant, "$") {
			errs = append(errs, fmt.Errorf("config %s.tenant: $ templates need a regex rule", key))
		}
	}
	return errs
}

// virtualClusterProblems checks the virtual clusters: every prefix is set
// and none is a prefix of another tenant's (their names would overlap).
func (t *Tenants) virtualClusterProblems() []error {
	var errs []error
	names := make([]string, 0, len(t.VirtualClusters))
	for tn := range t.VirtualClusters {
		names = append(names, tn)
	}
	slices.Sort(names)
	for i, a := range names {
		pa := t.VirtualClusters[a].Prefix
		if a == "" {
			errs = append(errs, fmt.Errorf("config tenants.virtual_clusters: empty tenant name"))
		}
		if pa == "" {
			errs = append(errs, fmt.Errorf("config tenants.virtual_clusters.%s.prefix: required", a))
			continue
		}
		for _, b := range names[i+1:] {
			pb := t.VirtualClusters[b].Prefix
			if pb != "" && (strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)) {
				errs = append(errs, fmt.Errorf("config tenants.virtual_clusters: prefixes of %s (%q) and %s (%q) overlap", a, pa, b, pb))
			}
		}
	}
	return errs
}
