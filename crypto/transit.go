package crypto

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go-hcvault/v2/integration/hcvault"
	"github.com/tink-crypto/tink-go/v2/tink"
	"go.uber.org/zap"
)

// TransitConfig configures the OpenBao/Vault transit KMS.
type TransitConfig struct {
	// Address of the server, e.g. https://openbao.internal:8200.
	Address string
	// Namespace (Vault Enterprise / OpenBao namespaces), optional.
	Namespace string
	// Mount is the transit engine's mount path (default "transit").
	Mount string
	// Token authenticates directly. It is renewed in the background when
	// renewable.
	Token string
	// AppRole authenticates with role_id/secret_id instead of Token; the
	// token it yields is renewed, and the login repeated when it expires.
	AppRole *AppRole
	// TLS for https addresses (CA, client certificate, server name).
	TLS *vault.TLSConfig
	// Timeout per request (default 5s) and MaxRetries on 5xx/connection
	// errors (default 1; -1 for none).
	Timeout    time.Duration
	MaxRetries int
	// CreateKeys creates a missing KEK (type aes256-gcm96) on first use for
	// encryption. Subject keys are always created on demand.
	CreateKeys bool
	// Logger (nil: no logs). Tokens and keys are never logged.
	Logger *zap.Logger
}

// AppRole holds AppRole credentials.
type AppRole struct {
	RoleID   string
	SecretID string
	// Mount of the approle auth method (default "approle").
	Mount string
}

// TransitKMS is a KMS over the OpenBao/Vault transit engine:
// transit/datakey/plaintext/:name makes data keys (wrapped as vault:vN:...),
// transit/decrypt/:name with batch_input unwraps many in one call, and
// transit/hmac/:name derives deterministic keys (version vN). It implements
// KMS and KeyAdmin (keys/:name create, rotate, delete).
type TransitKMS struct {
	c      *vault.Client
	mount  string
	create bool
	log    *zap.Logger
	cfg    TransitConfig

	mu     sync.Mutex
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

// NewTransitKMS connects and authenticates. Close stops token renewal.
func NewTransitKMS(ctx context.Context, cfg TransitConfig) (*TransitKMS, error) {
	if cfg.Address == "" {
		return nil, errors.New("crypto: transit: no address")
	}
	if cfg.Mount == "" {
		cfg.Mount = "transit"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	vc := vault.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("crypto: transit: %w", vc.Error)
	}
	vc.Address = cfg.Address
	vc.Timeout = cfg.Timeout
	vc.MaxRetries = max(cfg.MaxRetries, 0)
	if cfg.TLS != nil {
		if err := vc.ConfigureTLS(cfg.TLS); err != nil {
			return nil, fmt.Errorf("crypto: transit TLS: %w", err)
		}
	}
	c, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("crypto: transit: %w", err)
	}
	c.ClearToken() // never pick up VAULT_TOKEN from the environment implicitly
	if cfg.Namespace != "" {
		c.SetNamespace(cfg.Namespace)
	}
	t := &TransitKMS{c: c, mount: strings.Trim(cfg.Mount, "/"), create: cfg.CreateKeys, log: cfg.Logger, cfg: cfg,
		stop: make(chan struct{}), done: make(chan struct{})}
	var secret *vault.Secret
	switch {
	case cfg.AppRole != nil:
		if secret, err = t.login(ctx); err != nil {
			return nil, err
		}
	case cfg.Token != "":
		c.SetToken(cfg.Token)
		self, err := c.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return nil, unavailable("crypto: transit: token lookup", err)
		}
		renewable, _ := self.TokenIsRenewable()
		ttl, _ := self.TokenTTL()
		if renewable && ttl > 0 {
			secret = &vault.Secret{Auth: &vault.SecretAuth{ClientToken: cfg.Token, Renewable: true, LeaseDuration: int(ttl.Seconds())}}
		}
	default:
		return nil, errors.New("crypto: transit: no token and no AppRole")
	}
	go t.renew(secret)
	return t, nil
}

func (t *TransitKMS) login(ctx context.Context) (*vault.Secret, error) {
	a := t.cfg.AppRole
	mount := a.Mount
	if mount == "" {
		mount = "approle"
	}
	s, err := t.c.Logical().WriteWithContext(ctx, "auth/"+strings.Trim(mount, "/")+"/login",
		map[string]any{"role_id": a.RoleID, "secret_id": a.SecretID})
	if err != nil {
		return nil, unavailable("crypto: transit: AppRole login", err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, unavailable("crypto: transit: AppRole login", errors.New("no token in the answer"))
	}
	t.c.SetToken(s.Auth.ClientToken)
	t.log.Info("transit: logged in with AppRole", zap.Int("ttl_seconds", s.Auth.LeaseDuration))
	return s, nil
}

// renew keeps the token alive with a LifetimeWatcher; when it can no longer
// be renewed, AppRole logs in again (a static token just expires).
func (t *TransitKMS) renew(secret *vault.Secret) {
	defer close(t.done)
	backoff := time.Second
	for {
		if secret == nil || secret.Auth == nil || !secret.Auth.Renewable {
			if t.cfg.AppRole == nil || secret == nil {
				<-t.stop
				return
			}
			// Not renewable: log in again shortly before it expires.
			wait := time.Duration(secret.Auth.LeaseDuration) * time.Second * 2 / 3
			if wait <= 0 {
				<-t.stop
				return
			}
			select {
			case <-t.stop:
				return
			case <-time.After(wait):
			}
		} else {
			w, err := t.c.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: secret})
			if err != nil {
				t.log.Warn("transit: token watcher", zap.Error(err))
				<-t.stop
				return
			}
			go w.Start()
			stopped := false
			// The watcher reports the end only once the token has expired.
			// For AppRole, log in again early: at 85% of the last full
			// lease unless a full renewal came first, and at half of a
			// renewal cut short by the token's max TTL.
			full := secret.Auth.LeaseDuration
			var relogin <-chan time.Time
			arm := func(lease int) {
				if t.cfg.AppRole != nil && lease > 0 {
					relogin = time.After(time.Duration(lease) * time.Second * 85 / 100)
				}
			}
			arm(full)
		watch:
			for {
				select {
				case <-t.stop:
					w.Stop()
					stopped = true
					break watch
				case err := <-w.DoneCh():
					if err != nil {
						t.log.Warn("transit: token renewal ended", zap.Error(err))
					}
					break watch
				case <-relogin:
					w.Stop()
					break watch
				case r := <-w.RenewCh():
					t.log.Debug("transit: token renewed")
					if r == nil || r.Secret == nil || r.Secret.Auth == nil {
						continue
					}
					if lease := r.Secret.Auth.LeaseDuration; lease >= full {
						arm(lease)
					} else if t.cfg.AppRole != nil {
						relogin = time.After(time.Duration(lease) * time.Second / 2)
					}
				}
			}
			if stopped {
				return
			}
			if t.cfg.AppRole == nil {
				t.log.Warn("transit: token can no longer be renewed; requests will fail when it expires")
				<-t.stop
				return
			}
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), t.cfg.Timeout)
			s, err := t.login(ctx)
			cancel()
			if err == nil {
				secret, backoff = s, time.Second
				break
			}
			t.log.Warn("transit: AppRole login failed; retrying", zap.Error(err), zap.Duration("in", backoff))
			select {
			case <-t.stop:
				return
			case <-time.After(backoff):
			}
			if backoff < time.Minute {
				backoff *= 2
			}
		}
	}
}

// Close stops token renewal.
func (t *TransitKMS) Close() error {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.stop)
	}
	t.mu.Unlock()
	<-t.done
	return nil
}

func validTransitName(name string) error {
	if name == "" || len(name) > 200 || strings.Contains(name, "..") {
		return fmt.Errorf("crypto: transit: bad key name %q", name)
	}
	if !keyNameChars(name) {
		return fmt.Errorf("crypto: transit: bad key name %q (allowed: letters, digits, . _ -)", name)
	}
	return nil
}

// classify maps a vault error: "key not found" style answers wrap
// ErrKeyNotFound; everything wraps ErrUnavailable.
func classify(what, kek string, err error) error {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		if re.StatusCode == http.StatusNotFound || (re.StatusCode == http.StatusBadRequest &&
			(strings.Contains(msg, "not found") || strings.Contains(msg, "could be found") ||
				strings.Contains(msg, "version does not exist"))) {
			return fmt.Errorf("%s %q: %w: %w: %s", what, kek, ErrUnavailable, ErrKeyNotFound, msg)
		}
		return fmt.Errorf("%s %q: %w: HTTP %d: %s", what, kek, ErrUnavailable, re.StatusCode, msg)
	}
	return fmt.Errorf("%s %q: %w: %v", what, kek, ErrUnavailable, err)
}

func (t *TransitKMS) write(ctx context.Context, what, kek, path string, data map[string]any) (*vault.Secret, error) {
	if err := validTransitName(kek); err != nil {
		return nil, err
	}
	s, err := t.c.Logical().WriteWithContext(ctx, t.mount+"/"+path, data)
	if err != nil {
		return nil, classify(what, kek, err)
	}
	if s == nil || s.Data == nil {
		return nil, fmt.Errorf("%s %q: %w: empty answer", what, kek, ErrUnavailable)
	}
	return s, nil
}

// withCreate runs op, and when the KEK is missing and CreateKeys is set,
// creates it and runs op again.
func (t *TransitKMS) withCreate(ctx context.Context, kek string, op func() error) error {
	err := op()
	if err != nil && t.create && errors.Is(err, ErrKeyNotFound) {
		if cerr := t.CreateKey(ctx, kek); cerr != nil {
			return cerr
		}
		err = op()
	}
	return err
}

// GenerateDataKey implements KMS with transit/datakey/plaintext/:name.
func (t *TransitKMS) GenerateDataKey(ctx context.Context, kek string, size int) ([]byte, string, error) {
	if size != 32 && size != 64 && size != 16 {
		return nil, "", fmt.Errorf("crypto: transit: unsupported data key size %d", size)
	}
	var pt []byte
	var wrapped string
	err := t.withCreate(ctx, kek, func() error {
		s, err := t.write(ctx, "transit datakey", kek, "datakey/plaintext/"+kek, map[string]any{"bits": size * 8})
		if err != nil {
			return err
		}
		p64, _ := s.Data["plaintext"].(string)
		wrapped, _ = s.Data["ciphertext"].(string)
		if pt, err = base64.StdEncoding.DecodeString(p64); err != nil || len(pt) != size || !strings.HasPrefix(wrapped, "vault:v") {
			return fmt.Errorf("transit datakey %q: %w: malformed answer", kek, ErrUnavailable)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return pt, wrapped, nil
}

// UnwrapDataKeys implements KMS with transit/decrypt/:name and batch_input.
func (t *TransitKMS) UnwrapDataKeys(ctx context.Context, kek string, wrapped []string) ([]Unwrapped, error) {
	out := make([]Unwrapped, len(wrapped))
	const chunk = 256
	for lo := 0; lo < len(wrapped); lo += chunk {
		hi := min(lo+chunk, len(wrapped))
		batch := make([]map[string]any, 0, hi-lo)
		for _, w := range wrapped[lo:hi] {
			batch = append(batch, map[string]any{"ciphertext": w})
		}
		s, err := t.write(ctx, "transit decrypt", kek, "decrypt/"+kek, map[string]any{"batch_input": batch})
		if err != nil {
			return nil, err
		}
		results, _ := s.Data["batch_results"].([]any)
		if len(results) != hi-lo {
			return nil, fmt.Errorf("transit decrypt %q: %w: %d results for %d keys", kek, ErrUnavailable, len(results), hi-lo)
		}
		for i, r := range results {
			m, _ := r.(map[string]any)
			if e, _ := m["error"].(string); e != "" {
				out[lo+i].Err = errors.New(e)
				if strings.Contains(e, "version is too new") || strings.Contains(e, "not found") {
					out[lo+i].Err = fmt.Errorf("%w: %s", ErrKeyNotFound, e)
				}
				continue
			}
			p64, _ := m["plaintext"].(string)
			pt, err := base64.StdEncoding.DecodeString(p64)
			if err != nil || len(pt) == 0 {
				out[lo+i].Err = errors.New("malformed plaintext in answer")
				continue
			}
			out[lo+i].Key = pt
		}
	}
	return out, nil
}

// DeriveKey implements KMS with transit/hmac/:name/sha2-256 or sha2-512
// (32 or 64 bytes). Versions are "vN".
func (t *TransitKMS) DeriveKey(ctx context.Context, kek, version string, label []byte, size int) ([]byte, string, error) {
	alg := ""
	switch size {
	case 32:
		alg = "sha2-256"
	case 64:
		alg = "sha2-512"
	default:
		return nil, "", fmt.Errorf("crypto: transit: unsupported derived key size %d", size)
	}
	data := map[string]any{"input": base64.StdEncoding.EncodeToString(label)}
	if version != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(version, "v"))
		if err != nil || n <= 0 || !strings.HasPrefix(version, "v") {
			return nil, "", fmt.Errorf("transit hmac %q: %w: %w: bad version %q", kek, ErrUnavailable, ErrKeyNotFound, version)
		}
		data["key_version"] = n
	}
	var mac []byte
	var used string
	op := func() error {
		s, err := t.write(ctx, "transit hmac", kek, "hmac/"+kek+"/"+alg, data)
		if err != nil {
			return err
		}
		h, _ := s.Data["hmac"].(string)
		parts := strings.SplitN(h, ":", 3)
		if len(parts) != 3 || parts[0] != "vault" || !strings.HasPrefix(parts[1], "v") {
			return fmt.Errorf("transit hmac %q: %w: malformed answer", kek, ErrUnavailable)
		}
		if mac, err = base64.StdEncoding.DecodeString(parts[2]); err != nil || len(mac) != size {
			return fmt.Errorf("transit hmac %q: %w: malformed answer", kek, ErrUnavailable)
		}
		used = parts[1]
		return nil
	}
	var err error
	if version == "" {
		err = t.withCreate(ctx, kek, op)
	} else {
		err = op()
	}
	if err != nil {
		return nil, "", err
	}
	return mac, used, nil
}

// CreateKey implements KeyAdmin: an aes256-gcm96 transit key (an existing
// key is left as it is).
func (t *TransitKMS) CreateKey(ctx context.Context, kek string) error {
	if err := validTransitName(kek); err != nil {
		return err
	}
	if _, err := t.c.Logical().WriteWithContext(ctx, t.mount+"/keys/"+kek, map[string]any{"type": "aes256-gcm96"}); err != nil {
		return classify("transit create key", kek, err)
	}
	t.log.Info("transit: key created", zap.String("kek", kek))
	return nil
}

// KeysetAEAD returns an AEAD whose key is the transit key name (created
// first when CreateKeys is set), for encrypting a Tink keyset at rest: the
// record-signing keyset file is then useless without OpenBao, and access to
// it is an OpenBao policy (transit/encrypt and transit/decrypt on name).
// The AEAD is Tink's own OpenBao/Vault integration (tink-go-hcvault).
func (t *TransitKMS) KeysetAEAD(ctx context.Context, name string) (tink.AEAD, error) {
	if name == "" {
		return nil, errors.New("crypto: transit: empty keyset key name")
	}
	if err := validTransitName(name); err != nil {
		return nil, err
	}
	sec, err := t.c.Logical().ReadWithContext(ctx, t.mount+"/keys/"+name)
	if err != nil {
		return nil, classify("transit read key", name, err)
	}
	if sec == nil {
		if !t.create {
			return nil, fmt.Errorf("crypto: transit: keyset key %s: %w", name, ErrKeyNotFound)
		}
		if err := t.CreateKey(ctx, name); err != nil {
			return nil, err
		}
	}
	a, err := hcvault.NewAEAD("/"+strings.Trim(t.mount, "/")+"/keys/"+name, t.c.Logical())
	if err != nil {
		return nil, fmt.Errorf("crypto: transit: keyset key %s: %w", name, err)
	}
	return a, nil
}

// RotateKey implements KeyAdmin (transit/keys/:name/rotate).
func (t *TransitKMS) RotateKey(ctx context.Context, kek string) error {
	if err := validTransitName(kek); err != nil {
		return err
	}
	if _, err := t.c.Logical().WriteWithContext(ctx, t.mount+"/keys/"+kek+"/rotate", nil); err != nil {
		return classify("transit rotate", kek, err)
	}
	t.log.Info("transit: key rotated", zap.String("kek", kek))
	return nil
}

// DestroyKey implements KeyAdmin: allow deletion, then delete the key and
// all its versions.
func (t *TransitKMS) DestroyKey(ctx context.Context, kek string) error {
	if err := validTransitName(kek); err != nil {
		return err
	}
	if _, err := t.c.Logical().WriteWithContext(ctx, t.mount+"/keys/"+kek+"/config", map[string]any{"deletion_allowed": true}); err != nil {
		return classify("transit configure key", kek, err)
	}
	if _, err := t.c.Logical().DeleteWithContext(ctx, t.mount+"/keys/"+kek); err != nil {
		return classify("transit delete key", kek, err)
	}
	t.log.Info("transit: key destroyed", zap.String("kek", kek))
	return nil
}

var _ KeyService = (*TransitKMS)(nil)
