// Package proxy is kguard's Kafka-protocol proxy: listeners, one session per
// client connection, version negotiation, broker address rewriting and
// upstream dialing.
//
// Each client connection is paired with one upstream connection: the
// bootstrap listener's to any broker, a broker listener's to that broker.
// Brokers answer a connection's requests in order, so responses are relayed
// in request order without re-numbering correlation ids.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/proxy/wire"
	"github.com/kguard/kguard/proxy/wire/records"
)

// Proxy is a running kguard proxy.
type Proxy struct {
	cfg     *config.Config
	log     *zap.Logger
	pool    *wire.Pool
	dialer  *dialer
	metrics *metrics
	authn   *authn
	auditor Auditor // nil: no audit trail
	// authorizer decides every request after authentication; nil only
	// when the operator turned authorization off (policy.disabled).
	authorizer Authorizer
	authz      *authzShared // tenant mapping, topic id cache
	quotas     *quotas      // client quotas (quota.go); nil when there can be no rules
	apis       *registry    // every API's spec, by key
	denials    denialLog    // denials logged whether or not audited
	// prot is the data-protection stage (protect.go); nil when the
	// authorizer answers no protection rules.
	prot   *dataProtection
	sem    chan struct{} // one per client connection
	unauth *loginSlots   // connections still logging in
	// upOK is when a broker-list refresh last reached a broker (unix ns);
	// upErr the last refresh's error, nil when it succeeded.
	upOK   atomic.Int64
	upErr  atomic.Pointer[error]
	nextID atomic.Uint64

	ctx    context.Context // cancelled on Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops and sessions

	// sni maps TLS server names to brokers when every broker is served
	// on the one SNI listener (listen.sni); nil: a listener per broker.
	sni *config.SNINames

	mu        sync.Mutex
	nodes     map[int32]string // upstream node id -> host:port
	listeners map[int32]net.Listener
	bootstrap net.Listener
	sessions  map[*session]struct{}
	closing   bool
}

// Options are the proxy's collaborators.
type Options struct {
	Logger   *zap.Logger
	Registry prometheus.Registerer // may be nil
	Auditor  Auditor               // may be nil
	// Authorizer decides requests. It is required unless the config's
	// policy.disabled is true: kguard fails closed.
	Authorizer Authorizer
	// Protector encrypts, signs, decrypts and verifies records for the
	// topics the policy protects (the Authorizer must implement
	// ProtectionPolicy). Nil: records of a protected topic are refused
	// with a retriable error and fetched ones withheld (fail closed).
	Protector *crypto.Protector
}

// New validates cfg and builds a proxy; Start opens its listeners.
func New(cfg *config.Config, opts Options) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Authorizer == nil && !cfg.Policy.Disabled {
		return nil, errors.New("no authorizer: configure policy.dirs, or set policy.disabled: true to run without authorization")
	}
	if opts.Authorizer != nil && cfg.Policy.Disabled {
		return nil, errors.New("policy.disabled is true but an authorizer was given")
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	p := &Proxy{
		cfg: cfg, log: log, pool: wire.NewPool(), apis: newRegistry(),
		metrics:    newMetrics(opts.Registry),
		auditor:    opts.Auditor,
		authorizer: opts.Authorizer,
		sem:        make(chan struct{}, cfg.Limits.MaxConnections),
		unauth:     newLoginSlots(cfg.Limits.MaxUnauthenticatedConnections, cfg.Limits.MaxUnauthenticatedPerAddress),
		nodes:      map[int32]string{},
		listeners:  map[int32]net.Listener{},
		sessions:   map[*session]struct{}{},
	}
	qp, _ := opts.Authorizer.(QuotaPolicy)
	p.quotas = newQuotas(cfg.Quotas, qp, opts.Registry)
	p.prot = newDataProtection(opts.Authorizer, opts.Protector, records.NewLimiter(cfg.Limits.MaxConcurrentDecompressions), log)
	if p.prot != nil {
		p.prot.m = p.metrics.prot
		p.prot.configs = newTopicConfigs(p.describeTopicConfig)
	}
	if opts.Registry != nil {
		opts.Registry.MustRegister(newCertExpiry(cfg))
	}
	tlsErr := func(err error) {
		log.Error("certificate reload failed; keeping the previous certificate", zap.Error(err))
	}
	d, err := newDialer(&cfg.Upstream, p.pool, cfg.Limits.MaxFrameBytes, tlsErr)
	if err != nil {
		return nil, err
	}
	p.dialer = d
	if cfg.Listen.SNI != nil {
		if p.sni, err = config.NewSNINames(cfg.Listen.SNI); err != nil {
			return nil, err
		}
	}
	if p.authz, err = newAuthzFor(cfg); err != nil {
		return nil, err
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// Start learns the upstream brokers, opens the bootstrap listener and one
// listener per broker, and starts serving. It returns once listening.
func (p *Proxy) Start(ctx context.Context) error {
	a, err := newAuthn(ctx, p.cfg, p.log)
	if err != nil {
		return err
	}
	p.authn = a
	if p.sni != nil {
		if err := checkSNICertificate(a.tls, p.sni); err != nil {
			return err
		}
	}
	if err := p.waitForUpstream(ctx); err != nil {
		return fmt.Errorf("learning upstream brokers: %w", err)
	}
	ln, err := net.Listen("tcp", p.cfg.Listen.Bootstrap)
	if err != nil {
		return fmt.Errorf("bootstrap listener: %w", err)
	}
	p.mu.Lock()
	p.bootstrap = ln
	p.mu.Unlock()
	if p.sni != nil {
		p.serve(ln, sniListener)
	} else {
		p.serve(ln, -1)
	}
	p.log.Info("kguard listening", zap.String("bootstrap", ln.Addr().String()), zap.Any("brokers", p.BrokerAddrs()))
	p.wg.Add(1)
	go p.refreshLoop()
	return nil
}

// BootstrapAddr is the bound bootstrap address (useful with port 0).
func (p *Proxy) BootstrapAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bootstrap == nil {
		return ""
	}
	return p.bootstrap.Addr().String()
}

// BrokerAddrs maps upstream node ids to the addresses kguard serves them on
// (with listen.sni, the advertised broker names and port).
func (p *Proxy) BrokerAddrs() map[int32]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sni != nil {
		out := make(map[int32]string, len(p.nodes))
		for id := range p.nodes {
			out[id] = p.sniAddr(id)
		}
		return out
	}
	out := make(map[int32]string, len(p.listeners))
	for id, ln := range p.listeners {
		out[id] = ln.Addr().String()
	}
	return out
}

// UpstreamAddrs maps upstream node ids to their real addresses.
func (p *Proxy) UpstreamAddrs() map[int32]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int32]string, len(p.nodes))
	for id, a := range p.nodes {
		out[id] = a
	}
	return out
}

// waitForUpstream learns the brokers, retrying with backoff for up to
// upstream.startup_timeout, so kguard can start before its cluster.
func (p *Proxy) waitForUpstream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Upstream.StartupTimeout)
	defer cancel()
	backoff := 200 * time.Millisecond
	for {
		err := p.refreshBrokers(ctx)
		p.noteUpstream(err)
		if err == nil {
			return nil
		}
		p.log.Warn("upstream not reachable yet; retrying", zap.Duration("in", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (p *Proxy) refreshLoop() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.Upstream.MetadataRefresh)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			p.checkUpstream(p.ctx)
		}
	}
}

// checkUpstream refreshes the broker list: the periodic reachability
// check behind kguard_upstream_up and UpstreamReady.
func (p *Proxy) checkUpstream(ctx context.Context) {
	err := p.refreshBrokers(ctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		p.log.Warn("refreshing upstream brokers", zap.Error(err))
	}
	p.noteUpstream(err)
}

// noteUpstream records the outcome of a broker-list refresh.
func (p *Proxy) noteUpstream(err error) {
	if err != nil {
		p.metrics.upRefresh.WithLabelValues("error").Inc()
		p.metrics.upUp.Set(0)
		p.upErr.Store(&err)
		return
	}
	p.metrics.upRefresh.WithLabelValues("ok").Inc()
	p.metrics.upUp.Set(1)
	p.upErr.Store(nil)
	p.upOK.Store(time.Now().UnixNano())
}

// UpstreamReady reports whether the last broker-list refresh (every
// upstream.metadata_refresh) reached a broker, with its error when not: at
// least one upstream broker is reachable.
func (p *Proxy) UpstreamReady() error {
	if e := p.upErr.Load(); e != nil {
		return *e
	}
	if p.upOK.Load() == 0 {
		return errors.New("no upstream broker reached yet")
	}
	return nil
}

// upstreamLabel is the broker label of a listener's upstream: its node id,
// or "bootstrap" (any broker).
func upstreamLabel(node int32) string {
	if node < 0 {
		return "bootstrap"
	}
	return strconv.Itoa(int(node))
}

// refreshBrokers asks the upstream for its brokers (known ones first, then
// the configured bootstrap) and opens listeners for new ones.
func (p *Proxy) refreshBrokers(ctx context.Context) error {
	var errs []error
	for _, addr := range p.candidates() {
		brokers, err := p.dialer.fetchBrokers(ctx, addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, b := range brokers {
			host, port, _ := net.SplitHostPort(b.addr)
			pn, _ := strconv.Atoi(port)
			p.advertise(b.node, host, int32(pn))
		}
		return nil
	}
	return errors.Join(errs...)
}

// candidates lists upstream addresses to try, known brokers first.
func (p *Proxy) candidates() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, a := range p.nodes {
		if !seen[a] {
			out, seen[a] = append(out, a), true
		}
	}
	for _, a := range p.cfg.Upstream.Bootstrap {
		if !seen[a] {
			out, seen[a] = append(out, a), true
		}
	}
	return out
}

// advertise implements addressBook.
func (p *Proxy) advertise(node int32, host string, port int32) (string, int32) {
	up := net.JoinHostPort(host, strconv.Itoa(int(port)))
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.nodes[node]; !ok || old != up {
		p.nodes[node] = up
		if ok {
			p.log.Info("upstream broker moved", zap.Int32("node", node), zap.String("from", old), zap.String("to", up))
		} else if p.sni != nil {
			p.metrics.broker(upstreamLabel(node))
			p.log.Info("broker served by SNI name", zap.Int32("node", node), zap.String("name", p.sni.Broker(node)))
		}
	}
	if p.sni != nil {
		// Every broker is on the SNI listener: no listener to open.
		return p.sni.Broker(node), int32(p.cfg.Listen.SNI.AdvertisedPort)
	}
	lport, err := brokerPort(&p.cfg.Listen, node)
	if err != nil {
		p.log.Error("no listener for broker", zap.Int32("node", node), zap.Error(err))
		return p.cfg.Listen.AdvertisedHost, 0
	}
	if _, ok := p.listeners[node]; !ok && !p.closing {
		addr := net.JoinHostPort(p.cfg.Listen.BindHost, strconv.Itoa(lport))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			p.log.Error("opening broker listener", zap.Int32("node", node), zap.String("addr", addr), zap.Error(err))
		} else {
			p.listeners[node] = ln
			p.metrics.broker(upstreamLabel(node))
			p.log.Info("broker listener open", zap.Int32("node", node), zap.String("addr", ln.Addr().String()))
			p.serveLocked(ln, node)
		}
	}
	return p.cfg.Listen.AdvertisedHost, int32(lport)
}

// redact implements addressBook: every known upstream address in s becomes
// kguard's address for that broker; configured bootstrap addresses become
// kguard's bootstrap address.
func (p *Proxy) redact(s string) string {
	if !strings.ContainsRune(s, ':') {
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for node, up := range p.nodes {
		if strings.Contains(s, up) {
			repl := "[upstream]"
			if p.sni != nil {
				repl = p.sniAddr(node)
			} else if lport, err := brokerPort(&p.cfg.Listen, node); err == nil {
				repl = net.JoinHostPort(p.cfg.Listen.AdvertisedHost, strconv.Itoa(lport))
			}
			s = strings.ReplaceAll(s, up, repl)
		}
	}
	bootstrap := p.cfg.Listen.Bootstrap
	if p.sni != nil {
		bootstrap = net.JoinHostPort(p.sni.Bootstrap(), strconv.Itoa(p.cfg.Listen.SNI.AdvertisedPort))
	}
	for _, up := range p.cfg.Upstream.Bootstrap {
		s = strings.ReplaceAll(s, up, bootstrap)
	}
	return s
}

// sniAddr is the advertised address of broker node with listen.sni.
func (p *Proxy) sniAddr(node int32) string {
	return net.JoinHostPort(p.sni.Broker(node), strconv.Itoa(p.cfg.Listen.SNI.AdvertisedPort))
}

func (p *Proxy) serve(ln net.Listener, node int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serveLocked(ln, node)
}

func (p *Proxy) serveLocked(ln net.Listener, node int32) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.acceptLoop(ln, node)
	}()
}

func (p *Proxy) acceptLoop(ln net.Listener, node int32) {
	name := "bootstrap"
	switch {
	case node == sniListener:
		name = "sni"
	case node >= 0:
		name = "broker-" + strconv.Itoa(int(node))
	}
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary errors (EMFILE): back off, keep serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn("accept failed", zap.String("listener", name), zap.Error(err))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		p.metrics.connsTotal.WithLabelValues(name).Inc()
		select {
		case p.sem <- struct{}{}:
		default:
			p.refuse(c, "connection limit reached; refusing client", zap.Int("max_connections", p.cfg.Limits.MaxConnections))
			continue
		}
		host := remoteHost(c)
		if why := p.unauth.acquire(host); why != "" {
			<-p.sem
			p.refuse(c, why+"; refusing client",
				zap.Int("max_unauthenticated_connections", p.cfg.Limits.MaxUnauthenticatedConnections),
				zap.Int("max_unauthenticated_per_address", p.cfg.Limits.MaxUnauthenticatedPerAddress))
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.sem }()
			p.handleConn(c, name, node, func() { p.unauth.release(host) })
		}()
	}
}

// refuse closes a connection refused at accept.
func (p *Proxy) refuse(c net.Conn, msg string, fields ...zap.Field) {
	p.metrics.connsRejected.Inc()
	p.log.Warn(msg, append(fields, zap.String("client", c.RemoteAddr().String()))...)
	c.Close()
}

// remoteHost is the IP address of a connection's peer.
func remoteHost(c net.Conn) string {
	a := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return a
}

// handleConn completes TLS and authentication, then dials the upstream and
// runs the session. Until the client has authenticated it holds a login
// slot (released by loggedIn, once) and no upstream connection: the whole
// login, TLS handshake included, must finish within limits.login_timeout.
func (p *Proxy) handleConn(c net.Conn, listener string, node int32, loggedIn func()) {
	var once sync.Once
	done := func() { once.Do(loggedIn) }
	defer done()
	id := p.nextID.Add(1)
	raw := c
	log := p.log.With(zap.Uint64("conn", id), zap.String("client", c.RemoteAddr().String()), zap.String("listener", listener))
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	deadline := time.Now().Add(p.cfg.Limits.LoginTimeout)
	ctx, cancel := context.WithDeadline(p.ctx, deadline)
	defer cancel()
	_ = c.SetDeadline(deadline)
	if p.authn.tls != nil {
		cfg := p.authn.tls
		var route *sniRoute
		if node == sniListener {
			route = &sniRoute{}
			cfg = sniTLSConfig(p.sni, cfg, route)
		}
		tc := tls.Server(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			if route != nil && route.reason != "" {
				// Refused for its server name: never forwarded.
				p.metrics.sniRefused.WithLabelValues(route.reason).Inc()
				log.Warn(sniRefusedMsg, zap.String("reason", route.reason), zap.String("server_name", route.name))
			} else {
				log.Warn("TLS handshake failed", zap.Error(err))
			}
			p.metrics.closes.WithLabelValues("tls handshake").Inc()
			c.Close()
			return
		}
		c = tc
		if route != nil {
			node, listener = route.node, route.listener()
			p.metrics.sniRouted.WithLabelValues(p.listenerLabel(node, listener)).Inc()
			log = log.With(zap.String("sni", listener))
		}
	}
	if node == sniListener {
		// Unreachable (listen.sni requires listen.tls), but never route
		// a connection whose server name was not read.
		log.Error("SNI listener without TLS; closing connection")
		c.Close()
		return
	}
	principal, err := p.authn.initial(c)
	if err != nil {
		log.Warn("client refused", zap.Error(err))
		p.metrics.closes.WithLabelValues("unauthenticated").Inc()
		p.metrics.authentication(auth.MechanismMTLS, false)
		c.Close()
		return
	}
	if principal != nil {
		p.metrics.authentication(principal.Mechanism, true)
	}
	versions := p.knownVersions(node)
	if versions == nil {
		log.Warn("no upstream broker answered yet; resetting client connection")
		p.metrics.closes.WithLabelValues("upstream unavailable").Inc()
		reset(raw)
		return
	}
	s := newSession(p, id, listener, c, principal, versions)
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		s.close(endShuttingDown)
		return
	}
	p.sessions[s] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.sessions, s)
		p.mu.Unlock()
	}()
	defer close(s.done)
	s.opened()
	defer s.closed()
	final, ok := s.login(ctx)
	if !ok {
		return
	}
	done()
	_ = c.SetDeadline(time.Time{})
	release, ok := s.admitConn(p.ctx) // quota_conns.go
	if !ok {
		return
	}
	defer release()
	dctx, dcancel := context.WithTimeout(p.ctx, p.cfg.Upstream.DialTimeout)
	defer dcancel()
	up, err := p.dialUpstream(dctx, node)
	if err != nil {
		p.metrics.upDialErrors.WithLabelValues(p.listenerLabel(node, upstreamLabel(node))).Inc()
		s.log.Warn("upstream unavailable; resetting client connection", zap.Error(err))
		p.metrics.closes.WithLabelValues("upstream unavailable").Inc()
		// A reset, not a clean close: clients treat a reset as a
		// retriable network error (as "connection refused" from the
		// broker itself), while an orderly EOF on the first read looks
		// like a TLS or SASL misconfiguration and is not retried.
		reset(raw)
		s.close(endUpstreamUnavailable)
		return
	}
	if final != nil && s.sendLocal(final) != nil {
		up.Close()
		return
	}
	s.attach(up)
	upConns := p.metrics.upConns.WithLabelValues(upstreamLabel(node))
	upConns.Inc()
	p.metrics.connsOpen.Inc()
	s.run()
	p.metrics.connsOpen.Dec()
	upConns.Dec()
}

// reset closes a client connection with a TCP reset.
func reset(raw net.Conn) {
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	raw.Close()
}

// knownVersions is what the upstream broker behind a listener last said it
// supports (for the bootstrap listener, node -1, any broker's).
func (p *Proxy) knownVersions(node int32) *kmsg.ApiVersionsResponse {
	p.mu.Lock()
	addr := p.nodes[node]
	p.mu.Unlock()
	return p.dialer.knownVersions(addr)
}

// loginSlots counts the connections that have not authenticated yet, in all
// and per client address.
type loginSlots struct {
	mu      sync.Mutex
	n, max  int
	perAddr map[string]int
	maxAddr int
}

func newLoginSlots(max, maxPerAddr int) *loginSlots {
	return &loginSlots{max: max, maxAddr: maxPerAddr, perAddr: map[string]int{}}
}

// acquire takes a login slot for a connection from host, or says why not.
func (l *loginSlots) acquire(host string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= l.max {
		return "unauthenticated connection limit reached"
	}
	if l.perAddr[host] >= l.maxAddr {
		return "unauthenticated connection limit for this address reached"
	}
	l.n++
	l.perAddr[host]++
	return ""
}

func (l *loginSlots) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.perAddr[host]--; l.perAddr[host] <= 0 {
		delete(l.perAddr, host)
	}
}

// dialUpstream connects to broker node, or for the bootstrap listener (node
// -1) to the first reachable broker.
func (p *Proxy) dialUpstream(ctx context.Context, node int32) (*upConn, error) {
	if node >= 0 {
		p.mu.Lock()
		addr, ok := p.nodes[node]
		p.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("upstream broker %d is unknown", node)
		}
		return p.dialer.dial(ctx, addr)
	}
	var errs []error
	for _, addr := range p.candidates() {
		u, err := p.dialer.dial(ctx, addr)
		if err == nil {
			return u, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then closes every connection. It waits for all goroutines.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closing = true
	if p.bootstrap != nil {
		p.bootstrap.Close()
	}
	for _, ln := range p.listeners {
		ln.Close()
	}
	sessions := make([]*session, 0, len(p.sessions))
	for s := range p.sessions {
		sessions = append(sessions, s)
	}
	p.mu.Unlock()
	p.cancel()
	for _, s := range sessions {
		s.drain()
	}
	forced := 0
	for _, s := range sessions {
		if !s.waitDone(ctx) {
			s.close(endShutdownDeadline)
			forced++
		}
	}
	p.wg.Wait()
	p.log.Info("kguard stopped", zap.Int("connections_drained", len(sessions)-forced), zap.Int("connections_forced", forced))
	if forced > 0 {
		return fmt.Errorf("%d connections closed at the shutdown deadline", forced)
	}
	return nil
}

// brokerPort is the client-facing port for an upstream node id.
func brokerPort(l *config.Listen, node int32) (int, error) {
	if p, ok := l.BrokerPorts[node]; ok {
		return p, nil
	}
	if l.BrokerPortBase == 0 {
		return 0, fmt.Errorf("no port for broker %d: not in listen.broker_ports and no listen.broker_port_base", node)
	}
	p := l.BrokerPortBase + int(node)
	if p <= 0 || p > 65535 {
		return 0, fmt.Errorf("broker %d: port %d out of range", node, p)
	}
	return p, nil
}
