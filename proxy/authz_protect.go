package proxy

// The pipeline's side of the data-protection stage (protect.go): what the
// stage needs of one request, taken from the pipeline's call.

// protectCall is the request as the data-protection stage sees it: the
// principal and tenant the policy's rules are asked for, the proxy's
// context (cancelled on Shutdown) and the session's logger; c itself
// names topics, records the stage's data.protection events and lends the
// session's pooled buffers (protectRequest).
func (c *authzCall) protectCall() protectCall {
	c.protectedBy = true
	return protectCall{ctx: c.s.p.ctx, log: c.s.log, principal: c.preq.Principal, tenant: c.preq.Tenant, clientID: c.hdr.ClientID, req: c}
}

// hold lends a pooled buffer held until the forwarded request is written
// (protectRequest).
func (c *authzCall) hold(n int) []byte { return c.s.hold(n) }

var _ protectRequest = (*authzCall)(nil)
