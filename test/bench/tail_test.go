package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The tail probe reads the Produce series of kguard's two request
// histograms (its bucket bounds) and counts what lies above 0.4 ms.
func TestTailProbe(t *testing.T) {
	reg := prometheus.NewRegistry()
	hist := func(name string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"api"})
		reg.MustRegister(h)
		return h
	}
	span, up := hist("kguard_request_duration_seconds"), hist("kguard_upstream_request_duration_seconds")
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	probe := &tailProbe{url: srv.URL}
	ctx := context.Background()
	before, err := probe.read(ctx)
	if err != nil || before != (produceSpan{}) {
		t.Fatalf("before any request: %+v, %v", before, err)
	}
	for _, v := range []float64{0.00005, 0.0003, 0.0005, 0.002} {
		span.WithLabelValues("Produce").Observe(v)
	}
	span.WithLabelValues("Fetch").Observe(0.01)
	up.WithLabelValues("Produce").Observe(0.0001)
	up.WithLabelValues("Produce").Observe(0.0009)
	after, err := probe.read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (produceSpan{n: 4, slow: 2, upN: 2, upSlow: 1}); after.minus(before) != want {
		t.Fatalf("got %+v, want %+v", after.minus(before), want)
	}
	line := tailLine("x", []tailResult{{directSlow: 1, kguardSlow: 2, span: after}})
	for _, want := range []string{"kguard path 2.00%", "direct 1.00%", "50.00% of its Produce requests", "alone: 50.00%"} {
		if !strings.Contains(line, want) {
			t.Errorf("TAIL line %q lacks %q", line, want)
		}
	}
}
