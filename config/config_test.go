package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
)

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"upstream:\n  bootstrap: [a:1]\n  bogus: 1\n", "line 3: field bogus not found"},
		{"upstream:\n  bootstrap: [a:1]\nlimits:\n  max_in_flight: many\n", "line 4"},
		{"listen:\n  bootstrap: nohostport\nupstream:\n  bootstrap: [a:1]\n", "listen.bootstrap"},
		{"upstream:\n  bootstrap: []\n", "upstream.bootstrap"},
		{"upstream:\n  bootstrap: [a:1]\n  sasl:\n    mechanism: GSSAPI\n    username: u\n    password: p\n", "upstream.sasl.mechanism"},
		{"upstream:\n  bootstrap: [a:1]\nlog:\n  level: loud\n", "log.level"},
		{"upstream:\n  bootstrap: [a:1]\ncrypto:\n  kms: local\n  signing_transit_key: k\n", "crypto.signing_transit_key: needs kms: vault"},
		{"upstream:\n  bootstrap: [a:1]\ncrypto:\n  kms: vault\n  signing_transit_key: k\n  signing_keyset: f\n", "excludes signing_keyset"},
		{"upstream:\n  bootstrap: [a:1]\ncrypto:\n  kms: local\n  instance_id: a/b\n", "crypto.instance_id"},
		{"upstream:\n  bootstrap: [a:1]\ncrypto:\n  trust:\n    file: t.json\n", "crypto.trust.file: needs crypto.kms"},
	} {
		_, err := config.Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want it to mention %q", tc.yaml, err, tc.want)
		}
	}
	cfg, err := config.Parse([]byte("upstream:\n  bootstrap: [127.0.0.1:19092]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.Bootstrap != "127.0.0.1:9092" || cfg.Listen.BrokerPortBase != 9093 || cfg.Limits.MaxFrameBytes != wire.DefaultMaxFrame {
		t.Fatalf("defaults: %+v %+v", cfg.Listen, cfg.Limits)
	}
}

// The documented example configuration must stay valid.
func TestExampleConfigParses(t *testing.T) {
	cfg, err := config.Load("../examples/kguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream.SASL == nil || cfg.Listen.TLS == nil || !cfg.Audit.Enabled || len(cfg.Listen.Auth.SASLMechanisms) != 2 ||
		cfg.Crypto.KMS != "vault" || len(cfg.Tenants.Rules) != 2 {
		t.Fatalf("example config lost sections: %+v", cfg)
	}
}

// TestLoginLimitsConfig: the login limits' defaults follow max_connections
// and max_frame_bytes, and bad values name their key.
func TestLoginLimitsConfig(t *testing.T) {
	cfg, err := config.Parse([]byte("upstream:\n  bootstrap: [a:1]\nlimits:\n  max_connections: 100\n  max_frame_bytes: 2048\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Limits; l.MaxUnauthenticatedConnections != 50 || l.MaxUnauthenticatedPerAddress != 12 ||
		l.LoginTimeout != 10*time.Second || l.MaxPreAuthFrameBytes != 2048 {
		t.Fatalf("defaults: %+v", l)
	}
	for _, tc := range []struct{ limits, want string }{
		{"max_connections: 10\n  max_unauthenticated_connections: 11", "limits.max_unauthenticated_connections"},
		{"max_unauthenticated_connections: -1", "limits.max_unauthenticated_connections"},
		{"max_unauthenticated_per_address: -2", "limits.max_unauthenticated_per_address"},
		{"login_timeout: -1s", "limits.login_timeout"},
		{"max_preauth_frame_bytes: 100", "limits.max_preauth_frame_bytes"},
		{"max_frame_bytes: 4096\n  max_preauth_frame_bytes: 8192", "limits.max_preauth_frame_bytes"},
	} {
		_, err := config.Parse([]byte("upstream:\n  bootstrap: [a:1]\nlimits:\n  " + tc.limits + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("limits %q: error %v, want it to name %s", tc.limits, err, tc.want)
		}
	}
}

// A tenant rule's regex must match the whole principal name: a partial
// match would put principals into a tenant their name only contains.
func TestTenantRulePatternAnchored(t *testing.T) {
	re, err := config.TenantRule{Regex: `User:(a|b)-svc`, Tenant: "$1"}.Pattern()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"User:a-svc": true, "User:b-svc": true,
		"User:a-svc2": false, "xUser:a-svc": false, "User:ab-svc": false,
	} {
		if got := re.MatchString(name); got != want {
			t.Errorf("%q: match %v, want %v", name, got, want)
		}
	}
	if re, err := (config.TenantRule{Prefix: "User:a", Tenant: "t"}).Pattern(); re != nil || err != nil {
		t.Fatalf("prefix rule: pattern %v, error %v", re, err)
	}
}

// TestVirtualClusterProblems: prefixes are required and must not overlap,
// and virtual clusters need the policy.
func TestVirtualClusterProblems(t *testing.T) {
	base := "upstream:\n  bootstrap: [127.0.0.1:9092]\npolicy:\n  dirs: [/p]\ntenants:\n  virtual_clusters:\n"
	for yaml, want := range map[string]string{
		"    acme: {prefix: \"acme.\"}\n    globex: {prefix: \"globex.\"}\n": "",
		"    acme: {prefix: \"\"}\n":                                         "virtual_clusters.acme.prefix: required",
		"    acme: {prefix: \"a\"}\n    acme2: {prefix: \"acme2.\"}\n":       "overlap",
	} {
		_, err := config.Parse([]byte(base + yaml))
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: error %v, want %q", yaml, err, want)
		}
	}
	_, err := config.Parse([]byte("upstream:\n  bootstrap: [127.0.0.1:9092]\npolicy:\n  disabled: true\ntenants:\n  virtual_clusters:\n    acme: {prefix: \"acme.\"}\n"))
	if err == nil || !strings.Contains(err.Error(), "need the policy") {
		t.Errorf("virtual clusters without the policy: %v", err)
	}
}
