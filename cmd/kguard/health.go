package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// readyCheck is one named readiness condition; check returns nil when it
// holds.
type readyCheck struct {
	name  string
	check func() error
}

// readiness answers /readyz: 200 when every check holds, else 503; the
// body names each check and why a failing one fails (never secrets: the
// errors are kguard's own and the key service's status).
type readiness struct {
	checks []readyCheck
}

func (r *readiness) add(name string, check func() error) {
	r.checks = append(r.checks, readyCheck{name, check})
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	ready := true
	for _, c := range r.checks {
		if err := c.check(); err != nil {
			ready = false
			fmt.Fprintf(&b, "%s: not ready: %s\n", c.name, oneLine(err))
		} else {
			fmt.Fprintf(&b, "%s: ok\n", c.name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready\n"+b.String())
		return
	}
	_, _ = io.WriteString(w, "ready\n"+b.String())
}

// oneLine keeps an error on its line of the body.
func oneLine(err error) string {
	return strings.NewReplacer("\n", "; ", "\r", " ").Replace(err.Error())
}

// livez answers /livez: the process serves HTTP and its proxy has not
// stopped. It does not depend on the upstream, the key service or the
// audit sink (a restart fixes none of them): those are /readyz's.
func livez(ctx context.Context) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ctx.Err() != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "shutting down\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	}
}

// errAuditRefusing is the audit check's failure.
var errAuditRefusing = errors.New("audit spool full (on_full: fail-closed): audited requests are refused until it drains")
