package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// CheckpointBody returns the bytes a checkpoint signature covers, in the
// C2SP tlog-checkpoint note body layout:
//
//	kguard-audit-checkpoint/v1\n<origin>\n<size>\n<base64 root>\n
func CheckpointBody(origin string, size uint64, root []byte) []byte {
	b := make([]byte, 0, 64+len(origin))
	b = append(b, "kguard-audit-checkpoint/v1\n"...)
	b = append(b, origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, root)
	b = append(b, '\n')
	return b
}

// KeyID returns the identifier of an Ed25519 public key: the first 8 bytes
// of SHA-256 over the raw key, in hex.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// Signer signs checkpoints.
type Signer struct {
	key   ed25519.PrivateKey
	keyID string
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit: ed25519 private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	return &Signer{key: key, keyID: KeyID(key.Public().(ed25519.PublicKey))}, nil
}

// PublicKey returns the verification key.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// sign builds a signed checkpoint of t.
func (s *Signer) sign(origin string, t *tree) *Checkpoint {
	size, root := t.size(), t.root()
	var rng [][]byte
	for _, h := range t.r.Hashes() {
		rng = append(rng, append([]byte(nil), h...))
	}
	return &Checkpoint{
		Origin: origin, Size: size, Root: root, KeyID: s.keyID,
		Signature: ed25519.Sign(s.key, CheckpointBody(origin, size, root)),
		Range:     rng,
	}
}

// VerifyCheckpoint checks the signature of c against the keys (matched by
// key id).
func VerifyCheckpoint(c *Checkpoint, keys []ed25519.PublicKey) error {
	for _, k := range keys {
		if KeyID(k) != c.KeyID {
			continue
		}
		if ed25519.Verify(k, CheckpointBody(c.Origin, c.Size, c.Root), c.Signature) {
			return nil
		}
		return errors.New("audit: checkpoint signature does not verify")
	}
	return fmt.Errorf("audit: checkpoint signed with unknown key id %q", c.KeyID)
}

// GenerateKeyFile creates a new Ed25519 signing key. The private key is
// written to path (PKCS#8 PEM, mode 0600, the file must not exist) and the
// public key to path+".pub" (PKIX PEM), which is what the verifier needs.
func GenerateKeyFile(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("audit: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("audit: marshal private key: %w", err)
	}
	pubDer, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("audit: marshal public key: %w", err)
	}
	if err := writeNewFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNewFile(path+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDer}), 0o644); err != nil {
		return nil, err
	}
	return pub, nil
}

func writeNewFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("audit: create key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("audit: write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit: sync key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit: close key file: %w", err)
	}
	return nil
}

// LoadPrivateKey reads a PKCS#8 PEM Ed25519 private key file.
// The file must not be readable by group or others.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit: signing key %s is accessible by group or others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read signing key: %w", err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: %s: no PEM PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: %s: parse private key: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: %s: not an Ed25519 key (%T)", path, k)
	}
	return ek, nil
}

// LoadPublicKey reads an Ed25519 public key from a PKIX PEM file. A PKCS#8
// private key file is accepted too (its public half is used).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read public key: %w", err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, fmt.Errorf("audit: %s: no PEM block", path)
	}
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit: %s: parse public key: %w", path, err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("audit: %s: not an Ed25519 key (%T)", path, k)
		}
		return ek, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit: %s: parse private key: %w", path, err)
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("audit: %s: not an Ed25519 key (%T)", path, k)
		}
		return ek.Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("audit: %s: unexpected PEM block %q", path, blk.Type)
}

// merkleFactory builds RFC 6962 compact ranges.
var merkleFactory = &compact.RangeFactory{Hash: hashChildren}

// hashChildren is RFC 6962 SHA-256(0x01 || l || r) (as
// rfc6962.DefaultHasher.HashChildren, without allocating a digest).
func hashChildren(l, r []byte) []byte {
	var buf [1 + 2*HashSize]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:], l)
	copy(buf[1+HashSize:], r)
	h := sha256.Sum256(buf[:])
	return h[:]
}

// leafHash is the RFC 6962 leaf hash SHA-256(0x00 || h) of an event hash.
func leafHash(h Hash) []byte {
	var buf [1 + HashSize]byte
	buf[0] = rfc6962.RFC6962LeafHashPrefix
	copy(buf[1:], h[:])
	s := sha256.Sum256(buf[:])
	return s[:]
}

// tree is an append-only RFC 6962 Merkle tree kept as a compact range.
type tree struct{ r *compact.Range }

func newTree() *tree { return &tree{r: merkleFactory.NewEmptyRange(0)} }

func (t *tree) append(h Hash) {
	// Append only fails for malformed ranges, which this type never builds.
	if err := t.r.Append(leafHash(h), nil); err != nil {
		panic(fmt.Sprintf("audit: merkle append: %v", err))
	}
}

func (t *tree) size() uint64 { return t.r.End() }

func (t *tree) root() []byte {
	if t.r.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	r, err := t.r.GetRootHash(nil)
	if err != nil {
		panic(fmt.Sprintf("audit: merkle root: %v", err))
	}
	return r
}

func treeFromHashes(size uint64, hashes [][]byte) (*tree, error) {
	for _, h := range hashes {
		if len(h) != HashSize {
			return nil, fmt.Errorf("audit: merkle range hash of %d bytes", len(h))
		}
	}
	r, err := merkleFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("audit: restore merkle range: %w", err)
	}
	return &tree{r: r}, nil
}
