package proxy

import (
	"errors"
	"sync/atomic"
)

// authzShared is the proxy-wide authorization state: the compiled tenant
// mapping and the topic id cache behind the Decomposer. Every session of a
// proxy shares it (Proxy.authz).
type authzShared struct {
	tenants    atomic.Pointer[tenantMapper]
	topics     *topicIDs
	decomposer decomposer
	// shares are the open share sessions and the connection owning each.
	shares *shareOwners
}

func newAuthzShared() *authzShared {
	a := &authzShared{topics: newTopicIDs(), shares: newShareOwners()}
	a.decomposer = decomposer{topicName: a.topics.name}
	return a
}

// validateAuthz checks the tenants section.
func (c *Config) validateAuthz() []error {
	_, errs := c.Tenants.compile()
	return errs
}

// newAuthzFor builds a proxy's shared authorization state from its config.
func newAuthzFor(c *Config) (*authzShared, error) {
	m, errs := c.Tenants.compile()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	a := newAuthzShared()
	a.tenants.Store(m)
	return a, nil
}
