package proxy

import (
	"errors"
	"fmt"

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
		return fmt.Errorf("%w: %w", errAuditUnavailable, err)
	}
	return nil
}

// maxAuditMechanism caps a client-chosen mechanism name in the audit trail.
const maxAuditMechanism = 64

// auditAuth records an authentication outcome: success when err is nil,
// else a failure with code, the error the client was answered with
// (SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM,
// ILLEGAL_SASL_STATE), and the reason (never a credential: an AuthError's
// log string, a protocol error kguard wrote, or "internal error").
func (s *session) auditAuth(mechanism string, code int16, err error) {
	if len(mechanism) > maxAuditMechanism {
		mechanism = mechanism[:maxAuditMechanism] + "..."
	}
	s.p.metrics.authentication(mechanism, err == nil)
	ev := audit.Event{Type: audit.EventAuthnSuccess, Who: s.who(""), Outcome: &audit.Outcome{Decision: audit.DecisionAllow}}
	ev.Who.Mechanism = mechanism
	if err != nil {
		ev.Type = audit.EventAuthnFailure
		ev.Outcome = &audit.Outcome{Decision: audit.DecisionDeny, ErrorCode: code}
		var ae *auth.AuthError
		var pe *saslProtocolError
		switch {
		case errors.As(err, &ae):
			ev.Outcome.Reasons = []string{ae.LogString()}
		case errors.As(err, &pe):
			ev.Outcome.Reasons = []string{pe.reason}
		default:
			ev.Outcome.Reasons = []string{"internal error"}
		}
	}
	_ = s.record(ev)
}

// saslProtocolError is a SASL exchange kguard refused for a protocol
// reason of its own (an unknown mechanism, an out-of-order request); its
// reason is safe for the audit trail.
type saslProtocolError struct{ reason string }

func (e *saslProtocolError) Error() string { return e.reason }
