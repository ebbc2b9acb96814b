package proxy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

// A virtual cluster presents one tenant the cluster's topics, groups and
// transactional ids under its physical prefix without the prefix: the
// tenant names "orders", the brokers hold "acme.orders". kguard adds the
// prefix to every name of a request (before decomposition, so the policy,
// data protection and the audit trail see physical names) and strips it
// from every name of the response (after every other transform). Each
// API's rename rule (apiSpec.rename, rules in vcluster_rules.go) lists the
// fields that carry names; an API without a rule is refused while a
// virtual cluster is active (fail closed). Names outside the prefix never
// reach the tenant: listings drop them, and an echo of one closes the
// connection. Topic ids stay as they are; an id that resolves to a topic
// outside the prefix is denied (confine).

// vcluster is one tenant's virtual cluster.
type vcluster struct {
	tenant string
	prefix string
	// quoted is the prefix as a regular expression literal.
	quoted string
}

func newVcluster(tenant, prefix string) *vcluster {
	return &vcluster{tenant: tenant, prefix: prefix, quoted: regexp.QuoteMeta(prefix)}
}

// physical is the physical name of a virtual name.
func (v *vcluster) physical(name string) string { return v.prefix + name }

// virtual is the virtual name of a physical name, false when the name
// lies outside the virtual cluster.
func (v *vcluster) virtual(name string) (string, bool) {
	return strings.CutPrefix(name, v.prefix)
}

// errOutsideVcluster: a response named something outside the tenant's
// virtual cluster where it may only echo the request's names.
var errOutsideVcluster = errors.New("response names a resource outside the virtual cluster")

// renamer renames one request's and one response's names for a virtual
// cluster. leaked counts names of the response that lie outside it.
type renamer struct {
	vc *vcluster
	// req is the (renamed) request, for response rules that depend on it.
	req    kmsg.Request
	leaked int
}

// to prefixes a name.
func (n *renamer) to(s *string) { *s = n.vc.physical(*s) }

// toOpt prefixes a nullable name (nil stays nil: "all").
func (n *renamer) toOpt(s *string) {
	if s != nil {
		n.to(s)
	}
}

// toAll prefixes every name of a list.
func (n *renamer) toAll(ss []string) {
	for i := range ss {
		n.to(&ss[i])
	}
}

// toRegex confines a regular expression the broker matches against whole
// names (RE2/J or java.util.regex, full match) to the prefix.
func (n *renamer) toRegex(s *string) {
	if s != nil && *s != "" {
		*s = n.vc.quoted + "(?:" + *s + ")"
	}
}

// from strips the prefix from a name the response echoes; a name outside
// counts as leaked (the response is refused). Empty names carry nothing.
func (n *renamer) from(s *string) {
	if *s == "" {
		return
	}
	v, ok := n.vc.virtual(*s)
	if !ok {
		n.leaked++
		return
	}
	*s = v
}

// fromOpt strips a nullable name.
func (n *renamer) fromOpt(s *string) {
	if s != nil {
		n.from(s)
	}
}

// fromAll strips every name of a list.
func (n *renamer) fromAll(ss []string) {
	for i := range ss {
		n.from(&ss[i])
	}
}

// fromRegex undoes toRegex.
func (n *renamer) fromRegex(s *string) {
	if s == nil || *s == "" {
		return
	}
	inner, ok := strings.CutPrefix(*s, n.vc.quoted+"(?:")
	if inner, ok2 := strings.CutSuffix(inner, ")"); ok && ok2 {
		*s = inner
		return
	}
	n.leaked++
}

// msg strips the prefix from the names an error message echoes.
func (n *renamer) msg(s *string) {
	if s != nil {
		*s = strings.ReplaceAll(*s, n.vc.prefix, "")
	}
}

// inside strips the prefix from a listed name and reports whether the
// name lies inside the virtual cluster (listings drop the others).
func (n *renamer) inside(s *string) bool {
	v, ok := n.vc.virtual(*s)
	if ok {
		*s = v
	}
	return ok
}

// keepInside keeps the entries of a listing whose name (name returns a
// pointer to it; nil: the entry has no name) lies inside the virtual
// cluster, stripped.
func keepInside[T any](n *renamer, entries []T, name func(*T) *string) []T {
	out := entries[:0]
	for i := range entries {
		p := name(&entries[i])
		if p == nil || *p == "" || n.inside(p) {
			out = append(out, entries[i])
		}
	}
	clear(entries[len(out):])
	return out
}

// renameRule is an API's renaming: request adds the prefix to every name
// of the request, response strips it from every name of the response (and
// drops listed names outside the virtual cluster). An error refuses the
// request (or closes the connection, for a response).
type renameRule struct {
	request  func(n *renamer, req kmsg.Request) error
	response func(n *renamer, resp kmsg.Response) error
}

// renames adapts typed functions to a renameRule.
func renames[Q kmsg.Request, S kmsg.Response](rq func(n *renamer, r Q) error, rs func(n *renamer, r S)) *renameRule {
	return &renameRule{
		request: func(n *renamer, req kmsg.Request) error {
			r, ok := req.(Q)
			if !ok {
				return fmt.Errorf("virtual cluster: request %T", req)
			}
			return rq(n, r)
		},
		response: func(n *renamer, resp kmsg.Response) error {
			r, ok := resp.(S)
			if !ok {
				return fmt.Errorf("virtual cluster: response %T", resp)
			}
			rs(n, r)
			return nil
		},
	}
}

// noNames is the rule of an API whose requests and responses carry no
// topic, group or transactional id names.
func noNames() *renameRule {
	none := func(*renamer, kmsg.Request) error { return nil }
	return &renameRule{request: none, response: func(*renamer, kmsg.Response) error { return nil }}
}

// errNoRenameRule refuses an API that has no rename rule while a virtual
// cluster is active.
var errNoRenameRule = errors.New("api has no virtual-cluster rename rule")

// renameRequest renames c.req into the tenant's virtual cluster and
// arranges for its response to be renamed back. The request is forwarded
// re-encoded from then on.
func (c *authzCall) renameRequest(vc *vcluster) error {
	rule := c.spec.rename
	if rule == nil {
		return fmt.Errorf("%s v%d in virtual cluster %s: %w: %w", c.preq.APIName, c.hdr.APIVersion, vc.tenant, errNoRenameRule, policy.ErrDenied)
	}
	n := &renamer{vc: vc, req: c.req}
	if err := rule.request(n, c.req); err != nil {
		return fmt.Errorf("%s v%d in virtual cluster %s: %w: %w", c.preq.APIName, c.hdr.APIVersion, vc.tenant, err, policy.ErrDenied)
	}
	c.vc, c.reqChanged = vc, true
	c.preq.VirtualPrefix = vc.prefix
	return nil
}

// unrename renames a response of c's request back out of the virtual
// cluster.
func (c *authzCall) unrename(resp kmsg.Response) error {
	n := &renamer{vc: c.vc, req: c.req}
	if err := c.spec.rename.response(n, resp); err != nil {
		return err
	}
	if n.leaked > 0 {
		return fmt.Errorf("%s v%d: %d names: %w", c.preq.APIName, c.hdr.APIVersion, n.leaked, errOutsideVcluster)
	}
	return nil
}

// unrenameTransform is the response transform of a renamed request; it
// runs after every other transform (authorize appends it last).
func (c *authzCall) unrenameTransform() responseTransform {
	return func(resp kmsg.Response) (bool, error) {
		return true, c.unrename(resp)
	}
}

// confine denies every action on a topic, group or transactional id
// outside the virtual cluster: names are all prefixed by the rename, but a
// topic id resolves to whatever topic has it.
func (v *vcluster) confine(actions []policy.Action, dec *policy.Decision) *policy.Decision {
	var out *policy.Decision
	for i, a := range actions {
		switch a.Resource {
		case policy.Topic, policy.Group, policy.TransactionalID:
		default:
			continue
		}
		if strings.HasPrefix(a.Name, v.prefix) || i >= len(dec.Results) || !dec.Results[i].Allowed {
			continue
		}
		if out == nil {
			cp := *dec
			cp.Results = append([]policy.Result(nil), dec.Results...)
			out = &cp
		}
		out.Results[i] = policy.Result{Allowed: false, Reason: "outside virtual cluster " + v.tenant}
	}
	if out == nil {
		return dec
	}
	return out
}

// auditVirtual records the virtual cluster of a renamed request in its
// audit event's details: the prefix and, beside the physical resource
// name, the name the client used.
func (c *authzCall) auditVirtual(details map[string]string, physical string) {
	if c.vc == nil {
		return
	}
	details["virtual_prefix"] = c.vc.prefix
	if v, ok := c.vc.virtual(physical); ok {
		details["virtual_resource_name"] = v
	}
}
