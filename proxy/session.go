package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
)

// endReason is why a session ended: the connection.close audit event's
// reason, the kguard_connection_closes_total label and the log line.
type endReason string

// The reasons a session ends.
const (
	endBadFrame             endReason = "bad frame"
	endBadRequest           endReason = "bad request"
	endBadRequestHeader     endReason = "bad request header"
	endBadUpstreamFrame     endReason = "bad upstream frame"
	endBadUpstreamResponse  endReason = "bad upstream response"
	endClientClosed         endReason = "client closed"
	endClientReset          endReason = "client reset"
	endClientWrite          endReason = "client write"
	endClosed               endReason = "closed"
	endAfterErrorResponse   endReason = "closed after error response"
	endInternalError        endReason = "internal error"
	endResponseTransform    endReason = "response transform"
	endShutdownDeadline     endReason = "shutdown deadline"
	endShuttingDown         endReason = "shutting down"
	endUnsupportedVersion   endReason = "unsupported api version"
	endUpstreamClosed       endReason = "upstream closed"
	endUpstreamTimeout      endReason = "upstream request timeout"
	endUpstreamUnavailable  endReason = "upstream unavailable"
	endUpstreamWrite        endReason = "upstream write"
	endAuditUnavailable     endReason = "audit unavailable"
	endLoginTimeout         endReason = "login timeout"
	endIdleTimeout          endReason = "idle timeout"
	endSASLWithoutSASL      endReason = "SASL request on a listener without SASL"
	endBeforeAuthentication endReason = "request before authentication"
	endSessionExpired       endReason = "session expired without re-authentication"
	endConnectionLimit      endReason = "connection limit"
	endConnectionRate       endReason = "connection rate"
)

// endReasons lists every endReason, and the reasons counted before a
// session exists, so that kguard_connection_closes_total has all its
// series from the start.
func endReasons() []string {
	rs := []endReason{endBadFrame, endBadRequest, endBadRequestHeader, endBadUpstreamFrame, endBadUpstreamResponse, endClientClosed, endClientReset, endClientWrite, endClosed, endAfterErrorResponse, endInternalError, endResponseTransform, endShutdownDeadline, endShuttingDown, endUnsupportedVersion, endUpstreamClosed, endUpstreamTimeout, endUpstreamUnavailable, endUpstreamWrite, endAuditUnavailable, endLoginTimeout, endIdleTimeout, endSASLWithoutSASL, endBeforeAuthentication, endSessionExpired, endConnectionLimit, endConnectionRate}
	out := []string{"tls handshake", "unauthenticated"}
	for _, r := range rs {
		out = append(out, string(r))
	}
	return out
}

// pending is one request awaiting its response, kept in request order.
type pending struct {
	hdr   wire.RequestHeader
	start time.Time
	// sent is when the request was handed to the upstream writer (zero
	// for requests answered locally).
	sent time.Time
	// local is a complete response frame kguard answers itself; the
	// upstream never sees the request.
	local []byte
	// transforms run in order on the decoded upstream response; each
	// reports whether it changed it. Without transforms the response is
	// relayed as its original bytes, never decoded.
	transforms []responseTransform
	// rewrite is the API's rewrite of the response fields that name
	// brokers (spec.rewrite), run before the transforms. A Produce or
	// Fetch response whose only change it would be is relayed as its
	// bytes when it names no node endpoints (wire.NodeEndpointsTag).
	rewrite responseTransform
	// closeAfter closes the connection once this response is written (a
	// failed login, a SASL protocol violation).
	closeAfter bool
}

// transform runs p's transforms in order on the decoded upstream response
// and reports whether any changed it.
func (p *pending) transform(resp kmsg.Response) (bool, error) {
	changed := false
	if p.rewrite != nil {
		c, err := p.rewrite(resp)
		if err != nil {
			return false, err
		}
		changed = c
	}
	for _, t := range p.transforms {
		c, err := t(resp)
		if err != nil {
			return changed, err
		}
		changed = changed || c
	}
	return changed, nil
}

// responseTransform changes a decoded upstream response in place.
type responseTransform func(resp kmsg.Response) (changed bool, err error)

// session is one client connection and its upstream connection. Exactly two
// goroutines own it: the reader (client -> upstream) and the responder
// (upstream -> client). They share only the in-flight queue.
type session struct {
	id       uint64
	p        *Proxy
	log      *zap.Logger
	listener string
	client   net.Conn
	up       *upConn // nil until the client has authenticated
	upv      *kmsg.ApiVersionsResponse
	sup      *supported

	cr *bufio.Reader // client reader
	cw *bufio.Writer // client writer, owned by the responder
	// cwRaw is the connection under cw: large chunks of a response cut
	// through are written to it directly once cw is flushed (nil: always
	// through cw).
	cwRaw io.Writer
	ur    *bufio.Reader // upstream reader, owned by the responder
	uw    *bufio.Writer // upstream writer, owned by the reader

	// principal is the authenticated client, nil before authentication.
	// Only the reader goroutine writes it (SASL runs there).
	principal *auth.Principal
	sasl      saslState
	// owned are the fetch and share sessions this connection created
	// (fetch_sessions.go).
	owned ownedSessions
	// served are the topics this connection's sessions served, audited,
	// with the policy revision (fetch_sessions.go). Responder only.
	served map[string]string

	// held are pooled buffers of the request being handled (a rewritten
	// request and its record batches), returned once it is written
	// upstream. Only the reader goroutine uses it.
	held []*[]byte
	// fwdSegs are the parts of the request being handled that its
	// encoded frame left out (wire.Segmented: record batches written
	// from where protection put them); bufs is writeForward's scratch.
	// Reader only.
	fwdSegs []wire.Segment
	bufs    net.Buffers
	// produce is the last Produce decomposition (authz.go). Reader only.
	produce produceMemo

	inflight chan *pending
	// idleMu guards idle: the responder is waiting on the upstream
	// connection with nothing queued (next), and the reader may wake it
	// once (poke).
	idleMu   sync.Mutex
	idle     bool
	draining atomic.Bool
	closeOne sync.Once
	done     chan struct{}
	reason   atomic.Value // string: why the session ended

	// quotaSensors are the quota sensors this connection's requests were
	// counted in: the reader waits while one is throttled (quota.go).
	quotaMu      sync.Mutex
	quotaSensors []*rateSensor
	// quotaTenant is the principal's tenant as of login, loginClientID
	// the client id of its login requests (quota_conns.go).
	quotaTenant   string
	loginClientID string
}

// newSession is a client connection before its upstream is dialed: it can
// log in (login) with versions, the upstream's last known ApiVersions, then
// gets its upstream connection (attach) and runs.
func newSession(p *Proxy, id uint64, listener string, client net.Conn, principal *auth.Principal, versions *kmsg.ApiVersionsResponse) *session {
	s := &session{
		id: id, p: p, listener: listener, client: client, principal: principal,
		upv: versions,
		sup: p.apis.intersect(versions, p.authn.sasl != nil),
		// Small until authenticated: an unauthenticated client costs
		// kguard little more than the bytes it sent (see attach).
		cr:       bufio.NewReaderSize(client, preAuthReadBuffer),
		inflight: make(chan *pending, p.cfg.Limits.MaxInFlight),
		done:     make(chan struct{}),
	}
	s.log = p.log.With(zap.Uint64("conn", id), zap.String("client", client.RemoteAddr().String()),
		zap.String("listener", listener))
	return s
}

// preAuthReadBuffer is the client read buffer before authentication.
const preAuthReadBuffer = 4 << 10

// attach gives an authenticated session its upstream connection and the
// full-size buffers; bytes the client already sent stay first in line.
func (s *session) attach(up *upConn) {
	s.up, s.upv = up, up.versions
	s.sup = s.p.apis.intersect(up.versions, s.p.authn.sasl != nil)
	s.log = s.log.With(zap.String("upstream", up.addr))
	var r io.Reader = s.client
	if n := s.cr.Buffered(); n > 0 {
		early, _ := s.cr.Peek(n)
		r = io.MultiReader(bytes.NewReader(bytes.Clone(early)), s.client)
	}
	s.cr = bufio.NewReaderSize(r, 32<<10)
	s.cw = bufio.NewWriterSize(s.client, 64<<10)
	s.cwRaw = s.client
	s.ur = bufio.NewReaderSize(up, 64<<10)
	s.uw = bufio.NewWriterSize(up, 64<<10)
}

// opened records the connection's open event.
func (s *session) opened() {
	s.log.Debug("connection open")
	_ = s.record(audit.Event{Type: audit.EventConnectionOpen, Who: s.who("")})
}

// closed closes the connection if it is not yet and records why it ended.
func (s *session) closed() {
	s.close("")
	reason := s.reason.Load().(string)
	_ = s.record(audit.Event{Type: audit.EventConnectionClose, Who: s.who(""), Details: map[string]string{"reason": reason}})
	s.log.Debug("connection closed", zap.String("reason", reason))
}

// login serves a connection until its client has authenticated: only
// ApiVersions and the SASL requests (or bare SASL tokens after
// SaslHandshake v0), one at a time, answered by kguard itself, each frame
// at most limits.max_preauth_frame_bytes, all before ctx's deadline (the
// connection's deadline is set to it). It reports whether the client
// authenticated; if not, the connection is closed. The answer to the
// request that authenticated the client is returned, not sent: the caller
// sends it once the upstream connection is up, so a client is never told
// it is logged in on a connection that cannot serve it (it would send
// requests that are then lost with the connection).
func (s *session) login(ctx context.Context) (final []byte, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("internal error during login; closing this connection", zap.Any("panic", r), zap.Stack("stack"))
			s.p.metrics.closes.WithLabelValues("internal error").Inc()
			s.close(endInternalError)
			final, ok = nil, false
		}
	}()
	limits := &s.p.cfg.Limits
	for s.principal == nil {
		if s.draining.Load() {
			s.close(endShuttingDown)
			return nil, false
		}
		f, err := wire.ReadFrameGradual(s.cr, s.p.pool, limits.MaxPreAuthFrameBytes)
		if err != nil {
			s.readFailed(err, endLoginTimeout)
			return nil, false
		}
		s.p.metrics.bytesIn.Add(float64(len(f.Buf)))
		p, err := s.loginStep(ctx, &f)
		f.Release()
		if err != nil {
			return nil, false // loginStep logged and closed
		}
		if s.principal != nil && !p.closeAfter {
			return p.local, true
		}
		if err := s.sendLocal(p.local); err != nil {
			return nil, false
		}
		if p.closeAfter {
			s.close(endAfterErrorResponse)
			return nil, false
		}
	}
	return nil, true
}

// sendLocal writes a response kguard made itself straight to the client
// (before the session's goroutines run).
func (s *session) sendLocal(b []byte) error {
	if _, err := s.client.Write(b); err != nil {
		s.fail(endClientWrite, err)
		return err
	}
	s.p.metrics.bytesOut.Add(float64(len(b)))
	return nil
}

// loginStep answers one frame of an unauthenticated client.
func (s *session) loginStep(ctx context.Context, f *wire.Frame) (*pending, error) {
	if s.sasl.raw {
		return s.rawSASLToken(f.Body()), nil
	}
	hdr, err := wire.ParseRequestHeader(f.Body())
	if err != nil {
		s.fail(endBadRequestHeader, err)
		return nil, err
	}
	if hdr.APIKey != 18 && !s.sup.allows(hdr.APIKey, hdr.APIVersion) {
		err := fmt.Errorf("api key %d (%s) version %d was not advertised", hdr.APIKey, s.p.metrics.api(hdr.APIKey), hdr.APIVersion)
		s.fail(endUnsupportedVersion, err, zap.Int16("api_key", hdr.APIKey), zap.Int16("api_version", hdr.APIVersion))
		return nil, err
	}
	s.p.metrics.request(hdr.APIKey)
	if hdr.ClientID != "" {
		s.loginClientID = hdr.ClientID
	}
	if reason := s.gate(&hdr); reason != "" {
		err := fmt.Errorf("%s v%d refused", s.p.metrics.api(hdr.APIKey), hdr.APIVersion)
		s.fail(reason, err, zap.Int16("api_key", hdr.APIKey), zap.Int16("api_version", hdr.APIVersion))
		return nil, err
	}
	p := &pending{hdr: hdr, start: time.Now()}
	body := f.Body()[hdr.BodyOffset:]
	if hdr.APIKey == 18 {
		p.local = wire.AppendResponse(nil, hdr.CorrelationID, apiVersionsResponse(s.sup, s.upv, hdr.APIVersion))
		return p, nil
	}
	// gate lets only ApiVersions and the SASL requests through before
	// authentication.
	resp, closeAfter, err := s.handleSASL(ctx, &hdr, body)
	if err != nil {
		s.fail(endBadRequest, err, zap.Int16("api_key", hdr.APIKey), zap.Int16("api_version", hdr.APIVersion))
		return nil, err
	}
	p.local, p.closeAfter = wire.AppendResponse(nil, hdr.CorrelationID, resp), closeAfter
	return p, nil
}

// readFailed ends the session after a failed client read; timeout names a
// read deadline that passed.
func (s *session) readFailed(err error, timeout endReason) {
	var ne net.Error
	switch {
	case s.draining.Load():
		s.close(endShuttingDown)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		s.close(endClientClosed)
	case errors.Is(err, syscall.ECONNRESET):
		// A client killed or reset mid-connection is not a malformed frame.
		s.p.metrics.closes.WithLabelValues(string(endClientReset)).Inc()
		s.log.Info("connection reset by the client", zap.Error(err))
		s.close(endClientReset)
	case errors.As(err, &ne) && ne.Timeout():
		s.fail(timeout, err)
	default:
		s.fail(endBadFrame, err)
	}
}

// run serves the session until either side closes, then closes both.
func (s *session) run() {
	defer s.contain("session")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.respond()
	}()
	s.read()
	wg.Wait()
	s.close("")
	s.releaseSessions()
}

// close closes both connections once, recording the first reason.
func (s *session) close(reason endReason) {
	s.closeOne.Do(func() {
		if reason == "" {
			reason = endClosed
		}
		s.reason.Store(string(reason))
		s.client.Close()
		if s.up != nil {
			s.up.Close()
		}
	})
}

// fail ends the session with a log line naming why.
func (s *session) fail(reason endReason, err error, fields ...zap.Field) {
	if !errors.Is(err, net.ErrClosed) {
		s.log.Warn("closing connection: "+string(reason), append(fields, zap.Error(err))...)
	}
	s.p.metrics.closes.WithLabelValues(string(reason)).Inc()
	s.close(reason)
}

// contain turns a panic in one of the session's goroutines into a closed
// connection and an error log line (with the stack), so a bug triggered by
// one client's input never takes down other clients' connections.
func (s *session) contain(where string) {
	if r := recover(); r != nil {
		s.log.Error("internal error; closing this connection", zap.String("in", where),
			zap.Any("panic", r), zap.Stack("stack"))
		s.p.metrics.closes.WithLabelValues("internal error").Inc()
		s.close(endInternalError)
		if where == "responder" {
			s.drainQueue()
		}
	}
}

// drain stops reading new requests; in-flight ones are still answered.
func (s *session) drain() {
	s.draining.Store(true)
	_ = s.client.SetReadDeadline(time.Now())
}

// read is the client -> upstream loop.
func (s *session) read() {
	defer s.endQueue()
	defer s.contain("reader")
	limits := &s.p.cfg.Limits
	for {
		s.waitMuted(s.p.ctx) // quota.go
		if s.draining.Load() {
			return
		}
		_ = s.client.SetReadDeadline(time.Now().Add(limits.IdleTimeout))
		// Before login a frame costs only what has arrived (read in
		// chunks, capped at max_preauth_frame_bytes); an authenticated
		// client's frame is read into one buffer of its announced size,
		// as a broker reads it (the chunked read costs 2-4x the CPU on
		// large produce requests).
		var f wire.Frame
		var err error
		if s.principal == nil {
			f, err = wire.ReadFrameGradual(s.cr, s.p.pool, limits.MaxPreAuthFrameBytes)
		} else {
			f, err = wire.ReadFrame(s.cr, s.p.pool, limits.MaxFrameBytes)
		}
		if err != nil {
			if !s.draining.Load() {
				s.readFailed(err, endIdleTimeout)
			}
			return
		}
		s.p.metrics.bytesIn.Add(float64(len(f.Buf)))
		if s.sasl.raw {
			// After SaslHandshake v0 the client sends bare SASL
			// tokens, not Kafka requests (KIP-43).
			p := s.rawSASLToken(f.Body())
			f.Release()
			if err := s.enqueue(p); err != nil {
				s.upstreamWriteFailed(err)
				return
			}
			if p.closeAfter {
				return
			}
			continue
		}
		hdr, err := wire.ParseRequestHeader(f.Body())
		if err != nil {
			f.Release()
			s.fail(endBadRequestHeader, err)
			return
		}
		// ApiVersions is always answered, at any version (KIP-511).
		if hdr.APIKey != 18 && !s.sup.allows(hdr.APIKey, hdr.APIVersion) {
			f.Release()
			s.fail(endUnsupportedVersion, fmt.Errorf("api key %d (%s) version %d was not advertised", hdr.APIKey, s.p.metrics.api(hdr.APIKey), hdr.APIVersion),
				zap.Int16("api_key", hdr.APIKey), zap.Int16("api_version", hdr.APIVersion))
			return
		}
		s.p.metrics.request(hdr.APIKey)
		if reason := s.gate(&hdr); reason != "" {
			f.Release()
			s.fail(reason, fmt.Errorf("%s v%d refused", s.p.metrics.api(hdr.APIKey), hdr.APIVersion),
				zap.Int16("api_key", hdr.APIKey), zap.Int16("api_version", hdr.APIVersion))
			return
		}
		start := s.requestStart() // quota.go
		p, out, err := s.handle(&hdr, &f)
		if err == nil {
			s.requestTime(&hdr, p, start) // quota.go
		}
		if err != nil {
			f.Release()
			s.releaseHeld()
			reason := endBadRequest
			if errors.Is(err, errAuditUnavailable) {
				reason = endAuditUnavailable
			}
			s.fail(reason, err, zap.Int16("api_key", hdr.APIKey), zap.Int16("api_version", hdr.APIVersion))
			return
		}
		if p != nil {
			if out != nil {
				p.sent = time.Now()
			}
			err = s.enqueue(p) // blocks at MaxInFlight: backpressure on the client
		}
		if out != nil && err == nil {
			err = s.writeForward(out)
		}
		clear(s.fwdSegs) // they alias buffers released below
		s.fwdSegs = s.fwdSegs[:0]
		f.Release()
		s.releaseHeld()
		if p != nil && p.closeAfter && err == nil {
			return // the responder sends p, then the session closes
		}
		if err == nil && s.cr.Buffered() == 0 {
			err = s.uw.Flush()
		}
		if err != nil {
			s.upstreamWriteFailed(err)
			return
		}
	}
}

// writeForward writes a request frame upstream: out, with fwdSegs
// inserted when the frame was encoded in segments. Over TCP the segments
// go in one writev once the buffered bytes before them are flushed; over
// TLS they go through the buffered writer.
func (s *session) writeForward(out []byte) error {
	if len(s.fwdSegs) == 0 {
		_, err := s.uw.Write(out)
		return err
	}
	f := wire.Segmented{Head: out, Segs: s.fwdSegs}
	s.bufs = f.Buffers(s.bufs[:0])
	defer clear(s.bufs)
	var tc *net.TCPConn
	if s.up != nil {
		tc, _ = s.up.Conn.(*net.TCPConn)
	}
	if tc == nil {
		for _, b := range s.bufs {
			if _, err := s.uw.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.uw.Flush(); err != nil {
		return err
	}
	bufs := s.bufs // WriteTo consumes its receiver
	_, err := bufs.WriteTo(tc)
	return err
}

// upstreamWriteFailed ends the session after a failed upstream write.
func (s *session) upstreamWriteFailed(err error) {
	reason := endUpstreamWrite
	if upstreamGone(err) {
		reason = endUpstreamClosed
	}
	s.fail(reason, err)
}

// enqueue queues p for the responder, in request order. When the queue is
// full (limits.max_in_flight) what was written upstream is flushed first:
// the responder waits for those requests' responses to make room. A
// request no upstream response will announce (answered locally: p.sent
// is zero) wakes a responder waiting on the upstream connection (poke).
// The error is a failed flush (upstreamWriteFailed).
func (s *session) enqueue(p *pending) error {
	select {
	case s.inflight <- p:
	default:
		if s.uw != nil && s.uw.Buffered() > 0 {
			if err := s.uw.Flush(); err != nil {
				return err
			}
		}
		s.inflight <- p
	}
	if p.sent.IsZero() {
		s.poke()
	}
	return nil
}

// endQueue tells the responder no more requests come: it answers what is
// queued and returns.
func (s *session) endQueue() {
	close(s.inflight)
	s.poke()
}

// poke wakes the responder if it waits on the upstream connection with
// nothing queued (next): its read deadline passes now. At most once per
// wait, and only during one: a deadline the responder set for a response
// is never cut short.
func (s *session) poke() {
	s.idleMu.Lock()
	if s.idle {
		s.idle = false
		_ = s.up.SetReadDeadline(time.Now())
	}
	s.idleMu.Unlock()
}

// next returns the next queued request (ok false: the reader is done).
// With nothing queued the responder waits on the upstream connection, not
// on the queue: the response's first bytes wake it, and by then its
// request is queued (the reader queues a request before writing it
// upstream). A forwarded request so costs one goroutine wake-up on the
// way back, not two (the queue's, then the socket's). Requests no
// response will announce wake it through poke. An upstream connection
// that fails while idle ends the session (the error is returned).
func (s *session) next() (p *pending, ok bool, err error) {
	select {
	case p, ok = <-s.inflight:
		return p, ok, nil
	default:
	}
	s.idleMu.Lock()
	_ = s.up.SetReadDeadline(time.Time{})
	s.idle = true
	s.idleMu.Unlock()
	if len(s.inflight) == 0 {
		_, err = s.ur.Peek(1)
	}
	s.idleMu.Lock()
	s.idle = false
	s.idleMu.Unlock()
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		s.upstreamReadFailed(nil, err)
		return nil, false, err
	}
	// Bytes arrived or the reader poked: the request is queued (or the
	// queue closed), or upstream sent bytes nothing asked for, which the
	// next request's relay refuses (correlation id).
	p, ok = <-s.inflight
	return p, ok, nil
}

// hold returns an empty pooled buffer with room for n bytes that stays
// valid until the current request has been written upstream.
func (s *session) hold(n int) []byte {
	buf, slot := s.p.pool.Get(n)
	if slot != nil {
		s.held = append(s.held, slot)
	}
	return buf[:0]
}

// releaseHeld returns the buffers of the request just written.
func (s *session) releaseHeld() {
	for i, slot := range s.held {
		s.p.pool.Put(slot)
		s.held[i] = nil
	}
	s.held = s.held[:0]
}

// gate refuses requests a client may not send now, returning why ("" when
// allowed). Before authentication only ApiVersions and the SASL requests
// pass, as on a broker; an expired KIP-368 session only re-authenticates.
func (s *session) gate(hdr *wire.RequestHeader) endReason {
	switch hdr.APIKey {
	case 18:
		return ""
	case 17, 36:
		if s.p.authn.sasl == nil {
			return endSASLWithoutSASL
		}
		return ""
	}
	if s.principal == nil {
		return endBeforeAuthentication
	}
	if !s.sasl.expires.IsZero() && time.Now().After(s.sasl.expires) {
		return endSessionExpired
	}
	return ""
}

// handle decides what happens to one request: answered locally, forwarded
// as is, or forwarded with its response transformed. It returns the
// pending entry (nil when no response is expected) and the frame to send
// upstream (nil: nothing).
func (s *session) handle(hdr *wire.RequestHeader, f *wire.Frame) (*pending, []byte, error) {
	p := &pending{hdr: *hdr, start: time.Now()}
	body := f.Body()[hdr.BodyOffset:]
	switch hdr.APIKey {
	case 18: // ApiVersions: kguard answers with the intersection
		p.local = wire.AppendResponse(nil, hdr.CorrelationID, apiVersionsResponse(s.sup, s.upv, hdr.APIVersion))
		return p, nil, nil
	case 17, 36: // SASL: terminated by kguard
		resp, closeAfter, err := s.handleSASL(s.p.ctx, hdr, body)
		if err != nil {
			return nil, nil, err
		}
		p.local, p.closeAfter = wire.AppendResponse(nil, hdr.CorrelationID, resp), closeAfter
		return p, nil, nil
	}
	spec := s.p.apis.spec(hdr.APIKey)
	if spec == nil {
		return nil, nil, fmt.Errorf("api key %d has no spec", hdr.APIKey)
	}
	if spec.noResponse != nil {
		none, err := spec.noResponse(hdr, body)
		if err != nil {
			return nil, nil, err
		}
		if none {
			p = nil
		}
	}
	if hdr.APIKey == 0 {
		s.throttle(hdr, p, produceQuota, int64(len(f.Buf))) // quota.go
	}
	if p != nil && spec.rewrite != nil {
		if rw := spec.rewrite(hdr.APIVersion); rw != nil {
			p.rewrite = func(r kmsg.Response) (bool, error) { return rw(s.p, r), nil }
		}
	}
	if s.p.authorizer == nil {
		return p, f.Buf, nil
	}
	// Authorization may forward the request unchanged, forward a
	// rewritten request (denied parts removed), answer it locally, and
	// add response transforms (merging synthesized errors, filtering).
	return s.authorize(hdr, f, p)
}

// respond is the upstream -> client loop. Responses are written in request
// order: the broker answers one connection's requests in order, and local
// answers take their place in the same queue.
func (s *session) respond() {
	defer s.contain("responder")
	limits := &s.p.cfg.Limits
	var out []byte
	for {
		p, ok, err := s.next()
		if err != nil {
			s.drainQueue()
			return
		}
		if !ok {
			break
		}
		if p.local != nil {
			_, err = s.cw.Write(p.local)
			s.p.metrics.bytesOut.Add(float64(len(p.local)))
			if p.closeAfter {
				if err == nil {
					err = s.cw.Flush()
				}
				s.close(endAfterErrorResponse)
				s.drainQueue()
				return
			}
		} else {
			out, err = s.relay(p, out[:0], limits)
			if err != nil {
				// relay logged and closed.
				s.drainQueue()
				return
			}
		}
		// Flush unless the next upstream response is already buffered:
		// a finished response must never wait for a later request's.
		if err == nil && s.ur.Buffered() == 0 {
			err = s.cw.Flush()
		}
		if err != nil {
			s.fail(endClientWrite, err)
			s.drainQueue()
			return
		}
		s.p.metrics.clientLatency(p.hdr.APIKey, time.Since(p.start))
	}
	if err := s.cw.Flush(); err != nil {
		s.fail(endClientWrite, err)
	}
}

func (s *session) drainQueue() {
	for range s.inflight {
	}
}

// upstreamGone reports whether err means the broker closed or reset the
// connection (a broker restart), as opposed to a protocol error.
func upstreamGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// relay reads the upstream response for p and writes it, rewritten when
// needed, to the client writer. A response kguard does not change is cut
// through (streamed as it arrives); one that may change is read whole,
// and decoded only when it does change (or may: see pending.rewrite).
func (s *session) relay(p *pending, scratch []byte, limits *config.Limits) ([]byte, error) {
	_ = s.up.SetReadDeadline(time.Now().Add(limits.RequestTimeout))
	// A Fetch under quotas is read whole: its size decides the throttle
	// time the response carries (quota.go).
	quotaFetch := p.hdr.APIKey == 1 && s.p.quotas.has(fetchQuota)
	switch {
	case quotaFetch:
	case p.rewrite == nil && len(p.transforms) == 0:
		done, err := s.cutThrough(p, limits)
		if done && err == nil {
			s.upstreamDone(p)
		}
		if done || err != nil {
			return scratch, err
		}
	case len(p.transforms) == 0 && p.hdr.APIKey == 1 && p.hdr.Flexible:
		// Fetch v16+ whose only change may be the node endpoints.
		out, done, err := s.streamFetch(p, limits, scratch)
		if done && err == nil {
			s.upstreamDone(p)
		}
		if done || err != nil {
			return out, err
		}
	}
	f, err := wire.ReadFrame(s.ur, s.p.pool, limits.MaxFrameBytes)
	if err != nil {
		s.upstreamReadFailed(p, err)
		return scratch, err
	}
	defer f.Release()
	s.upstreamDone(p)
	off, err := s.responseHeader(p, f.Body())
	if err != nil {
		return scratch, err
	}
	if quotaFetch {
		s.throttle(&p.hdr, p, fetchQuota, int64(len(f.Buf))) // quota.go
	}
	out := f.Buf
	if p.rewrite != nil || len(p.transforms) > 0 {
		start := s.requestStart()
		out, err = s.transformed(p, f.Body()[off:], &scratch)
		// Muted only: this response's throttle time is already written.
		s.requestTime(&p.hdr, nil, start) // quota.go
		if err != nil {
			return scratch, err
		}
		if out == nil {
			out = f.Buf
		}
	}
	if _, err = s.cw.Write(out); err != nil {
		s.fail(endClientWrite, err)
	}
	s.p.metrics.bytesOut.Add(float64(len(out)))
	return scratch, err
}

// upstreamDone observes p's upstream latency once its response has been
// read from the broker (the last byte of a response cut through, which
// was relayed as it came; the whole frame of one read whole).
func (s *session) upstreamDone(p *pending) {
	if !p.sent.IsZero() {
		s.p.metrics.upstreamLatency(p.hdr.APIKey, time.Since(p.sent))
	}
}

// transformed applies p's rewrite and transforms to the response body and
// returns the response frame to write, in scratch, or nil when nothing
// changed. A Produce or Fetch response whose only change would be the
// node endpoints, and that has none, is not decoded.
func (s *session) transformed(p *pending, body []byte, scratch *[]byte) ([]byte, error) {
	if len(p.transforms) == 0 {
		has, err := wire.NodeEndpointsTag(p.hdr.APIKey, p.hdr.APIVersion, body)
		if err == nil && !has {
			return nil, nil
		}
	}
	resp, err := decodeResponse(p.hdr.APIKey, p.hdr.APIVersion, body)
	if err != nil {
		s.fail(endBadUpstreamResponse, err)
		return nil, err
	}
	changed, err := p.transform(resp)
	if err != nil {
		s.fail(endResponseTransform, err, zap.Int16("api_key", p.hdr.APIKey))
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	*scratch = s.p.appendResponse((*scratch)[:0], p.hdr, resp)
	return *scratch, nil
}

// responseHeader checks the response header at the start of body (a frame
// without its size) answers p and returns where the response body begins.
func (s *session) responseHeader(p *pending, body []byte) (int, error) {
	flexHdr := wire.ResponseHeaderFlexible(p.hdr.APIKey, p.hdr.Flexible)
	corr, off, err := wire.ParseResponseHeader(body, flexHdr)
	if err == nil && corr != p.hdr.CorrelationID {
		err = fmt.Errorf("upstream answered correlation id %d, expected %d", corr, p.hdr.CorrelationID)
	}
	if err != nil {
		s.fail(endBadUpstreamResponse, err)
	}
	return off, err
}

// upstreamReadFailed ends the session after a failed upstream read (p:
// the request whose response was read; nil while idle).
func (s *session) upstreamReadFailed(p *pending, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, net.ErrClosed):
		s.close(endClosed)
	case upstreamGone(err):
		s.fail(endUpstreamClosed, err)
	case p != nil && (errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)):
		s.fail(endUpstreamTimeout, err, zap.Int16("api_key", p.hdr.APIKey))
	default:
		s.fail(endBadUpstreamFrame, err)
	}
}

// cutThroughPeek is how much of a response kguard reads before it starts
// forwarding one it does not change: the size, the correlation id and the
// header's tagged fields (none are defined; a response whose header does
// not fit is read whole instead).
const cutThroughPeek = 4 + 64

// directWriteMin is the size from which a chunk of a response cut
// through is written to the client connection directly rather than
// copied into the client buffer (smaller ones are coalesced there).
const directWriteMin = 16 << 10

// cutThrough forwards the next upstream response, which answers p and
// which kguard does not change, as its bytes arrive (stream): the header
// is checked first (size cap, correlation id), then the body is copied
// from the upstream reader's buffer to the client writer's. Memory stays
// at the two buffers whatever the response's size, and the client
// receives a large Fetch response while the broker is still sending it.
// done is false (and nothing consumed) when the header does not fit
// cutThroughPeek: the caller reads the frame whole.
func (s *session) cutThrough(p *pending, limits *config.Limits) (done bool, err error) {
	st, ok, err := s.streamHead(p, limits)
	if err != nil || !ok {
		return err != nil, err
	}
	return true, st.failed(st.pass(st.left))
}

// appendResponse encodes resp as the response frame to hdr.
func (p *Proxy) appendResponse(dst []byte, hdr wire.RequestHeader, resp interface {
	AppendTo([]byte) []byte
}) []byte {
	dst, off := wire.BeginFrame(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(hdr.CorrelationID))
	if wire.ResponseHeaderFlexible(hdr.APIKey, hdr.Flexible) {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	return wire.EndFrame(dst, off)
}

// waitDone waits for the session to end or ctx to expire.
func (s *session) waitDone(ctx context.Context) bool {
	select {
	case <-s.done:
		return true
	case <-ctx.Done():
		return false
	}
}
