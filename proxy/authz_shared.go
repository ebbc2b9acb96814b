package proxy

import (
	"errors"
	"sync/atomic"

	"github.com/kguard/kguard/policy"
)

// authzShared is the proxy-wide authorization state: the compiled tenant
// mapping and the topic id cache behind the Decomposer. Every session of a
// proxy shares it (Proxy.authz).
type authzShared struct {
	tenants    atomic.Pointer[tenantMapper]
	topics     *topicIDs
	decomposer policy.Decomposer

	// firstRev is the policy revision of the first decision; revChanged
	// is set once a decision comes from another revision. From then on,
	// incremental fetches (whose session partitions were authorized when
	// they were added, maybe under an older policy) have their responses
	// checked again.
	firstRev   atomic.Pointer[string]
	revChanged atomic.Bool
}

// noteRevision records the revision of a decision.
func (a *authzShared) noteRevision(rev string) {
	if a.revChanged.Load() {
		return
	}
	if first := a.firstRev.Load(); first != nil {
		if *first != rev {
			a.revChanged.Store(true)
		}
		return
	}
	a.setFirstRev(rev)
}

// setFirstRev is noteRevision's slow path, apart so that only it
// allocates.
func (a *authzShared) setFirstRev(rev string) {
	a.firstRev.CompareAndSwap(nil, &rev)
}

func newAuthzShared() *authzShared {
	a := &authzShared{topics: newTopicIDs()}
	a.decomposer = policy.Decomposer{TopicName: a.topics.name}
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
