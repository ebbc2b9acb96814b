// Package harness starts kguard in front of a real in-process Kafka cluster
// (franz-go's kfake) for tests and benchmarks.
package harness

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/proxy"
)

// Env is a kfake cluster with kguard in front of it.
type Env struct {
	Cluster  *kfake.Cluster
	Proxy    *proxy.Proxy
	Config   *config.Config
	Registry *prometheus.Registry
}

// Bootstrap is kguard's client-facing bootstrap address.
func (e *Env) Bootstrap() string { return e.Proxy.BootstrapAddr() }

// Options tune Start.
type Options struct {
	Brokers int         // default 3
	Kfake   []kfake.Opt // extra cluster options
	Config  string      // extra YAML merged under the generated config (top-level keys)
	Logger  *zap.Logger // default: zaptest logger at warn
	Mutate  func(*config.Config)
	// NoAnonymous keeps listen.auth.allow_anonymous off; by default the
	// harness lets unauthenticated clients in as User:ANONYMOUS.
	NoAnonymous bool
	Auditor     proxy.Auditor
	// Authorizer decides requests; nil runs kguard with policy.disabled.
	Authorizer proxy.Authorizer
	// Protector encrypts, signs, decrypts and verifies records of the
	// topics the Authorizer's protection rules name (nil: none).
	Protector *crypto.Protector
}

// Start brings up a kfake cluster and kguard on loopback with ephemeral
// ports and stops both when the test ends.
func Start(tb testing.TB, o Options) *Env {
	tb.Helper()
	if o.Brokers == 0 {
		o.Brokers = 3
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(o.Brokers)}, o.Kfake...)...)
	if err != nil {
		tb.Fatalf("kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(tb, zaptest.Level(zap.WarnLevel))
	}
	e, err := StartProxy(c.ListenAddrs(), o)
	if err != nil {
		tb.Fatalf("kguard: %v", err)
	}
	e.Cluster = c
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Proxy.Shutdown(ctx)
	})
	return e
}

// StartProxy starts kguard in front of the given upstream bootstrap
// addresses with ephemeral ports. The caller shuts it down.
func StartProxy(upstream []string, o Options) (*Env, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return nil, err
	}
	yaml := fmt.Sprintf("listen:\n  bootstrap: 127.0.0.1:%d\n  broker_port_base: %d\nupstream:\n  bootstrap: [%s]\n%s",
		ports[0], ports[0]+1, strings.Join(upstream, ", "), o.Config)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		return nil, fmt.Errorf("config: %w\n%s", err, yaml)
	}
	cfg.Listen.Auth.AllowAnonymous = !o.NoAnonymous
	if o.Authorizer == nil && len(cfg.Policy.Dirs) == 0 {
		cfg.Policy.Disabled = true
	}
	if o.Mutate != nil {
		o.Mutate(cfg)
	}
	reg := prometheus.NewRegistry()
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	p, err := proxy.New(cfg, proxy.Options{Logger: log, Registry: reg, Auditor: o.Auditor, Authorizer: o.Authorizer, Protector: o.Protector})
	if err != nil {
		return nil, err
	}
	if err := p.Start(context.Background()); err != nil {
		return nil, err
	}
	return &Env{Proxy: p, Config: cfg, Registry: reg}, nil
}
