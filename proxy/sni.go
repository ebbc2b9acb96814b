package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"

	"github.com/kguard/kguard/config"
)

// sniListener is the node of the SNI listener (listen.sni): the upstream of
// each of its connections is known only once the TLS server name is.
const sniListener int32 = -2

// The kguard_sni_refused_total reasons.
const (
	sniUnknownName = "unknown_name"
	sniNoName      = "no_name"
)

// sniRoute is what a connection's TLS server name picked.
type sniRoute struct {
	node   int32  // upstream node id; -1: any broker (the bootstrap name)
	name   string // the server name as sent
	reason string // set when refused: sniUnknownName or sniNoName
}

// listener is the listener label of the route (bootstrap, broker-N).
func (r *sniRoute) listener() string {
	if r.node < 0 {
		return "bootstrap"
	}
	return "broker-" + strconv.Itoa(int(r.node))
}

// unknownBroker is the metric label of a broker name whose node id kguard
// has not learned: labels stay bounded by the cluster's brokers whatever
// ids clients send.
const unknownBroker = "unknown_broker"

// listenerLabel is label, or unknownBroker for a node id (>= 0) that is not
// one of the upstream brokers kguard knows.
func (p *Proxy) listenerLabel(node int32, label string) string {
	if node < 0 {
		return label
	}
	p.mu.Lock()
	_, ok := p.nodes[node]
	p.mu.Unlock()
	if !ok {
		return unknownBroker
	}
	return label
}

// sniRefusedMsg is the log message of a handshake refused for its server
// name (neither listen.sni.bootstrap_name nor a broker name, or none).
const sniRefusedMsg = "TLS server name refused (alert unrecognized_name)"

// sniTLSConfig is the TLS config of one SNI-listener connection: it routes
// the client's server name into r before the handshake goes on with base
// (the listener's certificates and client CA). A name that is neither the
// bootstrap name nor a broker name, or no name at all, is answered with
// the TLS alert unrecognized_name: the config handed to crypto/tls for
// it holds no certificate, which is how crypto/tls sends that alert.
// (tls.Config.GetConfigForClient errors are answered with internal_error.)
func sniTLSConfig(names *config.SNINames, base *tls.Config, r *sniRoute) *tls.Config {
	return &tls.Config{
		MinVersion: base.MinVersion,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			r.name = hello.ServerName
			node, _, ok := names.Route(hello.ServerName)
			if !ok {
				r.reason = sniUnknownName
				if hello.ServerName == "" {
					r.reason = sniNoName
				}
				return &tls.Config{MinVersion: tls.VersionTLS12}, nil
			}
			r.node = node
			if base.GetConfigForClient != nil {
				return base.GetConfigForClient(hello)
			}
			return base, nil
		},
	}
}

// checkSNICertificate refuses to start when the listener's certificate
// does not cover listen.sni.bootstrap_name: every client would fail to
// verify it. (Broker names are checked by the clients; a wildcard
// certificate covers brokers that join later.)
func checkSNICertificate(cfg *tls.Config, names *config.SNINames) error {
	cur := cfg
	if cfg.GetConfigForClient != nil {
		c, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{ServerName: names.Bootstrap()})
		if err != nil {
			return fmt.Errorf("listen.tls: %w", err)
		}
		if c != nil {
			cur = c
		}
	}
	if len(cur.Certificates) == 0 || cur.Certificates[0].Leaf == nil {
		return errors.New("listen.sni: the listener has no parsed certificate to check the names against")
	}
	if err := cur.Certificates[0].Leaf.VerifyHostname(names.Bootstrap()); err != nil {
		return fmt.Errorf("listen.sni.bootstrap_name: the certificate of listen.tls does not cover it: %w", err)
	}
	return nil
}
