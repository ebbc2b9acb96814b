package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/xdg-go/scram"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"
)

// Iteration bounds for stored SCRAM credentials. RFC 7677 asks for at least
// 4096; the upper bound keeps a PLAIN login (which runs PBKDF2 once) cheap
// enough not to be a denial-of-service lever.
const (
	MinIterations     = 4096
	MaxIterations     = 1 << 20
	DefaultIterations = 8192
	saltLen           = 32
	minSaltLen        = 8
)

// credentialsFileVersion is the only format version understood.
const credentialsFileVersion = 1

// ErrUserNotFound is returned by RemoveUser for a name not in the file.
var ErrUserNotFound = errors.New("user not found")

// SCRAMCredential is one user's stored credential for one SCRAM hash, as
// written in the credentials file. Binary values are standard base64.
type SCRAMCredential struct {
	Salt       string `yaml:"salt" json:"salt"`
	Iterations int    `yaml:"iterations" json:"iterations"`
	StoredKey  string `yaml:"stored_key" json:"stored_key"`
	ServerKey  string `yaml:"server_key" json:"server_key"`
}

// UserCredentials are a user's credentials in the file. A user may have one
// or both hashes; a login with a mechanism whose hash is missing fails like a
// wrong password.
type UserCredentials struct {
	SHA256 *SCRAMCredential `yaml:"scram-sha-256,omitempty" json:"scram-sha-256,omitempty"`
	SHA512 *SCRAMCredential `yaml:"scram-sha-512,omitempty" json:"scram-sha-512,omitempty"`
}

// CredentialsFile is the on-disk credentials document (YAML; JSON is a
// subset of YAML and is accepted too).
type CredentialsFile struct {
	Version int                        `yaml:"version" json:"version"`
	Users   map[string]UserCredentials `yaml:"users" json:"users"`
}

// UserInfo describes a user for `kguard users list` (never any secret).
type UserInfo struct {
	Name       string
	Mechanisms []string // SCRAM-SHA-256 / SCRAM-SHA-512, sorted
	Iterations int      // highest iteration count among the mechanisms
}

func hashFor(mechanism string) (func() hash.Hash, error) {
	switch mechanism {
	case MechSCRAMSHA256:
		return sha256.New, nil
	case MechSCRAMSHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("not a SCRAM mechanism: %q", mechanism)
}

// DeriveSCRAM computes the stored credential for password under mechanism
// (SCRAM-SHA-256 or SCRAM-SHA-512) with salt and iterations, per RFC 5802:
// SaltedPassword = PBKDF2(password, salt, i), StoredKey = H(HMAC(SaltedPassword,
// "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key"). The password
// bytes are used as given (UTF-8, no SASLprep), as Kafka's ScramFormatter does.
func DeriveSCRAM(mechanism, password string, salt []byte, iterations int) (scram.StoredCredentials, error) {
	h, err := hashFor(mechanism)
	if err != nil {
		return scram.StoredCredentials{}, err
	}
	if iterations < MinIterations || iterations > MaxIterations {
		return scram.StoredCredentials{}, fmt.Errorf("iterations %d outside [%d, %d]", iterations, MinIterations, MaxIterations)
	}
	if len(salt) < minSaltLen {
		return scram.StoredCredentials{}, fmt.Errorf("salt of %d bytes is too short", len(salt))
	}
	storedKey, serverKey, err := deriveKeys(h, password, salt, iterations)
	if err != nil {
		return scram.StoredCredentials{}, err
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: iterations},
		StoredKey:  storedKey,
		ServerKey:  serverKey,
	}, nil
}

func deriveKeys(h func() hash.Hash, password string, salt []byte, iterations int) (storedKey, serverKey []byte, err error) {
	salted, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return nil, nil, fmt.Errorf("pbkdf2: %w", err)
	}
	mac := hmac.New(h, salted)
	mac.Write([]byte("Client Key"))
	clientKey := mac.Sum(nil)
	sk := h()
	sk.Write(clientKey)
	storedKey = sk.Sum(nil)
	mac = hmac.New(h, salted)
	mac.Write([]byte("Server Key"))
	serverKey = mac.Sum(nil)
	return storedKey, serverKey, nil
}

func encodeCredential(c scram.StoredCredentials) *SCRAMCredential {
	return &SCRAMCredential{
		Salt:       base64.StdEncoding.EncodeToString([]byte(c.Salt)),
		Iterations: c.Iters,
		StoredKey:  base64.StdEncoding.EncodeToString(c.StoredKey),
		ServerKey:  base64.StdEncoding.EncodeToString(c.ServerKey),
	}
}

func decodeCredential(mechanism string, c *SCRAMCredential) (scram.StoredCredentials, error) {
	h, err := hashFor(mechanism)
	if err != nil {
		return scram.StoredCredentials{}, err
	}
	size := h().Size()
	salt, err := base64.StdEncoding.DecodeString(c.Salt)
	if err != nil {
		return scram.StoredCredentials{}, fmt.Errorf("salt: %w", err)
	}
	if len(salt) < minSaltLen {
		return scram.StoredCredentials{}, fmt.Errorf("salt of %d bytes is too short (minimum %d)", len(salt), minSaltLen)
	}
	if c.Iterations < MinIterations || c.Iterations > MaxIterations {
		return scram.StoredCredentials{}, fmt.Errorf("iterations %d outside [%d, %d]", c.Iterations, MinIterations, MaxIterations)
	}
	stored, err := base64.StdEncoding.DecodeString(c.StoredKey)
	if err != nil {
		return scram.StoredCredentials{}, fmt.Errorf("stored_key: %w", err)
	}
	server, err := base64.StdEncoding.DecodeString(c.ServerKey)
	if err != nil {
		return scram.StoredCredentials{}, fmt.Errorf("server_key: %w", err)
	}
	if len(stored) != size || len(server) != size {
		return scram.StoredCredentials{}, fmt.Errorf("stored_key and server_key must be %d bytes", size)
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: c.Iterations},
		StoredKey:  stored,
		ServerKey:  server,
	}, nil
}

// ValidateUsername checks a user name for the credentials file: non-empty,
// at most 255 bytes of UTF-8 without control characters (NUL separates
// PLAIN fields).
func ValidateUsername(name string) error {
	if name == "" {
		return errors.New("user name is empty")
	}
	if len(name) > 255 {
		return errors.New("user name longer than 255 bytes")
	}
	if !utf8.ValidString(name) {
		return errors.New("user name is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return errors.New("user name contains a control character")
		}
	}
	return nil
}

// userSet is the parsed, validated content of a credentials file:
// user -> mechanism -> credential.
type userSet map[string]map[string]scram.StoredCredentials

// ParseCredentials parses and validates a credentials document.
func ParseCredentials(data []byte) (*CredentialsFile, error) {
	var f CredentialsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("credentials file is empty")
		}
		return nil, fmt.Errorf("parse credentials: %w", err)
	}
	if _, err := f.users(); err != nil {
		return nil, err
	}
	return &f, nil
}

func (f *CredentialsFile) users() (userSet, error) {
	if f.Version != credentialsFileVersion {
		return nil, fmt.Errorf("credentials file version %d not supported (want %d)", f.Version, credentialsFileVersion)
	}
	out := make(userSet, len(f.Users))
	for name, uc := range f.Users {
		if err := ValidateUsername(name); err != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
		m := make(map[string]scram.StoredCredentials, 2)
		for mech, c := range map[string]*SCRAMCredential{MechSCRAMSHA256: uc.SHA256, MechSCRAMSHA512: uc.SHA512} {
			if c == nil {
				continue
			}
			sc, err := decodeCredential(mech, c)
			if err != nil {
				return nil, fmt.Errorf("user %q %s: %w", name, mech, err)
			}
			m[mech] = sc
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("user %q has no credentials", name)
		}
		out[name] = m
	}
	return out, nil
}

// readCredentialsFile reads path, refusing files readable or writable by
// group or others.
func readCredentialsFile(path string) (*CredentialsFile, os.FileInfo, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open credentials: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("stat credentials: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("credentials %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, nil, fmt.Errorf("credentials %s has mode %04o; it must not be accessible by group or others (chmod 600)", path, fi.Mode().Perm())
	}
	const maxFile = 64 << 20
	data, err := io.ReadAll(io.LimitReader(fh, maxFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read credentials: %w", err)
	}
	if len(data) > maxFile {
		return nil, nil, fmt.Errorf("credentials %s is larger than 64 MiB", path)
	}
	f, err := ParseCredentials(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, fi, nil
}

// writeCredentialsFile writes f to path atomically (temporary file in the
// same directory with mode 0600, fsync, rename, fsync of the directory).
func writeCredentialsFile(path string, f *CredentialsFile) error {
	data, err := yaml.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode credentials: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary credentials file: %w", err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod credentials: %w", err)
	}
	header := "# kguard credentials file: salted SCRAM credentials, never passwords.\n# Managed with `kguard users add|remove|list`; keep mode 0600.\n"
	if _, err := tmp.WriteString(header); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close credentials: %w", err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("replace credentials: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func loadOrEmpty(path string) (*CredentialsFile, error) {
	f, _, err := readCredentialsFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &CredentialsFile{Version: credentialsFileVersion, Users: map[string]UserCredentials{}}, nil
	}
	if err != nil {
		return nil, err
	}
	if f.Users == nil {
		f.Users = map[string]UserCredentials{}
	}
	return f, nil
}

// AddUser adds name to the credentials file at path (creating the file with
// mode 0600 if needed) with SCRAM-SHA-256 and SCRAM-SHA-512 credentials
// derived from password with fresh random salts. An existing user's
// credentials are replaced (this is how a password is changed). iterations
// 0 means DefaultIterations. The password itself is never written.
func AddUser(path, name, password string, iterations int) error {
	if err := ValidateUsername(name); err != nil {
		return err
	}
	if password == "" {
		return errors.New("password is empty")
	}
	if iterations == 0 {
		iterations = DefaultIterations
	}
	f, err := loadOrEmpty(path)
	if err != nil {
		return err
	}
	var uc UserCredentials
	for _, mech := range []string{MechSCRAMSHA256, MechSCRAMSHA512} {
		salt := make([]byte, saltLen)
		if _, err := rand.Read(salt); err != nil {
			return fmt.Errorf("salt: %w", err)
		}
		c, err := DeriveSCRAM(mech, password, salt, iterations)
		if err != nil {
			return err
		}
		if mech == MechSCRAMSHA256 {
			uc.SHA256 = encodeCredential(c)
		} else {
			uc.SHA512 = encodeCredential(c)
		}
	}
	f.Users[name] = uc
	return writeCredentialsFile(path, f)
}

// RemoveUser removes name from the credentials file at path. It returns an
// error wrapping ErrUserNotFound when the user is not there.
func RemoveUser(path, name string) error {
	f, _, err := readCredentialsFile(path)
	if err != nil {
		return err
	}
	if _, ok := f.Users[name]; !ok {
		return fmt.Errorf("%w: %q", ErrUserNotFound, name)
	}
	delete(f.Users, name)
	return writeCredentialsFile(path, f)
}

// ListUsers returns the users in the credentials file at path, sorted by
// name, without any secret.
func ListUsers(path string) ([]UserInfo, error) {
	f, _, err := readCredentialsFile(path)
	if err != nil {
		return nil, err
	}
	out := make([]UserInfo, 0, len(f.Users))
	for name, uc := range f.Users {
		ui := UserInfo{Name: name}
		if uc.SHA256 != nil {
			ui.Mechanisms = append(ui.Mechanisms, MechSCRAMSHA256)
			ui.Iterations = max(ui.Iterations, uc.SHA256.Iterations)
		}
		if uc.SHA512 != nil {
			ui.Mechanisms = append(ui.Mechanisms, MechSCRAMSHA512)
			ui.Iterations = max(ui.Iterations, uc.SHA512.Iterations)
		}
		out = append(out, ui)
	}
	slices.SortFunc(out, func(a, b UserInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// CredentialStore serves SCRAM credentials and PLAIN password checks from a
// credentials file, reloading it when it changes (checked at most once per
// CheckInterval, on use) or when Reload is called (e.g. on SIGHUP). A file
// that fails to load is refused and the previous content stays in force,
// with a log line.
type CredentialStore struct {
	path          string
	logger        *zap.Logger
	checkInterval time.Duration
	now           func() time.Time

	snap      atomic.Pointer[credSnapshot]
	lastCheck atomic.Int64 // unix nanos
	reloadMu  sync.Mutex

	// fakeKey derives stable decoy salts for unknown users so SCRAM does not
	// reveal which users exist.
	fakeKey []byte
}

type credSnapshot struct {
	users userSet
	info  os.FileInfo
	// decoyIters is the most common iteration count in the file, used for
	// unknown users so they cost and look the same as real ones.
	decoyIters int
}

// commonIterations returns the most frequent iteration count in users
// (ties: the larger), or DefaultIterations for an empty set.
func commonIterations(users userSet) int {
	counts := map[int]int{}
	for _, m := range users {
		for _, c := range m {
			counts[c.Iters]++
		}
	}
	best, bestN := DefaultIterations, 0
	for it, n := range counts {
		if n > bestN || (n == bestN && it > best) {
			best, bestN = it, n
		}
	}
	return best
}

// CredentialStoreOption configures a CredentialStore.
type CredentialStoreOption func(*CredentialStore)

// WithCheckInterval sets how often the file is checked for changes (default
// one second; 0 checks on every use).
func WithCheckInterval(d time.Duration) CredentialStoreOption {
	return func(s *CredentialStore) { s.checkInterval = d }
}

// NewCredentialStore loads the credentials file at path. It fails when the
// file is missing, malformed or accessible by group or others.
func NewCredentialStore(path string, logger *zap.Logger, opts ...CredentialStoreOption) (*CredentialStore, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	s := &CredentialStore{path: path, logger: logger, checkInterval: time.Second, now: time.Now, fakeKey: make([]byte, 32)}
	for _, o := range opts {
		o(s)
	}
	if _, err := rand.Read(s.fakeKey); err != nil {
		return nil, fmt.Errorf("decoy key: %w", err)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.lastCheck.Store(s.now().UnixNano())
	return s, nil
}

func (s *CredentialStore) load() error {
	f, fi, err := readCredentialsFile(s.path)
	if err != nil {
		return err
	}
	users, err := f.users()
	if err != nil {
		return err
	}
	s.snap.Store(&credSnapshot{users: users, info: fi, decoyIters: commonIterations(users)})
	return nil
}

// Reload re-reads the file now. On error the previous credentials stay in
// force and the error is returned.
func (s *CredentialStore) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if err := s.load(); err != nil {
		s.logger.Warn("credentials reload refused; keeping previous credentials", zap.String("path", s.path), zap.Error(err))
		return err
	}
	s.logger.Info("credentials reloaded", zap.String("path", s.path), zap.Int("users", len(s.snap.Load().users)))
	return nil
}

// maybeReload reloads the file if it changed since the last load.
func (s *CredentialStore) maybeReload() {
	now := s.now().UnixNano()
	last := s.lastCheck.Load()
	if now-last < int64(s.checkInterval) || !s.lastCheck.CompareAndSwap(last, now) {
		return
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		s.logger.Warn("credentials file check failed; keeping previous credentials", zap.String("path", s.path), zap.Error(err))
		return
	}
	cur := s.snap.Load().info
	if os.SameFile(fi, cur) && fi.ModTime().Equal(cur.ModTime()) && fi.Size() == cur.Size() && fi.Mode() == cur.Mode() {
		return
	}
	_ = s.Reload()
}

func (s *CredentialStore) users() userSet {
	s.maybeReload()
	return s.snap.Load().users
}

// Users returns the number of users currently loaded.
func (s *CredentialStore) Users() int { return len(s.users()) }

// LookupSCRAM returns the stored credential of user for mechanism.
func (s *CredentialStore) LookupSCRAM(user, mechanism string) (scram.StoredCredentials, bool) {
	m, ok := s.users()[user]
	if !ok {
		return scram.StoredCredentials{}, false
	}
	c, ok := m[mechanism]
	return c, ok
}

// decoySCRAM returns credentials for an unknown user that look like real
// ones (a salt stable for the process, the file's most common iteration
// count) and can never be satisfied.
func (s *CredentialStore) decoySCRAM(user, mechanism string) scram.StoredCredentials {
	mac := hmac.New(sha256.New, s.fakeKey)
	mac.Write([]byte(mechanism))
	mac.Write([]byte{0})
	mac.Write([]byte(user))
	salt := mac.Sum(nil)[:saltLen]
	h, _ := hashFor(mechanism)
	size := sha256.Size
	if h != nil {
		size = h().Size()
	}
	stored := make([]byte, size)
	server := make([]byte, size)
	_, _ = rand.Read(stored)
	_, _ = rand.Read(server)
	iters := s.snap.Load().decoyIters
	return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: iters}, StoredKey: stored, ServerKey: server}
}

// VerifyPassword implements PasswordVerifier for PLAIN: it derives the
// StoredKey from password with the user's stored salt and iterations
// (SCRAM-SHA-512 if present, else SCRAM-SHA-256) and compares it in constant
// time. Unknown users cost the same PBKDF2 work and get the same error.
func (s *CredentialStore) VerifyPassword(_ context.Context, user, password string) error {
	mech := MechSCRAMSHA512
	c, ok := s.LookupSCRAM(user, mech)
	if !ok {
		mech = MechSCRAMSHA256
		c, ok = s.LookupSCRAM(user, mech)
	}
	if !ok {
		mech = MechSCRAMSHA512
		c = s.decoySCRAM(user, mech)
	}
	h, _ := hashFor(mech)
	stored, _, err := deriveKeys(h, password, []byte(c.Salt), c.Iters)
	if err != nil {
		return fmt.Errorf("verify password: %w", err)
	}
	if subtle.ConstantTimeCompare(stored, c.StoredKey) != 1 || !ok {
		reason := fmt.Errorf("wrong password for user %q", user)
		if !ok {
			reason = fmt.Errorf("unknown user %q", user)
		}
		return authFailed("Authentication failed: Invalid username or password", reason)
	}
	return nil
}
