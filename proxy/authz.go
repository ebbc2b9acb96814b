package proxy

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy/wire"
)

// authorize decides one request with the policy. This baseline is
// all-or-nothing: a request whose every action is allowed is forwarded as
// its original bytes; any denial closes the connection. Broker-exact partial
// answers are built per API in authz_*.go.
func (s *session) authorize(hdr *wire.RequestHeader, f *wire.Frame, p *pending) (*pending, []byte, error) {
	req := kmsg.RequestForKey(hdr.APIKey)
	req.SetVersion(hdr.APIVersion)
	if err := req.ReadFrom(f.Body()[hdr.BodyOffset:]); err != nil {
		return nil, nil, fmt.Errorf("decoding %s v%d: %w", kmsg.NameForKey(hdr.APIKey), hdr.APIVersion, err)
	}
	actions, details, err := policy.Decompose(req)
	if err != nil {
		return nil, nil, fmt.Errorf("authorization: %w", err)
	}
	preq := &policy.Request{
		Principal: "User:" + s.principal.Name, Mechanism: s.principal.Mechanism,
		ClientAddr: s.client.RemoteAddr().String(), Listener: s.listener,
		APIKey: hdr.APIKey, APIName: kmsg.NameForKey(hdr.APIKey), APIVersion: hdr.APIVersion,
		ClientID: hdr.ClientID, Actions: actions, Details: details,
	}
	dec, err := s.p.authorizer.Authorize(s.p.ctx, preq)
	if err != nil {
		return nil, nil, fmt.Errorf("authorization: %w", err)
	}
	allowed := dec.AllAllowed()
	out := audit.Outcome{Decision: audit.DecisionAllow, Reasons: dec.Reasons, PolicyRev: dec.Revision, DecisionID: dec.DecisionID}
	if !allowed {
		out.Decision = audit.DecisionDeny
	}
	if err := s.record(audit.Event{Type: audit.EventAuthzDecision, Who: s.who(hdr.ClientID),
		What: &audit.What{APIKey: hdr.APIKey, APIName: preq.APIName, APIVersion: hdr.APIVersion}, Outcome: &out}); err != nil {
		return nil, nil, fmt.Errorf("audit trail unavailable: %w", err)
	}
	if !allowed {
		s.log.Warn("request denied", zap.String("api", preq.APIName), zap.String("principal", preq.Principal),
			zap.String("decision_id", dec.DecisionID))
		return nil, nil, fmt.Errorf("%s denied by policy", preq.APIName)
	}
	return p, f.Buf, nil
}
