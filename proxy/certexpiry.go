package proxy

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kguard/kguard/config"
)

// certExpiry exports when the certificates kguard uses expire: the
// listener's certificate and client CA, and the upstream client
// certificate and CA. Each scrape reads the files as they are on disk now
// (kguard reloads rotated certificates from them), so the gauge follows a
// rotation without a restart. A file that cannot be read or parsed gives
// no sample for its role (and kguard_tls_certificate_read_errors_total
// counts it); a CA file's first certificate is the one reported.
type certExpiry struct {
	files  []certFile
	desc   *prometheus.Desc
	errors *prometheus.CounterVec
}

type certFile struct{ role, path string }

func newCertExpiry(cfg *config.Config) *certExpiry {
	c := &certExpiry{
		desc: prometheus.NewDesc("kguard_tls_certificate_expiry_timestamp_seconds",
			"When a certificate kguard uses expires (NotAfter, Unix seconds), by role (listener, listener_client_ca, upstream_client, upstream_ca).",
			[]string{"role"}, nil),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_tls_certificate_read_errors_total", Help: "Scrapes that could not read or parse a certificate file, by role."},
			[]string{"role"}),
	}
	add := func(role, path string) {
		if path != "" {
			c.files = append(c.files, certFile{role, path})
		}
	}
	if t := cfg.Listen.TLS; t != nil {
		add("listener", t.CertFile)
		add("listener_client_ca", t.ClientCAFile)
	}
	if t := cfg.Upstream.TLS; t != nil {
		add("upstream_client", t.CertFile)
		add("upstream_ca", t.CAFile)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *certExpiry) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	c.errors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *certExpiry) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.files {
		notAfter, err := firstCertNotAfter(f.path)
		if err != nil {
			c.errors.WithLabelValues(f.role).Inc()
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(notAfter), f.role)
	}
	c.errors.Collect(ch)
}

// firstCertNotAfter is the NotAfter (Unix seconds) of the first
// certificate in a PEM file.
func firstCertNotAfter(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("certificate expiry: %w", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return 0, fmt.Errorf("certificate expiry: no certificate in %s", path)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return 0, fmt.Errorf("certificate expiry: %s: %w", path, err)
		}
		return cert.NotAfter.Unix(), nil
	}
}
