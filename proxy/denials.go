package proxy

import (
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
)

// maxDenialLogsPerSecond caps the denial lines one proxy logs; the rest
// are counted and reported in the next line.
const maxDenialLogsPerSecond = 20

// denialLog logs refused requests whether or not the audit trail is on,
// rate-limited so that a client retrying a denied request in a loop
// cannot flood the log. Every denial is counted in
// kguard_denials_total whatever the limit.
type denialLog struct {
	mu         sync.Mutex
	window     time.Time
	logged     int
	suppressed int
}

// noteDenial logs (rate-limited) and counts one refused request: who,
// which API, which resources and why. It never logs record payloads or
// secrets: the reasons are the policy's and kguard's own texts.
func (c *authzCall) noteDenial(code int16, reasons []string, rt, rn string) {
	p := c.s.p
	kind := "acl"
	if c.dec != nil && len(c.dec.Violations) > 0 {
		kind = "safeguard"
	}
	p.metrics.denials.WithLabelValues(c.preq.APIName, kind).Inc()
	now := time.Now()
	d := &p.denials
	d.mu.Lock()
	if now.Sub(d.window) >= time.Second {
		if d.suppressed > 0 {
			c.s.log.Warn("denials not logged (rate limit)", zap.Int("count", d.suppressed))
		}
		d.window, d.logged, d.suppressed = now, 0, 0
	}
	if d.logged >= maxDenialLogsPerSecond {
		d.suppressed++
		d.mu.Unlock()
		return
	}
	d.logged++
	d.mu.Unlock()
	resource := rt + ":" + rn
	if rt == "" {
		resource = auditResources(c.preq.Actions)
	}
	c.s.log.Info("request denied", zap.String("principal", c.preq.Principal), zap.String("api", c.preq.APIName),
		zap.Int16("version", c.hdr.APIVersion), zap.String("resources", resource), zap.String("kind", kind),
		zap.Int16("error_code", code), zap.String("reason", strings.Join(reasons, "; ")))
}

// decisionDenied reports whether an audit decision value is a denial.
func decisionDenied(decision string) bool { return decision == audit.DecisionDeny }
