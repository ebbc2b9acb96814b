package proxy

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// TenantsConfig maps authenticated principals to tenants. The tenant is
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
type TenantsConfig struct {
	// Principals maps exact principal names to tenants.
	Principals map[string]string `yaml:"principals"`
	// Rules are tried in order when no exact name matches.
	Rules []TenantRule `yaml:"rules"`
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

// maxTenantCache bounds the per-principal tenant cache of rule matches.
const maxTenantCache = 10_000

// tenantMapper is a compiled TenantsConfig. It is safe for concurrent use.
type tenantMapper struct {
	exact map[string]string
	rules []compiledTenantRule

	mu    sync.RWMutex
	cache map[string]string // rule results per principal
}

type compiledTenantRule struct {
	prefix string
	re     *regexp.Regexp
	tenant string
}

// compile validates the tenants section and returns its mapper; errors
// name the key.
func (t *TenantsConfig) compile() (*tenantMapper, []error) {
	var errs []error
	m := &tenantMapper{exact: map[string]string{}, cache: map[string]string{}}
	for p, tn := range t.Principals {
		if p == "" {
			errs = append(errs, fmt.Errorf("config tenants.principals: empty principal name"))
		}
		if tn == "" {
			errs = append(errs, fmt.Errorf("config tenants.principals.%s: empty tenant", p))
		}
		m.exact[p] = tn
	}
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
		cr := compiledTenantRule{prefix: r.Prefix, tenant: r.Tenant}
		if r.Regex != "" {
			re, err := regexp.Compile(`^(?:` + r.Regex + `)$`)
			if err != nil {
				errs = append(errs, fmt.Errorf("config %s.regex: %w", key, err))
				continue
			}
			cr.re = re
		} else if strings.Contains(r.Tenant, "$") {
			errs = append(errs, fmt.Errorf("config %s.tenant: $ templates need a regex rule", key))
			continue
		}
		m.rules = append(m.rules, cr)
	}
	return m, errs
}

// tenant returns the tenant of principal ("User:<name>"), "" for none.
func (m *tenantMapper) tenant(principal string) string {
	if m == nil {
		return ""
	}
	if t, ok := m.exact[principal]; ok {
		return t
	}
	if len(m.rules) == 0 {
		return ""
	}
	m.mu.RLock()
	t, ok := m.cache[principal]
	m.mu.RUnlock()
	if ok {
		return t
	}
	t = m.match(principal)
	m.mu.Lock()
	if len(m.cache) >= maxTenantCache {
		clear(m.cache)
	}
	m.cache[principal] = t
	m.mu.Unlock()
	return t
}

func (m *tenantMapper) match(principal string) string {
	for _, r := range m.rules {
		if r.re == nil {
			if strings.HasPrefix(principal, r.prefix) {
				return r.tenant
			}
			continue
		}
		idx := r.re.FindStringSubmatchIndex(principal)
		if idx == nil {
			continue
		}
		return string(r.re.ExpandString(nil, r.tenant, principal, idx))
	}
	return ""
}
