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
