package proxy

import (
	"sync/atomic"

	"github.com/kguard/kguard/policy"
)

// authzShared is the proxy-wide authorization state: the compiled tenant
// mapping and the topic id cache behind the Decomposer. It hangs off the
// Config (created by Validate) so that every session of a proxy shares it.
type authzShared struct {
	tenants    atomic.Pointer[tenantMapper]
	topics     *topicIDs
	decomposer policy.Decomposer
}

func newAuthzShared() *authzShared {
	a := &authzShared{topics: newTopicIDs()}
	a.decomposer = policy.Decomposer{TopicName: a.topics.name}
	return a
}

// validateAuthz compiles the tenants section and readies the shared
// authorization state (kept across calls: the topic id cache survives a
// second Validate).
func (c *Config) validateAuthz() []error {
	m, errs := c.Tenants.compile()
	if len(errs) > 0 {
		return errs
	}
	if c.authz == nil {
		c.authz = newAuthzShared()
	}
	c.authz.tenants.Store(m)
	return nil
}
