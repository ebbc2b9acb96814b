package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiler fetches a CPU profile from kguard's /debug/pprof/ endpoint
// (metrics.pprof) while a produce phase runs, so `make bench` can show
// where kguard's time goes in a scenario.
type profiler struct {
	addr string // kguard's metrics listener
	path string // where the profile is written
}

// newProfiler profiles through kguard's metrics listener at addr.
func newProfiler(dir, scenario, addr string) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &profiler{addr: addr, path: filepath.Join(dir, scenario+"-produce.pprof")}, nil
}

// config is the YAML that turns on kguard's profiling endpoint.
func (p *profiler) config() string {
	return fmt.Sprintf("metrics:\n  listen: %s\n  pprof: true\n", p.addr)
}

// start samples kguard for d (whole seconds, at least one) in the
// background; the channel yields the outcome once the file is written.
func (p *profiler) start(ctx context.Context, d time.Duration) <-chan error {
	done := make(chan error, 1)
	secs := max(1, int(d/time.Second))
	go func() {
		done <- p.fetch(ctx, secs)
	}()
	return done
}

func (p *profiler) fetch(ctx context.Context, secs int) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.addr, secs)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(p.path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
