package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadyzNamesFailingChecks(t *testing.T) {
	var r readiness
	var kmsErr error
	r.add("policy", func() error { return nil })
	r.add("kms", func() error { return kmsErr })
	get := func(h http.Handler) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return w.Code, w.Body.String()
	}
	if code, body := get(&r); code != 200 || !strings.HasPrefix(body, "ready\n") || !strings.Contains(body, "kms: ok") {
		t.Fatalf("all checks ok: %d %q", code, body)
	}
	kmsErr = errors.New("key service failing\nsecond line")
	code, body := get(&r)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "kms: not ready: key service failing; second line\n") ||
		!strings.Contains(body, "policy: ok") {
		t.Fatalf("kms failing: %d %q", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if code, _ := get(livez(ctx)); code != 200 {
		t.Fatalf("/livez while running: %d", code)
	}
	cancel()
	if code, _ := get(livez(ctx)); code != http.StatusServiceUnavailable {
		t.Fatalf("/livez while shutting down: %d", code)
	}
}
