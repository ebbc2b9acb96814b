package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// SNI puts every broker behind the one TLS listener of listen.bootstrap:
// the server name a client sends in its TLS handshake (SNI) picks the
// upstream, BootstrapName any broker, BrokerName with {id} replaced by a
// node id that broker. Broker addresses are advertised as that name and
// AdvertisedPort, so clients need one host:port open to them.
type SNI struct {
	// BootstrapName is the name clients bootstrap from, e.g.
	// bootstrap.kafka.example.com.
	BootstrapName string `yaml:"bootstrap_name"`
	// BrokerName is the pattern of broker names; it holds {id} once, e.g.
	// broker-{id}.kafka.example.com.
	BrokerName string `yaml:"broker_name"`
	// AdvertisedPort is the port put in rewritten broker addresses.
	// Default: listen.bootstrap's port.
	AdvertisedPort int `yaml:"advertised_port"`
}

// idPlaceholder is the node id's place in SNI.BrokerName.
const idPlaceholder = "{id}"

// SNINames maps TLS server names to upstream brokers and back; build it
// with NewSNINames from a validated SNI. Names compare case-insensitively
// (DNS names), and a node id is written in decimal without sign or leading
// zeros, so every broker has exactly one name.
type SNINames struct {
	bootstrap      string
	prefix, suffix string
}

// NewSNINames checks s's names and returns their mapping.
func NewSNINames(s *SNI) (*SNINames, error) {
	var errs []error
	if err := checkDNSName(strings.Replace(s.BrokerName, idPlaceholder, "0", 1)); err != nil {
		errs = append(errs, fmt.Errorf("listen.sni.broker_name %q: %w", s.BrokerName, err))
	}
	if n := strings.Count(s.BrokerName, idPlaceholder); n != 1 {
		errs = append(errs, fmt.Errorf("listen.sni.broker_name %q: must hold %s exactly once, holds it %d times", s.BrokerName, idPlaceholder, n))
	}
	if err := checkDNSName(s.BootstrapName); err != nil {
		errs = append(errs, fmt.Errorf("listen.sni.bootstrap_name %q: %w", s.BootstrapName, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	pre, suf, _ := strings.Cut(strings.ToLower(s.BrokerName), idPlaceholder)
	n := &SNINames{bootstrap: strings.ToLower(s.BootstrapName), prefix: pre, suffix: suf}
	if id, ok := n.brokerID(n.bootstrap); ok {
		return nil, fmt.Errorf("listen.sni.bootstrap_name %q: is also the name of broker %d (broker_name %q)", s.BootstrapName, id, s.BrokerName)
	}
	return n, nil
}

// Route maps a TLS server name to the bootstrap (bootstrap true) or to a
// broker's node id. ok is false for any other name, the empty one
// included.
func (n *SNINames) Route(serverName string) (node int32, bootstrap, ok bool) {
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	if name == "" {
		return 0, false, false
	}
	if name == n.bootstrap {
		return -1, true, true
	}
	id, ok := n.brokerID(name)
	return id, false, ok
}

func (n *SNINames) brokerID(name string) (int32, bool) {
	if len(name) <= len(n.prefix)+len(n.suffix) || !strings.HasPrefix(name, n.prefix) || !strings.HasSuffix(name, n.suffix) {
		return 0, false
	}
	digits := name[len(n.prefix) : len(name)-len(n.suffix)]
	if digits != "0" && digits[0] == '0' {
		return 0, false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(digits, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(id), true
}

// Bootstrap is the bootstrap name.
func (n *SNINames) Bootstrap() string { return n.bootstrap }

// Broker is the name of broker node.
func (n *SNINames) Broker(node int32) string {
	return n.prefix + strconv.Itoa(int(node)) + n.suffix
}

// checkDNSName accepts host names of letters, digits and hyphens in labels
// of 1-63 characters, not starting or ending with a hyphen.
func checkDNSName(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > 253 {
		return errors.New("longer than 253 characters")
	}
	if net.ParseIP(s) != nil {
		return errors.New("is an IP address; SNI carries host names only")
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q is not a DNS label", l)
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("label %q is not a DNS label", l)
			}
		}
	}
	return nil
}

// sniProblems validates listen.sni (after SetDefaults).
func (l *Listen) sniProblems() []error {
	s := l.SNI
	if s == nil {
		return nil
	}
	var errs []error
	if _, err := NewSNINames(s); err != nil {
		errs = append(errs, fmt.Errorf("config %w", err))
	}
	if l.TLS == nil {
		errs = append(errs, errors.New("config listen.sni: needs listen.tls (the server name comes from the TLS handshake)"))
	}
	if l.BrokerPortBase != 0 || len(l.BrokerPorts) > 0 {
		errs = append(errs, errors.New("config listen.sni: excludes broker_port_base and broker_ports (every broker is served on listen.bootstrap)"))
	}
	if s.AdvertisedPort <= 0 || s.AdvertisedPort > 65535 {
		errs = append(errs, fmt.Errorf("config listen.sni.advertised_port: %d is not a port", s.AdvertisedPort))
	}
	return errs
}
