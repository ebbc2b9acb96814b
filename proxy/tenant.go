package proxy

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"sync"

	"github.com/kguard/kguard/config"
)

// maxTenantCache bounds the per-principal tenant cache of rule matches.
const maxTenantCache = 10_000

// tenantMapper is a compiled config.Tenants. It is safe for concurrent use.
type tenantMapper struct {
	exact map[string]string
	rules []compiledTenantRule

	// vclusters are the tenants' virtual clusters.
	vclusters map[string]*vcluster

	mu    sync.RWMutex
	cache map[string]string // rule results per principal
}

type compiledTenantRule struct {
	prefix string
	re     *regexp.Regexp
	tenant string
}

// compileTenants validates the tenants section (errors as
// config.Tenants.Problems) and returns its mapper.
func compileTenants(t *config.Tenants) (*tenantMapper, error) {
	if errs := t.Problems(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m := &tenantMapper{exact: maps.Clone(t.Principals), cache: map[string]string{}, vclusters: map[string]*vcluster{}}
	for tn, vc := range t.VirtualClusters {
		m.vclusters[tn] = newVcluster(tn, vc.Prefix)
	}
	for i, r := range t.Rules {
		re, err := r.Pattern()
		if err != nil {
			return nil, fmt.Errorf("config tenants.rules[%d].regex: %w", i, err)
		}
		m.rules = append(m.rules, compiledTenantRule{prefix: r.Prefix, re: re, tenant: r.Tenant})
	}
	return m, nil
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

// vcluster returns tenant's virtual cluster, nil for none.
func (m *tenantMapper) vcluster(tenant string) *vcluster {
	if m == nil || tenant == "" {
		return nil
	}
	return m.vclusters[tenant]
}
