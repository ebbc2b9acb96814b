// Package config is kguard's configuration: the YAML file's types, their
// loading, defaults and validation. Packages that run kguard (proxy, and
// cmd/kguard that wires the pieces) take their settings from here.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kguard/kguard/proxy/wire"
)

// Config is kguard's proxy configuration, loaded from YAML. Every field has
// a yaml tag; unknown keys are errors that name the key and its line.
type Config struct {
	Listen   Listen   `yaml:"listen"`
	Upstream Upstream `yaml:"upstream"`
	Limits   Limits   `yaml:"limits"`
	Quotas   Quotas   `yaml:"quotas"`
	Policy   Policy   `yaml:"policy"`
	Audit    Audit    `yaml:"audit"`
	Crypto   Crypto   `yaml:"crypto"`
	Log      Log      `yaml:"log"`
	Metrics  Metrics  `yaml:"metrics"`
	// Tenants maps principals to tenants for the policy.
	Tenants Tenants `yaml:"tenants"`
}

// Listen is the client-facing side.
type Listen struct {
	// Bootstrap is the address clients bootstrap from, host:port.
	Bootstrap string `yaml:"bootstrap"`
	// AdvertisedHost is the host put in rewritten broker addresses.
	// Default: Bootstrap's host.
	AdvertisedHost string `yaml:"advertised_host"`
	// BindHost is the host the per-broker listeners bind to. Default:
	// Bootstrap's host.
	BindHost string `yaml:"bind_host"`
	// BrokerPortBase: upstream broker with node id N gets a listener on
	// BrokerPortBase+N, unless BrokerPorts names its port.
	BrokerPortBase int           `yaml:"broker_port_base"`
	BrokerPorts    map[int32]int `yaml:"broker_ports"`
	TLS            *ServerTLS    `yaml:"tls"`
	Auth           Auth          `yaml:"auth"`
	// SNI serves the bootstrap and every broker on the one TLS listener
	// of Bootstrap, routed by the client's TLS server name (nil: one
	// listener per broker).
	SNI *SNI `yaml:"sni"`
}

// Auth says how clients authenticate to kguard. With SASL mechanisms
// configured, every client must log in with one of them. Without, a client
// with a verified certificate (listen.tls.client_ca_file) is its mTLS
// principal, and anyone else is refused unless allow_anonymous is set.
type Auth struct {
	SASLMechanisms  []string `yaml:"sasl_mechanisms"`
	CredentialsFile string   `yaml:"credentials_file"`
	OAuth           *OAuth   `yaml:"oauth"`
	// PrincipalSource: subject (default), san-dns or san-uri.
	PrincipalSource string `yaml:"principal_source"`
	// MappingRules follow Kafka's ssl.principal.mapping.rules.
	MappingRules []string `yaml:"mapping_rules"`
	// MaxSessionLifetime is KIP-368's connections.max.reauth.ms: a client
	// must re-authenticate within it or its connection closes. 0: no limit
	// (token expiry still applies).
	MaxSessionLifetime time.Duration `yaml:"max_session_lifetime"`
	// AllowAnonymous lets unauthenticated clients in as User:ANONYMOUS
	// (what `kguard demo` does). Off by default: fail closed.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// AnonymousPrincipal names unauthenticated clients where allowed
	// (default ANONYMOUS, as User:ANONYMOUS in Kafka).
	AnonymousPrincipal string `yaml:"anonymous_principal"`
}

// OAuth configures OAUTHBEARER token validation.
type OAuth struct {
	JWKSFile          string        `yaml:"jwks_file"`
	JWKSURL           string        `yaml:"jwks_url"`
	AllowInsecureHTTP bool          `yaml:"allow_insecure_http"`
	RefreshInterval   time.Duration `yaml:"refresh_interval"`
	Issuer            string        `yaml:"issuer"`
	Audiences         []string      `yaml:"audiences"`
	ClockSkew         time.Duration `yaml:"clock_skew"`
	Algorithms        []string      `yaml:"algorithms"`
	PrincipalClaim    string        `yaml:"principal_claim"`
}

// ServerTLS configures downstream TLS.
type ServerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile enables client certificate verification.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is none, optional, or required (default required when
	// ClientCAFile is set).
	ClientAuth string `yaml:"client_auth"`
}

// Upstream is how kguard reaches the brokers.
type Upstream struct {
	Bootstrap   []string      `yaml:"bootstrap"`
	TLS         *ClientTLS    `yaml:"tls"`
	SASL        *ClientSASL   `yaml:"sasl"`
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ClientID is the client id of kguard's own requests.
	ClientID string `yaml:"client_id"`
	// MetadataRefresh is how often kguard refreshes its broker list to
	// open listeners for brokers that joined.
	MetadataRefresh time.Duration `yaml:"metadata_refresh"`
	// StartupTimeout is how long kguard waits for the upstream at start.
	StartupTimeout time.Duration `yaml:"startup_timeout"`
}

// ClientTLS configures upstream TLS.
type ClientTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// ClientSASL is kguard's own identity towards the brokers.
type ClientSASL struct {
	Mechanism    string `yaml:"mechanism"` // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Limits bounds resources.
type Limits struct {
	// MaxConnections caps client connections, authenticated or not.
	MaxConnections int `yaml:"max_connections"`
	// MaxUnauthenticatedConnections caps the connections that have not
	// completed authentication yet (TLS handshake and SASL), so that
	// the rest of MaxConnections stays for authenticated clients.
	// Default: half of MaxConnections.
	MaxUnauthenticatedConnections int `yaml:"max_unauthenticated_connections"`
	// MaxUnauthenticatedPerAddress caps the unauthenticated connections
	// from one client IP address, so one host cannot take every login
	// slot. Default: a quarter of MaxUnauthenticatedConnections (at
	// least 1), so no one address can take every login slot.
	MaxUnauthenticatedPerAddress int `yaml:"max_unauthenticated_per_address"`
	// LoginTimeout closes a connection that has not completed its TLS
	// handshake and authentication that long after it was accepted,
	// however it trickles bytes. Default 10s.
	LoginTimeout time.Duration `yaml:"login_timeout"`
	// MaxFrameBytes caps one request or response frame.
	MaxFrameBytes int32 `yaml:"max_frame_bytes"`
	// MaxPreAuthFrameBytes caps one request frame before the client
	// has authenticated (Kafka: 512 KiB before SASL completes).
	MaxPreAuthFrameBytes int32 `yaml:"max_preauth_frame_bytes"`
	// MaxConcurrentDecompressions caps the record batches kguard holds
	// decompressed at once, across all connections (each at most 64 MiB):
	// the produce path of protected topics and the reserved-header scan
	// of unprotected ones wait for a slot. A protected batch keeps its
	// slot while its fields are encrypted (key service calls included),
	// so the default leaves room for a few slow ones: the number of
	// CPUs, at least 4.
	MaxConcurrentDecompressions int `yaml:"max_concurrent_decompressions"`
	// MaxInFlight caps pipelined requests per connection; the client is
	// not read from while it is reached.
	MaxInFlight int `yaml:"max_in_flight"`
	// IdleTimeout closes a client connection that sends nothing for that
	// long (brokers: connections.max.idle.ms, 9 minutes).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// RequestTimeout closes a connection whose upstream does not answer
	// a request in that long.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// ShutdownGrace is how long a shutdown drains in-flight requests
	// before closing connections.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
}

// Policy locates the Rego policies that authorize every request.
type Policy struct {
	// Dirs are policy roots (Rego modules, their tests and data files).
	Dirs []string `yaml:"dirs"`
	// Watch reloads the policies when their files change (also on SIGHUP).
	Watch bool `yaml:"watch"`
	// Disabled runs kguard without authorization, as a plain proxy. It
	// must be said explicitly: without policies kguard refuses to start.
	Disabled bool `yaml:"disabled"`
}

// Log configures zap.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or console
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen string `yaml:"listen"` // empty: off
	// Pprof also serves Go's /debug/pprof/ profiles on the metrics
	// listener (off by default: profiles expose internals; bind the
	// listener to loopback when it is on).
	Pprof bool `yaml:"pprof"`
	// KMSProbeInterval is how often the key service is probed for
	// /readyz and kguard_kms_up when data protection is on (default 10s).
	KMSProbeInterval time.Duration `yaml:"kms_probe_interval"`
}

// Load reads and validates a YAML config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML strictly (unknown keys and wrong types are errors
// naming the key and line), applies defaults and validates.
func Parse(b []byte) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	c.Quotas.SetDefaults()
	l := &c.Listen
	if l.Bootstrap == "" {
		l.Bootstrap = "127.0.0.1:9092"
	}
	host, port, _ := net.SplitHostPort(l.Bootstrap)
	if l.AdvertisedHost == "" {
		l.AdvertisedHost = host
		if l.AdvertisedHost == "" || l.AdvertisedHost == "0.0.0.0" || l.AdvertisedHost == "::" {
			l.AdvertisedHost = "127.0.0.1"
		}
	}
	if l.BindHost == "" {
		l.BindHost = host
	}
	if l.SNI != nil {
		if l.SNI.AdvertisedPort == 0 {
			l.SNI.AdvertisedPort, _ = strconv.Atoi(port)
		}
	} else if l.BrokerPortBase == 0 && len(l.BrokerPorts) == 0 {
		if p, err := strconv.Atoi(port); err == nil {
			l.BrokerPortBase = p + 1
		}
	}
	u := &c.Upstream
	if u.DialTimeout == 0 {
		u.DialTimeout = 10 * time.Second
	}
	if u.ClientID == "" {
		u.ClientID = "kguard"
	}
	if u.MetadataRefresh == 0 {
		u.MetadataRefresh = 30 * time.Second
	}
	if u.StartupTimeout == 0 {
		u.StartupTimeout = 2 * time.Minute
	}
	m := &c.Limits
	if m.MaxConnections == 0 {
		m.MaxConnections = 10000
	}
	if m.MaxUnauthenticatedConnections == 0 {
		m.MaxUnauthenticatedConnections = max(1, m.MaxConnections/2)
	}
	if m.MaxUnauthenticatedPerAddress == 0 {
		m.MaxUnauthenticatedPerAddress = max(1, m.MaxUnauthenticatedConnections/4)
	}
	if m.LoginTimeout == 0 {
		m.LoginTimeout = 10 * time.Second
	}
	if m.MaxFrameBytes == 0 {
		m.MaxFrameBytes = wire.DefaultMaxFrame
	}
	if m.MaxConcurrentDecompressions == 0 {
		m.MaxConcurrentDecompressions = max(4, runtime.NumCPU())
	}
	if m.MaxPreAuthFrameBytes == 0 {
		m.MaxPreAuthFrameBytes = min(wire.DefaultMaxPreAuthFrame, m.MaxFrameBytes)
	}
	if m.MaxInFlight == 0 {
		m.MaxInFlight = 100
	}
	if m.IdleTimeout == 0 {
		m.IdleTimeout = 10 * time.Minute
	}
	if m.RequestTimeout == 0 {
		m.RequestTimeout = 2 * time.Minute
	}
	if m.ShutdownGrace == 0 {
		m.ShutdownGrace = 30 * time.Second
	}
	if c.Listen.Auth.AnonymousPrincipal == "" {
		c.Listen.Auth.AnonymousPrincipal = "ANONYMOUS"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Metrics.KMSProbeInterval <= 0 {
		c.Metrics.KMSProbeInterval = 10 * time.Second
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
}

// Validate checks a config after SetDefaults; errors name the key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen.Bootstrap); err != nil {
		bad("listen.bootstrap", "%v", err)
	}
	if len(c.Upstream.Bootstrap) == 0 {
		bad("upstream.bootstrap", "at least one broker address is required")
	}
	for i, a := range c.Upstream.Bootstrap {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad(fmt.Sprintf("upstream.bootstrap[%d]", i), "%v", err)
		}
	}
	if c.Listen.BrokerPortBase < 0 || c.Listen.BrokerPortBase > 65535 {
		bad("listen.broker_port_base", "%d is not a port", c.Listen.BrokerPortBase)
	}
	for id, p := range c.Listen.BrokerPorts {
		if p <= 0 || p > 65535 {
			bad(fmt.Sprintf("listen.broker_ports.%d", id), "%d is not a port", p)
		}
	}
	if t := c.Listen.TLS; t != nil {
		if t.CertFile == "" || t.KeyFile == "" {
			bad("listen.tls", "cert_file and key_file are required")
		}
		switch t.ClientAuth {
		case "", "none", "optional", "required":
		default:
			bad("listen.tls.client_auth", "%q: want none, optional or required", t.ClientAuth)
		}
	}
	if s := c.Upstream.SASL; s != nil {
		switch s.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			bad("upstream.sasl.mechanism", "%q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
		}
		if s.Username == "" {
			bad("upstream.sasl.username", "required")
		}
		if (s.Password == "") == (s.PasswordFile == "") {
			bad("upstream.sasl", "exactly one of password and password_file is required")
		}
	}
	if len(c.Policy.Dirs) > 0 && c.Policy.Disabled {
		bad("policy", "dirs and disabled: true exclude each other")
	}
	if len(c.Tenants.VirtualClusters) > 0 && c.Policy.Disabled {
		// Renaming runs in the authorization pipeline: without it a
		// tenant would see the physical cluster.
		bad("tenants.virtual_clusters", "need the policy (policy.disabled is set)")
	}
	a := &c.Listen.Auth
	for i, m := range a.SASLMechanisms {
		switch m {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
			if a.CredentialsFile == "" {
				bad("listen.auth.credentials_file", "required for %s", m)
			}
		case "OAUTHBEARER":
			if a.OAuth == nil {
				bad("listen.auth.oauth", "required for OAUTHBEARER")
			}
		default:
			bad(fmt.Sprintf("listen.auth.sasl_mechanisms[%d]", i), "%q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", m)
		}
	}
	switch a.PrincipalSource {
	case "", "subject", "san-dns", "san-uri":
	default:
		bad("listen.auth.principal_source", "%q: want subject, san-dns or san-uri", a.PrincipalSource)
	}
	if c.Limits.MaxFrameBytes < 1024 {
		bad("limits.max_frame_bytes", "%d is below 1024", c.Limits.MaxFrameBytes)
	}
	if l := c.Limits.MaxPreAuthFrameBytes; l < 1024 || l > c.Limits.MaxFrameBytes {
		bad("limits.max_preauth_frame_bytes", "%d is not between 1024 and limits.max_frame_bytes (%d)", l, c.Limits.MaxFrameBytes)
	}
	if n := c.Limits.MaxUnauthenticatedConnections; n < 1 || n > c.Limits.MaxConnections {
		bad("limits.max_unauthenticated_connections", "%d is not between 1 and limits.max_connections (%d)", n, c.Limits.MaxConnections)
	}
	if n := c.Limits.MaxUnauthenticatedPerAddress; n < 1 {
		bad("limits.max_unauthenticated_per_address", "%d is below 1", n)
	}
	if c.Limits.MaxConcurrentDecompressions < 1 {
		bad("limits.max_concurrent_decompressions", "%d is below 1", c.Limits.MaxConcurrentDecompressions)
	}
	if c.Limits.LoginTimeout < 0 {
		bad("limits.login_timeout", "%s is negative", c.Limits.LoginTimeout)
	}
	if c.Limits.MaxInFlight < 1 {
		bad("limits.max_in_flight", "must be at least 1")
	}
	errs = append(errs, c.Listen.sniProblems()...)
	errs = append(errs, c.Tenants.Problems()...)
	errs = append(errs, c.Crypto.problems()...)
	errs = append(errs, c.Quotas.Problems()...)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		bad("log.format", "%q: want json or console", c.Log.Format)
	}
	return errors.Join(errs...)
}
