package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy"
)

// kguardRunner is a running kguard the benchmark measures: its bootstrap
// address, a CPU clock and a way to stop it.
type kguardRunner interface {
	// cpuSeconds is the CPU time of whatever process runs kguard.
	cpuSeconds() (cpuTime, error)
	stop()
	output() string
}

func (k *kguardProc) output() string { return k.stderr.String() }

// inProcess is kguard running inside the benchmark process (package proxy),
// sharing its Go scheduler with the clients and the cluster. Its CPU clock
// is the whole process's (getrusage), so kguard's share is what the proxied
// phases cost beyond the direct phases.
type inProcess struct{ p *proxy.Proxy }

// startInProcess runs the passthrough configuration only: policies, audit
// and encryption are wired by `kguard serve`, which the child-process mode
// measures.
func startInProcess(ctx context.Context, cfgYAML string) (*inProcess, error) {
	cfg, err := config.Parse([]byte(cfgYAML))
	if err != nil {
		return nil, err
	}
	if !cfg.Policy.Disabled || cfg.Audit.Enabled || cfg.Crypto.KMS != "" {
		return nil, errors.New("-inprocess measures only the passthrough scenario; run the others as a child process (the default)")
	}
	p, err := proxy.New(cfg, proxy.Options{Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	return &inProcess{p: p}, nil
}

func (k *inProcess) cpuSeconds() (cpuTime, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTime{}, fmt.Errorf("getrusage: %w", err)
	}
	return cpuTime{user: time.Duration(ru.Utime.Nano()).Seconds(), sys: time.Duration(ru.Stime.Nano()).Seconds()}, nil
}

func (k *inProcess) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = k.p.Shutdown(ctx)
}

func (k *inProcess) output() string { return "" }
