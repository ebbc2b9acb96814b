package proxy

import (
	"context"

	"github.com/kguard/kguard/policy"
)

// Authorizer is what the proxy needs from the policy engine.
// *policy.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *policy.Request) (*policy.Decision, error)
}

// ProtectionPolicy is what the proxy needs for data protection: the rule
// for a topic as seen by a principal, nil when the topic is unprotected.
// *policy.Engine implements it; an Authorizer that also implements it
// turns on the Produce and Fetch data-protection steps.
type ProtectionPolicy interface {
	Protection(ctx context.Context, principal, tenant, topic string) (*policy.Protection, error)
}
