package compat_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// TestSNIClients: kguard serves the bootstrap and all three brokers of the
// real cluster on one TLS port, routed by SNI name (listen.sni with
// bootstrap.kafka.localhost and broker-{id}.kafka.localhost, which the
// system resolver maps to loopback: test/deps.sh). franz-go, kcat and the
// Java client each produce to and consume from a 3-partition topic led by
// all three brokers through that one host:port; kguard's per-name routing
// counters show each client reached every broker by its name. A wrong name
// and no name (a connection by IP address) are refused with the TLS alert
// unrecognized_name, and kguard keeps serving.
func TestSNIClients(t *testing.T) {
	s := startStackWith(t, stackOpts{sni: true})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	_, port, _ := net.SplitHostPort(s.env.Bootstrap())
	t.Logf("SNI listener %s: bootstrap %s, brokers %v", s.env.Bootstrap(), s.bootstrap, sortedValues(s.env.Proxy.BrokerAddrs()))
	for _, name := range []string{harness.SNIBootstrapName, "broker-1.kafka.localhost"} {
		if addrs, err := net.DefaultResolver.LookupHost(ctx, name); err != nil || !contains(addrs, "127.0.0.1") {
			msg := fmt.Sprintf("%s does not resolve to 127.0.0.1 (%v, %v): kcat and Java need nss-myhostname (test/deps.sh)", name, addrs, err)
			if testenv.Required() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}

	refused := func(reason string) float64 { return s.env.Counter(t, "kguard_sni_refused_total", "reason", reason) }
	refuse := func(who, name, reason string, dial func() error) {
		before := refused(reason)
		err := dial()
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unrecognized name") {
			t.Errorf("%s with server name %q: %v, want the TLS alert unrecognized_name", who, name, err)
			return
		}
		// (kcat retries within its metadata timeout: at least one.)
		waitUntil(t, func() bool { return refused(reason) >= before+1 })
		t.Logf("SNI refused %s %q (%s): %s", who, name, reason, firstLine(err.Error()))
	}
	goDial := func(name string) func() error {
		return func() error {
			d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
				Config: &tls.Config{ServerName: name, RootCAs: s.sni.Roots, InsecureSkipVerify: name == "", MinVersion: tls.VersionTLS12}}
			c, err := d.DialContext(ctx, "tcp", s.env.Bootstrap())
			if err == nil {
				c.Close()
			}
			return err
		}
	}
	refuse("Go TLS", "kafka.example.com", "unknown_name", goDial("kafka.example.com"))
	refuse("Go TLS", "", "no_name", goDial(""))
	if _, err := exec.LookPath("kcat"); err == nil {
		refuse("kcat", "evil.kafka.localhost", "unknown_name", func() error { return kcatMetadata(ctx, s, "evil.kafka.localhost:"+port) })
		refuse("kcat", "", "no_name", func() error { return kcatMetadata(ctx, s, "127.0.0.1:"+port) })
	}

	java := extClients()[4]
	kcat := extClients()[0] // Debian's librdkafka, PLAIN (see kcatSCRAMProbe)
	// nss-myhostname resolves the names to ::1 before 127.0.0.1, where
	// the test's kguard does not listen; librdkafka's producer gives up
	// when its only (bootstrap) connection is refused: IPv4 only.
	kcat.cmd = append(append([]string{}, kcat.cmd...), "--property", "broker.address.family=v4")
	clients := []struct {
		name string
		run  func(r *row, topic, group string)
	}{
		{"franz-go", func(r *row, topic, group string) { runFranz(ctx, t, s, r, topic, group, records) }},
		{kcat.name, func(r *row, topic, group string) { runExt(ctx, t, s, kcat, r, topic, group) }},
		{java.name, func(r *row, topic, group string) { runExt(ctx, t, s, java, r, topic, group) }},
	}
	var rows []*row
	var topics []string
	brokers := sortedKeys(s.env.Proxy.BrokerAddrs())
	routed := func() map[string]float64 {
		m := map[string]float64{"bootstrap": s.env.Counter(t, "kguard_sni_routed_total", "listener", "bootstrap")}
		for _, id := range brokers {
			l := "broker-" + strconv.Itoa(int(id))
			m[l] = s.env.Counter(t, "kguard_sni_routed_total", "listener", l)
		}
		return m
	}
	// One client at a time, so that the routing counters' increase is
	// that client's.
	for _, c := range clients {
		r := newRow(c.name)
		rows = append(rows, r)
		topic, group := topicName(t, "t-sni", c.name), topicName(t, "g-sni", c.name)
		topics = append(topics, topic)
		t.Run(c.name, func(t *testing.T) {
			before := routed()
			c.run(r, topic, group)
			reportRow(t, r)
			after := routed()
			var parts []string
			for _, l := range append([]string{"bootstrap"}, brokerLabels(brokers)...) {
				d := after[l] - before[l]
				parts = append(parts, fmt.Sprintf("%s=%.0f", l, d))
				if l != "bootstrap" && d == 0 {
					t.Errorf("%s never connected to %s by its SNI name", c.name, l)
				}
			}
			leaders := topicLeaders(ctx, t, s, topic)
			if len(leaders) != len(brokers) {
				t.Errorf("topic %s is led by brokers %v, want all of %v", topic, leaders, brokers)
			}
			outcome := fmt.Sprintf("%d records produced and consumed", records)
			if t.Failed() {
				outcome = "FAILED (table below)"
			}
			t.Logf("SNI %s: %s through %s; TLS connections by name: %s; partition leaders %v",
				c.name, outcome, s.bootstrap, strings.Join(parts, " "), leaders)
		})
	}
	adm := s.admin(t)
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	if _, err := adm.DeleteTopics(dctx, topics...); err != nil {
		t.Logf("deleting the test topics: %v", err)
	}
	table, details, _ := render(rows)
	t.Logf("\nClients through kguard's one SNI port %s (SASL_SSL to kguard; %d records each)\n%s%s", s.bootstrap, records, table, details)
	t.Logf("SNI refused: unknown_name %.0f, no_name %.0f", refused("unknown_name"), refused("no_name"))
}

// kcatMetadata runs kcat -L against bootstrap over TLS (the handshake is
// what is tested: no SASL).
func kcatMetadata(ctx context.Context, s *stack, bootstrap string) error {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "kcat", "-L", "-m", "5", "-b", bootstrap,
		"-X", "security.protocol=SSL", "-X", "ssl.ca.location="+s.caFile, "-X", "broker.address.family=v4")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kcat -L: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	return fmt.Errorf("kcat -L succeeded: %s", firstLine(out.String()))
}

// topicLeaders are the distinct leaders of topic's partitions.
func topicLeaders(ctx context.Context, t *testing.T, s *stack, topic string) []int32 {
	md, err := s.admin(t).Metadata(ctx, topic)
	if err != nil {
		t.Errorf("metadata of %s: %v", topic, err)
		return nil
	}
	seen := map[int32]bool{}
	for _, p := range md.Topics[topic].Partitions {
		seen[p.Leader] = true
	}
	return sortedKeys(seen)
}

func sortedKeys[V any](m map[int32]V) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func sortedValues(m map[int32]string) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

func brokerLabels(ids []int32) []string {
	var out []string
	for _, id := range ids {
		out = append(out, "broker-"+strconv.Itoa(int(id)))
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("condition not met within 10s")
		}
	}
}
