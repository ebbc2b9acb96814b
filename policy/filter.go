package policy

import (
	"context"
	"fmt"
)

// FilterNames answers, for each name, whether the principal of base may
// perform op on the resource (rt, name). It is how the proxy filters
// responses that list names the request did not name:
//
//   - Metadata and OffsetFetch for all topics (details all_topics=true):
//     FilterNames(Topic, Describe) over the response's topics; denied ones
//     are left out silently.
//   - ListGroups (details filter="Group"): when the request's Describe
//     Cluster action is allowed the response is complete; otherwise
//     FilterNames(Group, Describe) over the listed groups.
//   - ListTransactions (details filter="TransactionalId"):
//     FilterNames(TransactionalId, Describe).
//
// One Authorize call is made with one action per name (cached per name).
// base's Actions and Details are not used.
func FilterNames(ctx context.Context, az Authorizer, base *Request, rt ResourceType, op Operation, names []string) ([]bool, error) {
	req := *base
	req.Details = nil
	req.Actions = make([]Action, len(names))
	for i, n := range names {
		req.Actions[i] = Action{Resource: rt, Name: n, Operation: op}
	}
	d, err := az.Authorize(ctx, &req)
	if err != nil {
		return nil, fmt.Errorf("policy: filter %s names: %w", rt, err)
	}
	if len(d.Results) != len(names) {
		return nil, fmt.Errorf("policy: filter %s names: %d results for %d names", rt, len(d.Results), len(names))
	}
	out := make([]bool, len(names))
	for i, r := range d.Results {
		out[i] = r.Allowed
	}
	return out, nil
}
