package auth

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ClientAuthMode says whether the listener asks for client certificates.
type ClientAuthMode string

// Client certificate modes.
const (
	// ClientCertRequired refuses clients without a certificate that chains
	// to the client CA pool (the default).
	ClientCertRequired ClientAuthMode = "required"
	// ClientCertOptional verifies a certificate when one is sent, and lets
	// clients without one continue (to authenticate with SASL).
	ClientCertOptional ClientAuthMode = "optional"
	// ClientCertNone does not ask for a client certificate.
	ClientCertNone ClientAuthMode = "none"
)

// TLSServerOptions configures the downstream (client-facing) TLS listener.
type TLSServerOptions struct {
	CertFile string // PEM certificate chain of the listener
	KeyFile  string // PEM private key
	// ClientCAFile is a PEM bundle of CAs trusted for client certificates;
	// required unless ClientAuth is ClientCertNone.
	ClientCAFile string
	// ClientAuth defaults to ClientCertRequired.
	ClientAuth ClientAuthMode
	// MinVersion defaults to TLS 1.2.
	MinVersion uint16
	// CheckInterval is how often, at most, a handshake checks the files'
	// modification times (default 5s; negative checks on every handshake).
	CheckInterval time.Duration
	Logger        *zap.Logger
}

// CertReloader serves the listener certificate and client CA pool, reloading
// them when the files change. A reload that fails keeps the previous
// material in force and logs.
type CertReloader struct {
	opts      TLSServerOptions
	base      *tls.Config
	logger    *zap.Logger
	state     atomic.Pointer[tlsState]
	lastCheck atomic.Int64
	mu        sync.Mutex
	now       func() time.Time
}

type tlsState struct {
	cert   *tls.Certificate
	pool   *x509.CertPool
	stamps map[string]fileStamp
	config *tls.Config
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// NewServerTLSConfig builds the *tls.Config for a client-facing listener.
// Certificates and the client CA pool come from the reloader through
// GetConfigForClient, so changes to the files apply to new handshakes.
func NewServerTLSConfig(opts TLSServerOptions) (*tls.Config, *CertReloader, error) {
	if opts.CertFile == "" || opts.KeyFile == "" {
		return nil, nil, errors.New("auth: TLS listener needs a certificate and a key file")
	}
	if opts.ClientAuth == "" {
		opts.ClientAuth = ClientCertRequired
	}
	var ca tls.ClientAuthType
	switch opts.ClientAuth {
	case ClientCertRequired:
		ca = tls.RequireAndVerifyClientCert
	case ClientCertOptional:
		ca = tls.VerifyClientCertIfGiven
	case ClientCertNone:
		ca = tls.NoClientCert
	default:
		return nil, nil, fmt.Errorf("auth: unknown client auth mode %q", opts.ClientAuth)
	}
	if ca != tls.NoClientCert && opts.ClientCAFile == "" {
		return nil, nil, errors.New("auth: client certificate verification needs a client CA file")
	}
	if opts.MinVersion == 0 {
		opts.MinVersion = tls.VersionTLS12
	}
	if opts.CheckInterval == 0 {
		opts.CheckInterval = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	r := &CertReloader{opts: opts, logger: opts.Logger, now: time.Now}
	r.base = &tls.Config{MinVersion: opts.MinVersion, ClientAuth: ca}
	st, err := r.load()
	if err != nil {
		return nil, nil, err
	}
	r.state.Store(st)
	r.lastCheck.Store(r.now().UnixNano())
	cfg := &tls.Config{
		MinVersion: opts.MinVersion,
		ClientAuth: ca,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.current().config, nil
		},
	}
	return cfg, r, nil
}

func (r *CertReloader) files() []string {
	f := []string{r.opts.CertFile, r.opts.KeyFile}
	if r.opts.ClientCAFile != "" {
		f = append(f, r.opts.ClientCAFile)
	}
	return f
}

func (r *CertReloader) load() (*tlsState, error) {
	stamps := map[string]fileStamp{}
	for _, f := range r.files() {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("auth: TLS file: %w", err)
		}
		stamps[f] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	cert, err := tls.LoadX509KeyPair(r.opts.CertFile, r.opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("auth: load listener certificate: %w", err)
	}
	st := &tlsState{cert: &cert, stamps: stamps}
	if r.opts.ClientCAFile != "" {
		pem, err := os.ReadFile(r.opts.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("auth: read client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("auth: client CA file %s holds no PEM certificate", r.opts.ClientCAFile)
		}
		st.pool = pool
	}
	c := r.base.Clone()
	c.Certificates = []tls.Certificate{cert}
	c.ClientCAs = st.pool
	// Fresh session ticket keys per generation: sessions from before a
	// reload are not resumed but go through a full handshake against the
	// new material (defence in depth; Go also re-checks resumed client
	// chains against the current ClientCAs).
	var tk [32]byte
	if _, err := rand.Read(tk[:]); err != nil {
		return nil, fmt.Errorf("auth: session ticket key: %w", err)
	}
	c.SetSessionTicketKeys([][32]byte{tk})
	st.config = c
	return st, nil
}

func (r *CertReloader) changed(st *tlsState) bool {
	for _, f := range r.files() {
		fi, err := os.Stat(f)
		if err != nil {
			return true
		}
		if s := st.stamps[f]; !s.mod.Equal(fi.ModTime()) || s.size != fi.Size() {
			return true
		}
	}
	return false
}

func (r *CertReloader) current() *tlsState {
	now := r.now().UnixNano()
	last := r.lastCheck.Load()
	if now-last >= int64(r.opts.CheckInterval) && r.lastCheck.CompareAndSwap(last, now) {
		if st := r.state.Load(); r.changed(st) {
			_ = r.Reload()
		}
	}
	return r.state.Load()
}

// Reload re-reads the certificate, key and CA files now. On error the
// previous material stays in force.
func (r *CertReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.load()
	if err != nil {
		r.logger.Warn("TLS material reload refused; keeping previous", zap.Error(err))
		return err
	}
	r.state.Store(st)
	r.logger.Info("TLS material reloaded", zap.String("cert", r.opts.CertFile))
	return nil
}

// Certificate returns the listener certificate currently served.
func (r *CertReloader) Certificate() *tls.Certificate { return r.current().cert }

// ErrNoClientCertificate is returned by PrincipalFromTLS when the client did
// not present a verified certificate.
var ErrNoClientCertificate = errors.New("no verified client certificate")

// PrincipalFromTLS returns the mTLS principal of a finished handshake, or
// ErrNoClientCertificate when no verified client certificate was presented
// (the client must then authenticate with SASL).
func PrincipalFromTLS(cs tls.ConnectionState, pm *PrincipalMapper) (*Principal, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil, ErrNoClientCertificate
	}
	return pm.PrincipalFromVerifiedCert(cs.VerifiedChains[0][0])
}
