package proxy

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// Connection limits per principal, tenant or client id (the quota rules'
// max_connections and connection_creation_rate), checked once a
// connection has authenticated, before its upstream connection is dialed
// and before the client is told it is logged in:
//
//   - over the creation rate, the login's last answer is held back for
//     the rate's throttle time (as KIP-612 delays a connection over its
//     rate); a throttle longer than half of limits.login_timeout is not
//     waited out: the connection is held that long, then closed;
//   - at the concurrent-connection limit, the connection is closed.
//
// Closing, not a SaslAuthenticate error: Java and franz-go clients treat
// an authentication error as fatal (the producer fails its sends), while a
// connection closed during authentication is retried after the client's
// reconnect backoff, as when a broker closes a connection over
// max.connections.per.ip (KIP-306).

// errConnLimit is why a connection over a connection limit is closed.
var errConnLimit = errors.New("over a connection limit of its quota")

// admitConn applies the connection limits to the session that has just
// authenticated. It reports whether the session may run; when it may,
// release undoes its count once the session ends.
func (s *session) admitConn(ctx context.Context) (release func(), ok bool) {
	q := s.p.quotas
	if q == nil || s.principal == nil {
		return func() {}, true
	}
	principal := "User:" + s.principal.Name
	if s.p.authz != nil {
		// On an error the tenant stays unknown here; the session's
		// requests are then refused by authorization all the same.
		s.quotaTenant, _ = s.tenantOf(s.p.authz, principal)
	}
	tenant, client := s.quotaTenant, s.loginClientID
	if d, _ := q.record(connRateQuota, principal, tenant, client, 1, time.Now()); d > 0 {
		limit := s.p.cfg.Limits.LoginTimeout / 2
		t := time.NewTimer(min(d, limit))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, false
		}
		if d > limit {
			q.connsRefuse.WithLabelValues(tenant, "connection_rate").Inc()
			s.fail(endConnectionRate, errConnLimit, zap.String("principal", s.principal.Name), zap.Duration("throttle", d))
			return nil, false
		}
	}
	set := q.rules()
	if !set.kinds[connQuota] {
		return func() {}, true
	}
	k, limit := set.match(connQuota, principal, tenant, client)
	if limit == 0 {
		return func() {}, true
	}
	q.mu.Lock()
	n := q.conns[k]
	if float64(n) >= limit {
		q.mu.Unlock()
		q.connsRefuse.WithLabelValues(tenant, "max_connections").Inc()
		s.fail(endConnectionLimit, errConnLimit, zap.String("principal", s.principal.Name), zap.Int("max_connections", int(limit)))
		return nil, false
	}
	q.conns[k] = n + 1
	q.mu.Unlock()
	q.connsOpen.WithLabelValues(tenant).Inc()
	return func() {
		q.mu.Lock()
		if q.conns[k]--; q.conns[k] <= 0 {
			delete(q.conns, k)
		}
		q.mu.Unlock()
		q.connsOpen.WithLabelValues(tenant).Dec()
	}, true
}
