package config_test

import (
	"strings"
	"testing"

	"github.com/kguard/kguard/config"
)

const sniBase = "upstream:\n  bootstrap: [a:1]\nlisten:\n  bootstrap: 0.0.0.0:9443\n  tls:\n    cert_file: c.pem\n    key_file: k.pem\n"

func TestSNIConfig(t *testing.T) {
	cfg, err := config.Parse([]byte(sniBase + "  sni:\n    bootstrap_name: bootstrap.kafka.localhost\n    broker_name: broker-{id}.kafka.localhost\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Listen.SNI; s.AdvertisedPort != 9443 || cfg.Listen.BrokerPortBase != 0 {
		t.Fatalf("defaults: advertised_port %d (want the bootstrap port 9443), broker_port_base %d (want 0)", s.AdvertisedPort, cfg.Listen.BrokerPortBase)
	}
	for _, tc := range []struct{ sni, more, want string }{
		{"    bootstrap_name: b.x\n    broker_name: broker.x\n", "", "must hold {id} exactly once, holds it 0 times"},
		{"    bootstrap_name: b.x\n    broker_name: b-{id}-{id}.x\n", "", "holds it 2 times"},
		{"    bootstrap_name: b-1.x\n    broker_name: b-{id}.x\n", "", "is also the name of broker 1"},
		{"    bootstrap_name: B-7.X\n    broker_name: b-{id}.x\n", "", "is also the name of broker 7"},
		{"    bootstrap_name: b.x\n    broker_name: b.x{id}\n", "", ""},
		{"    broker_name: b-{id}.x\n", "", "listen.sni.bootstrap_name \"\": required"},
		{"    bootstrap_name: 127.0.0.1\n    broker_name: b-{id}.x\n", "", "is an IP address"},
		{"    bootstrap_name: b_x.y\n    broker_name: b-{id}.x\n", "", "not a DNS label"},
		{"    bootstrap_name: b.x\n    broker_name: -{id}.x\n", "", "not a DNS label"},
		{"    bootstrap_name: b..x\n    broker_name: b{id}.x\n", "", "not a DNS label"},
		{"    bootstrap_name: b.x\n    broker_name: b{id}.x\n    advertised_port: 70000\n", "", "listen.sni.advertised_port: 70000 is not a port"},
		{"    bootstrap_name: b.x\n    broker_name: b{id}.x\n", "  broker_port_base: 9000\n", "excludes broker_port_base"},
	} {
		y := sniBase + tc.more + "  sni:\n" + tc.sni
		_, err := config.Parse([]byte(y))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", y, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", y, err, tc.want)
		}
	}
	noTLS := "upstream:\n  bootstrap: [a:1]\nlisten:\n  sni:\n    bootstrap_name: b.x\n    broker_name: b{id}.x\n"
	if _, err := config.Parse([]byte(noTLS)); err == nil || !strings.Contains(err.Error(), "listen.sni: needs listen.tls") {
		t.Errorf("SNI without TLS: %v", err)
	}
}

func TestSNINamesRoute(t *testing.T) {
	n, err := config.NewSNINames(&config.SNI{BootstrapName: "Bootstrap.Kafka.Localhost", BrokerName: "broker-{id}.kafka.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		node      int32
		bootstrap bool
		ok        bool
	}
	for name, w := range map[string]want{
		"bootstrap.kafka.localhost":         {-1, true, true},
		"BOOTSTRAP.kafka.localhost.":        {-1, true, true},
		"broker-0.kafka.localhost":          {0, false, true},
		"broker-3.kafka.localhost":          {3, false, true},
		"Broker-42.Kafka.Localhost":         {42, false, true},
		"broker-2147483647.kafka.localhost": {2147483647, false, true},
		"broker-2147483648.kafka.localhost": {},
		"broker-01.kafka.localhost":         {},
		"broker--1.kafka.localhost":         {},
		"broker-+1.kafka.localhost":         {},
		"broker-.kafka.localhost":           {},
		"broker-1x.kafka.localhost":         {},
		"broker-1.kafka.localhost.evil":     {},
		"evil.broker-1.kafka.localhost":     {},
		"broker-1.kafka":                    {},
		"":                                  {},
		"127.0.0.1":                         {},
	} {
		node, bs, ok := n.Route(name)
		if ok != w.ok || (ok && (node != w.node || bs != w.bootstrap)) {
			t.Errorf("Route(%q) = %d, %v, %v; want %d, %v, %v", name, node, bs, ok, w.node, w.bootstrap, w.ok)
		}
	}
	if got := n.Broker(7); got != "broker-7.kafka.localhost" {
		t.Errorf("Broker(7) = %q", got)
	}
}

// FuzzSNINamesRoute: a name routes to at most one target, never panics,
// and a broker's own name routes back to it.
func FuzzSNINamesRoute(f *testing.F) {
	for _, s := range []string{"bootstrap.k.localhost", "b-1.k.localhost", "b-01.k.localhost", "b-.k.localhost", "", "b-99999999999.k.localhost"} {
		f.Add(s, int32(3))
	}
	n, err := config.NewSNINames(&config.SNI{BootstrapName: "bootstrap.k.localhost", BrokerName: "b-{id}.k.localhost"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string, id int32) {
		node, bs, ok := n.Route(name)
		if ok && !bs && (node < 0 || !strings.EqualFold(n.Broker(node), strings.TrimSuffix(name, "."))) {
			t.Fatalf("Route(%q) = broker %d, whose name is %q", name, node, n.Broker(node))
		}
		if id >= 0 {
			if got, bs, ok := n.Route(n.Broker(id)); !ok || bs || got != id {
				t.Fatalf("Route(Broker(%d)) = %d, %v, %v", id, got, bs, ok)
			}
		}
	})
}
