package proxy

import (
	"sync/atomic"

	"github.com/kguard/kguard/config"
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

// newAuthzFor builds a proxy's shared authorization state from its config.
func newAuthzFor(c *config.Config) (*authzShared, error) {
	m, err := compileTenants(&c.Tenants)
	if err != nil {
		return nil, err
	}
	a := newAuthzShared()
	a.tenants.Store(m)
	return a, nil
}
