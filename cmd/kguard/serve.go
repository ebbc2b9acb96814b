package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	cfgPath := fs.String("config", "kguard.yaml", "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort on exit
	return serve(ctx, cfg, log, nil)
}

// serve runs a proxy until ctx ends, then drains it. ready, if not nil, is
// called once it is listening.
func serve(ctx context.Context, cfg *config.Config, log *zap.Logger, ready func(*proxy.Proxy)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := proxy.Options{Logger: log, Registry: reg}
	var checks readiness
	// The recorder is set below once the audit trail runs; the policy
	// watchers start after that, so they read it without a race.
	var rec *audit.Recorder
	var eng *policy.Engine
	switch {
	case cfg.Policy.Disabled:
		log.Warn("authorization is disabled (policy.disabled: true): every authenticated request is forwarded")
		checks.add("policy", func() error { return nil }) // disabled on purpose
	case len(cfg.Policy.Dirs) == 0:
		return errors.New("config policy: dirs is required (or disabled: true to run without authorization)")
	default:
		pm := policy.NewMetrics()
		reg.MustRegister(pm)
		var err error
		eng, err = policy.NewEngine(ctx, policy.Config{Dirs: cfg.Policy.Dirs, Logger: log.Named("policy"), Metrics: pm,
			OnReload: func(string) { recordPolicyRevision(rec, eng, "reload", log) }})
		if err != nil {
			return fmt.Errorf("loading policies: %w", err)
		}
		checks.add("policy", func() error {
			if eng.Revision() == "" {
				return errors.New("no policy loaded")
			}
			return nil
		})
		log.Info("policies loaded", zap.Strings("dirs", cfg.Policy.Dirs), zap.String("revision", eng.Revision()))
		opts.Authorizer = eng
	}
	if cfg.Audit.Enabled {
		r, stopAudit, err := startAudit(ctx, cfg, reg, log)
		if err != nil {
			return err
		}
		rec = r
		opts.Auditor = rec
		checks.add("audit", func() error {
			if rec.Refusing() {
				return errAuditRefusing
			}
			return nil
		})
		defer func() {
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stopAudit(actx)
		}()
	} else {
		log.Warn("audit trail is off (audit.enabled: false)")
	}
	if eng != nil {
		recordPolicyRevision(rec, eng, "start", log)
		go reloadOnSignal(ctx, eng, log)
		if cfg.Policy.Watch {
			go func() {
				if err := eng.Watch(ctx); err != nil {
					log.Error("policy watch", zap.Error(err))
				}
			}()
		}
	}
	if cfg.Crypto.KMS != "" {
		prot, obs, closeKMS, err := newObservedProtector(ctx, &cfg.Crypto, log)
		if err != nil {
			return fmt.Errorf("data protection (crypto): %w", err)
		}
		defer closeKMS()
		opts.Protector = prot
		reg.MustRegister(obs, crypto.KeyCacheCollector(prot))
		go obs.Watch(ctx, cfg.Metrics.KMSProbeInterval)
		checks.add("kms", obs.Ready)
		log.Info("data protection on", zap.String("kms", cfg.Crypto.KMS), zap.Bool("signing", cfg.Crypto.SigningKeyset != "" || cfg.Crypto.SigningTransitKey != ""), zap.Bool("trust_store", cfg.Crypto.Trust.File != ""))
	} else {
		log.Warn("no key service (crypto.kms): records of topics the policy protects are refused")
	}
	p, err := proxy.New(cfg, opts)
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	checks.add("upstream", p.UpstreamReady)
	var msrv *http.Server
	if cfg.Metrics.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			_ = p.Shutdown(context.Background())
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
		mux.HandleFunc("/livez", livez(ctx))
		mux.Handle("/readyz", &checks)
		if cfg.Metrics.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := msrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server", zap.Error(err))
			}
		}()
		log.Info("metrics listening", zap.String("addr", ln.Addr().String()))
	}
	if ready != nil {
		ready(p)
	}
	<-ctx.Done()
	log.Info("shutting down: draining connections", zap.Duration("grace", cfg.Limits.ShutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownGrace)
	defer cancel()
	if msrv != nil {
		_ = msrv.Shutdown(sctx)
	}
	if err := p.Shutdown(sctx); err != nil {
		log.Warn("shutdown", zap.Error(err))
	}
	return nil
}

// reloadOnSignal reloads the policies on SIGHUP. A reload that fails to
// compile or whose Rego tests fail keeps the old policy.
func reloadOnSignal(ctx context.Context, eng *policy.Engine, log *zap.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			if err := eng.Reload(ctx); err != nil {
				log.Error("policy reload refused; the previous policy stays in force", zap.Error(err))
			} else {
				log.Info("policy reloaded", zap.String("revision", eng.Revision()))
			}
		}
	}
}

func newLogger(c config.Log) (*zap.Logger, error) {
	zc := zap.NewProductionConfig()
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	zc.DisableStacktrace = true
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return zc.Build()
}
