package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"github.com/transparency-dev/merkle/rfc6962"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func validEventBytes(t testing.TB) []byte {
	e := sampleEvent(7)
	e.Version, e.Seq, e.Where.Instance = SchemaVersion, 42, "kg-1"
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecodeRecord(f *testing.F) {
	rec := appendRecord(nil, 9, []byte(`{"v":1}`))
	f.Add(rec)
	f.Add(rec[:10])
	f.Add(append(append([]byte(nil), rec...), rec...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, payload, n, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errShortRecord) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if n > len(b) || !bytes.Equal(appendRecord(nil, seq, payload), b[:n]) {
			t.Fatalf("decoded record does not re-encode to its input")
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(validEventBytes(f))
	f.Add([]byte(`{"v":1,"type":"audit.gap","seq":1,"prev":"` + Hash{}.String() + `","time":"2026-01-01T00:00:00Z","where":{"instance":"x"},"gap":{"dropped":3,"first":"2026-01-01T00:00:00Z","last":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"v":1,"type":"audit.checkpoint","seq":2,"prev":"00","where":{"instance":"x"}}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		c1, err := e.Encode()
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		e2, err := DecodeEvent(c1)
		if err != nil {
			t.Fatalf("canonical form does not decode: %v", err)
		}
		c2, _ := e2.Encode()
		if !bytes.Equal(c1, c2) {
			t.Fatalf("canonical encoding not stable:\n%s\n%s", c1, c2)
		}
	})
}

// FuzzSpoolRecovery opens a spool whose last segment holds arbitrary bytes:
// recovery must either fail cleanly or keep exactly the intact prefix.
func FuzzSpoolRecovery(f *testing.F) {
	good := []byte(segMagic)
	good = appendRecord(good, 1, []byte(`a`))
	good = appendRecord(good, 2, []byte(`bb`))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte("KGAU"))
	f.Add(append(append([]byte(nil), good...), 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), b, 0o600); err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		sp, err := openSpool(dir, 1<<20, 4096, FsyncNever, zap.NewNop(), func(seq uint64, _ []byte) error {
			seqs = append(seqs, seq)
			return nil
		})
		if err != nil {
			return
		}
		defer sp.close()
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Fatalf("recovered seqs %v", seqs)
			}
		}
		if sp.lastSeq() != uint64(len(seqs)) {
			t.Fatalf("lastSeq %d with %d records", sp.lastSeq(), len(seqs))
		}
		// The kept file is the intact prefix: reading it again yields the same.
		data, _ := os.ReadFile(filepath.Join(dir, segName(1)))
		prefixOK := bytes.HasPrefix(b, data)
		if len(b) < len(segMagic) {
			prefixOK = string(data) == segMagic
		}
		if int64(len(data)) != sp.total || !prefixOK {
			t.Fatalf("spool kept %d bytes, total %d", len(data), sp.total)
		}
		if _, err := sp.append(uint64(len(seqs)+1), []byte(`{}`)); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
	})
}

// FuzzBodyEncoding checks the reflection-free encoder against encoding/json.
func FuzzBodyEncoding(f *testing.F) {
	f.Add("User:alice", "", "app", "Produce", "orders", "external", "kg-1", "", "deny", "why", "k", "v", int16(3), int16(29), int32(2), int64(10), uint8(0xff))
	f.Add("", "<&>", "\u2028", "", "\xff\xfe", "", "", "c", "", "", "", "", int16(-1), int16(0), int32(-5), int64(-1), uint8(0))
	f.Fuzz(func(t *testing.T, principal, certFP, clientID, apiName, resName, listener, instance, cluster, decision, reason, dk, dv string,
		apiKey, code int16, part int32, n int64, mask uint8) {
		b := eventBody{Where: Where{Listener: listener, Instance: instance, Cluster: cluster}}
		if mask&1 != 0 {
			b.Who = &Who{Principal: principal, CertFingerprint: certFP, ClientID: clientID}
		}
		if mask&2 != 0 {
			b.What = &What{APIKey: apiKey, APIName: apiName, APIVersion: apiKey + 1, ResourceName: resName}
			if mask&4 != 0 {
				b.What.Produce = []TopicSummary{{Topic: resName, Partitions: []PartitionSummary{{Partition: part, Records: n, Bytes: -n}}}, {Topic: apiName}}
			}
			if mask&8 != 0 {
				b.What.Fetch = []TopicSummary{{Topic: "", Partitions: []PartitionSummary{}}}
			}
		}
		if mask&16 != 0 {
			b.Outcome = &Outcome{Decision: decision, ErrorCode: code, PolicyRev: reason}
			if mask&32 != 0 {
				b.Outcome.Reasons = []string{reason, dk}
			}
		}
		if mask&64 != 0 {
			b.Details = map[string]string{dk: dv, dv: dk, "z": principal}
		}
		if mask&128 != 0 {
			b.Details = map[string]string{}
		}
		want, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encoding differs:\n got %s\nwant %s", got, want)
		}
	})
}

func TestMerkleMatchesRFC6962Reference(t *testing.T) {
	tr := newTree()
	var leaves [][]byte
	for i := 0; i < 70; i++ {
		h := HashEvent([]byte{byte(i)})
		tr.append(h)
		leaves = append(leaves, h[:])
		if got, want := tr.root(), refRoot(leaves); !bytes.Equal(got, want) {
			t.Fatalf("size %d: root %x, reference %x", i+1, got, want)
		}
	}
}

// refRoot is RFC 6962 section 2.1 MTH, recursively, with the library hasher.
func refRoot(leaves [][]byte) []byte {
	switch n := len(leaves); n {
	case 0:
		return rfc6962.DefaultHasher.EmptyRoot()
	case 1:
		return rfc6962.DefaultHasher.HashLeaf(leaves[0])
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		return rfc6962.DefaultHasher.HashChildren(refRoot(leaves[:k]), refRoot(leaves[k:]))
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	pub, err := GenerateKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKeyFile(p); err == nil {
		t.Fatal("GenerateKeyFile overwrote an existing key")
	}
	if fromPriv, err := LoadPublicKey(p); err != nil || !fromPriv.Equal(pub) {
		t.Fatalf("public key from the private key file: %v", err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable signing key accepted: %v", err)
	}
	if _, err := LoadPublicKey(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing key accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, "junk"), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "junk")); err == nil {
		t.Fatal("junk key accepted")
	}
	// A signature over one body does not verify another.
	priv, _ := loadKeyChmod600(t, p)
	s, _ := NewSigner(priv)
	ck := s.sign("kg", newTree())
	ck.Size++
	if err := VerifyCheckpoint(ck, []ed25519.PublicKey{pub}); err == nil {
		t.Fatal("altered checkpoint verified")
	}
}

func loadKeyChmod600(t *testing.T, p string) (ed25519.PrivateKey, error) {
	t.Helper()
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return LoadPrivateKey(p)
}
