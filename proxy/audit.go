package proxy

import (
	"errors"

	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
)

// Auditor receives kguard's audit events: connections, authentications and
// every authorization decision. *audit.Recorder implements it. Record must
// not block on Kafka; an error means the event could not be kept (spool
// full with fail-closed), and the request it describes is then refused.
type Auditor interface {
	Record(audit.Event) error
}

// who describes the session's client for an audit event.
func (s *session) who(clientID string) *audit.Who {
	w := &audit.Who{ClientID: clientID}
	if p := s.principal; p != nil {
		w.Principal, w.Mechanism, w.CertFingerprint = "User:"+p.Name, p.Mechanism, p.CertFingerprint
	}
	return w
}

func (s *session) where() audit.Where {
	return audit.Where{Client: s.client.RemoteAddr().String(), Listener: s.listener}
}

// record hands an event to the auditor, if any. An error is logged and
// returned so that callers on the request path can fail closed.
func (s *session) record(ev audit.Event) error {
	if s.p.auditor == nil {
		return nil
	}
	ev.Where = s.where()
	if err := s.p.auditor.Record(ev); err != nil {
		s.log.Error("audit event not recorded", zap.String("type", string(ev.Type)), zap.Error(err))
		return err
	}
	return nil
}

// auditAuth records an authentication outcome.
func (s *session) auditAuth(mechanism string, err error) {
	ev := audit.Event{Type: audit.EventAuthnSuccess, Who: s.who(""), Outcome: &audit.Outcome{Decision: audit.DecisionAllow}}
	ev.Who.Mechanism = mechanism
	if err != nil {
		ev.Type = audit.EventAuthnFailure
		ev.Outcome = &audit.Outcome{Decision: audit.DecisionDeny, ErrorCode: 58}
		var ae *auth.AuthError
		if errors.As(err, &ae) {
			ev.Outcome.Reasons = []string{ae.LogString()}
		} else {
			ev.Outcome.Reasons = []string{"internal error"}
		}
	}
	_ = s.record(ev)
}
