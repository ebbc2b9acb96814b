// Package testenv tells tests where the real services that `make test` starts
// (an Apache Kafka 4.x KRaft cluster, an OpenBao dev server) can be reached.
//
// A test that needs a service calls the matching function. When the service's
// environment variables are unset the test is skipped on a developer machine,
// but fails when KGUARD_REQUIRE_SERVICES=1 (set by `make test` and CI), so a
// missing service can never silently turn a suite green.
package testenv

import (
	"os"
	"strings"
	"testing"
)

// Required reports whether missing services must fail tests instead of
// skipping them.
func Required() bool { return os.Getenv("KGUARD_REQUIRE_SERVICES") == "1" }

func need(t testing.TB, what string, vars ...string) []string {
	t.Helper()
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = os.Getenv(v)
		if out[i] == "" {
			if Required() {
				t.Fatalf("%s required (KGUARD_REQUIRE_SERVICES=1) but %s is not set", what, v)
			}
			t.Skipf("%s not available: %s is not set (run via `make test`)", what, v)
		}
	}
	return out
}

// OpenBao is a running OpenBao (or Vault) server with a root token.
type OpenBao struct {
	Addr  string // e.g. http://127.0.0.1:8200
	Token string
}

// NeedOpenBao returns the OpenBao dev server started by test/openbao.sh,
// shared by every package's tests: a test that needs an outage starts its
// own server (StartOwnOpenBao) instead of stopping this one.
func NeedOpenBao(t testing.TB) OpenBao {
	t.Helper()
	v := need(t, "OpenBao", "KGUARD_TEST_BAO_ADDR", "KGUARD_TEST_BAO_TOKEN")
	return OpenBao{Addr: v[0], Token: v[1]}
}

// Kafka is the real Apache Kafka cluster started by test/kafka/cluster.sh.
type Kafka struct {
	Plaintext []string // PLAINTEXT listener addresses, host:port
	SASLSSL   []string // SASL_SSL (SCRAM-SHA-512) listener addresses
	CAFile    string   // PEM CA that signed the broker certificates
	User      string   // SCRAM-SHA-512 user for kguard's upstream identity
	Password  string
	Script    string // path of cluster.sh, for fault tests (kill/restart a node)
}

// NeedKafka returns the real Kafka cluster.
func NeedKafka(t testing.TB) Kafka {
	t.Helper()
	v := need(t, "Apache Kafka cluster",
		"KGUARD_TEST_KAFKA_PLAINTEXT", "KGUARD_TEST_KAFKA_SASL_SSL", "KGUARD_TEST_KAFKA_CA",
		"KGUARD_TEST_KAFKA_USER", "KGUARD_TEST_KAFKA_PASSWORD", "KGUARD_TEST_KAFKA_SCRIPT")
	return Kafka{
		Plaintext: strings.Split(v[0], ","),
		SASLSSL:   strings.Split(v[1], ","),
		CAFile:    v[2], User: v[3], Password: v[4], Script: v[5],
	}
}
