package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kguard/kguard/config"
)

// The SNI names of the tests: under .localhost, which resolves to the
// loopback addresses without a DNS server (glibc's nss-myhostname, set up
// by test/deps.sh; RFC 6761).
const (
	SNIBootstrapName = "bootstrap.kafka.localhost"
	SNIBrokerName    = "broker-{id}.kafka.localhost"
)

// SNITLS is a test CA and a server certificate for kguard's SNI listener
// (PEM files in a test directory).
type SNITLS struct {
	CAFile, CertFile, KeyFile string
	Roots                     *x509.CertPool
}

// NewSNITLS writes a fresh CA and a server certificate for the SNI names
// (the bootstrap name, *.kafka.localhost and broker-1..3 spelled out) to a
// temporary directory. ECDSA P-256: every client's TLS stack has it.
func NewSNITLS(tb testing.TB) *SNITLS {
	tb.Helper()
	dir := tb.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kguard SNI test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: SNIBootstrapName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{SNIBootstrapName, "*.kafka.localhost", "broker-1.kafka.localhost",
			"broker-2.kafka.localhost", "broker-3.kafka.localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, srv, caCert, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	s := &SNITLS{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "server.pem"),
		KeyFile: filepath.Join(dir, "server-key.pem"), Roots: x509.NewCertPool()}
	s.Roots.AddCert(caCert)
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{s.CAFile, "CERTIFICATE", caDER}, {s.CertFile, "CERTIFICATE", der}, {s.KeyFile, "PRIVATE KEY", kder}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// Configure turns c's bootstrap listener into the SNI listener with the
// test names and certificate (no per-broker listeners).
func (s *SNITLS) Configure(c *config.Config) {
	c.Listen.TLS = &config.ServerTLS{CertFile: s.CertFile, KeyFile: s.KeyFile}
	c.Listen.BrokerPortBase, c.Listen.BrokerPorts = 0, nil
	_, port, _ := net.SplitHostPort(c.Listen.Bootstrap)
	p, _ := net.LookupPort("tcp", port)
	c.Listen.SNI = &config.SNI{BootstrapName: SNIBootstrapName, BrokerName: SNIBrokerName, AdvertisedPort: p}
}

// Dial is a kgo.Dialer for the SNI names: it connects to the loopback
// address on the name's port, whatever the resolver says, and sends the
// name as the TLS server name (verified against the test CA).
func (s *SNITLS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return s.DialWith()(ctx, network, addr)
}

// DialWith is Dial presenting client certificates (mTLS).
func (s *SNITLS) DialWith(certs ...tls.Certificate) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		d := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: s.Roots, Certificates: certs, MinVersion: tls.VersionTLS12}}
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
}

// Counter is the value of counter name whose label has value (summed over
// its other labels), from kguard's metrics registry; 0 when absent.
func (e *Env) Counter(tb testing.TB, name, label, value string) float64 {
	tb.Helper()
	mfs, err := e.Registry.Gather()
	if err != nil {
		tb.Fatalf("gathering kguard metrics: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
