package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// tailSlowClient is the send-to-ack latency from which a paced record
// counts as slow on the client's side.
const tailSlowClient = time.Millisecond

// tailSlowKguard is the bucket bound of kguard's request histograms
// (0.1, 0.4, 1.6 ms, ...) from which a Produce counts as slow inside
// kguard: from reading the request to writing its response, the broker's
// time included.
const tailSlowKguard = 0.0004

// tailProbe reads kguard's own latency histograms around the interleaved
// phase, to tell whether the client's slow records were slow inside
// kguard's span (request read to response written) or outside it (the
// operating system delivering the bytes and waking the processes).
type tailProbe struct {
	url string // kguard's /metrics
}

// produceSpan is the Produce requests kguard counted, and how many took
// longer than tailSlowKguard, in its whole span and upstream alone.
type produceSpan struct {
	n, slow, upN, upSlow float64
}

func (s produceSpan) minus(o produceSpan) produceSpan {
	return produceSpan{s.n - o.n, s.slow - o.slow, s.upN - o.upN, s.upSlow - o.upSlow}
}

// read scrapes the Produce histograms.
func (t *tailProbe) read(ctx context.Context) (produceSpan, error) {
	var sp produceSpan
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return sp, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sp, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return sp, fmt.Errorf("parsing %s: %w", t.url, err)
	}
	sp.n, sp.slow, err = overBound(fams["kguard_request_duration_seconds"])
	if err == nil {
		sp.upN, sp.upSlow, err = overBound(fams["kguard_upstream_request_duration_seconds"])
	}
	return sp, err
}

// overBound returns the Produce observations of a histogram family and
// how many were above tailSlowKguard.
func overBound(f *dto.MetricFamily) (n, over float64, err error) {
	if f == nil {
		return 0, 0, nil // no request yet
	}
	for _, m := range f.GetMetric() {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == "api" && l.GetValue() == "Produce" }) {
			continue
		}
		h := m.GetHistogram()
		n = float64(h.GetSampleCount())
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == tailSlowKguard {
				return n, n - float64(b.GetCumulativeCount()), nil
			}
		}
		return 0, 0, fmt.Errorf("%s has no %g bucket", f.GetName(), tailSlowKguard)
	}
	return 0, 0, nil
}

// tailResult is one round's interleaved tail, client and kguard side.
type tailResult struct {
	directSlow, kguardSlow float64 // share of paced records over tailSlowClient
	span                   produceSpan
}

// tailLine summarizes the rounds: median shares.
func tailLine(name string, rs []tailResult) string {
	if len(rs) == 0 {
		return ""
	}
	med := func(f func(tailResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	pct := func(a, b float64) float64 {
		if b <= 0 {
			return 0
		}
		return 100 * a / b
	}
	return fmt.Sprintf("TAIL %-14s interleaved, median of %d rounds: records over %v send to ack: kguard path %.2f%%, direct %.2f%%; "+
		"kguard's span (request read to response written, the broker included) over %g ms: %.2f%% of its Produce requests (the broker's part alone: %.2f%%)",
		name, len(rs), tailSlowClient, med(func(r tailResult) float64 { return r.kguardSlow }), med(func(r tailResult) float64 { return r.directSlow }),
		tailSlowKguard*1000, med(func(r tailResult) float64 { return pct(r.span.slow, r.span.n) }), med(func(r tailResult) float64 { return pct(r.span.upSlow, r.span.upN) }))
}

// printTails prints each scenario's TAIL line.
func printTails(out io.Writer, rows []scenarioResult) {
	printed := false
	for _, r := range rows {
		if len(r.tails) == 0 {
			continue
		}
		if !printed {
			fmt.Fprintf(out, "\nWhere the interleaved tail is: the client's slow records against kguard's own request histograms\n"+
				"(kguard_request_duration_seconds, kguard_upstream_request_duration_seconds; bounds 0.1, 0.4, 1.6 ms). Records slow\n"+
				"for the client but not inside kguard's span were delayed outside it: delivering the bytes, waking a process.\n")
			printed = true
		}
		fmt.Fprintf(out, "  %s\n", tailLine(r.name, r.tails))
	}
}
