package crypto

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TestRootFromProofMatchesLibrary: the batch tree, its proofs and
// rootFromProof agree with transparency-dev/merkle for every leaf of trees
// of 1 to 70 leaves; wrong indexes, sizes and proof lengths fail in both.
func TestRootFromProofMatchesLibrary(t *testing.T) {
	for n := 1; n <= 70; n++ {
		leaves := make([][32]byte, n)
		for i := range leaves {
			rand.Read(leaves[i][:])
		}
		tb := newMerkleBatch(leaves)
		root := tb.build(0, n)
		for m := 0; m < n; m++ {
			var path [][]byte
			for _, h := range tb.proof(m) {
				path = append(path, bytes.Clone(h[:]))
			}
			got, err := rootFromProof(uint64(m), uint64(n), leaves[m], path)
			if err != nil || got != root {
				t.Fatalf("n=%d m=%d: rootFromProof %x, %v; tree root %x", n, m, got, err, root)
			}
			lib, err := proof.RootFromInclusionProof(rfc6962.DefaultHasher, uint64(m), uint64(n), leaves[m][:], path)
			if err != nil || !bytes.Equal(lib, root[:]) {
				t.Fatalf("n=%d m=%d: library root %x, %v; tree root %x", n, m, lib, err, root)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(m), uint64(n), leaves[m][:], path, root[:]); err != nil {
				t.Fatalf("n=%d m=%d: library rejects our proof: %v", n, m, err)
			}
			bad := []struct {
				name        string
				index, size uint64
				path        [][]byte
			}{
				{"index=size", uint64(n), uint64(n), path},
				{"extra hash", uint64(m), uint64(n), append(append([][]byte(nil), path...), make([]byte, 32))},
				{"other size", uint64(m), uint64(n + 1), path},
			}
			if len(path) > 0 {
				bad = append(bad, struct {
					name        string
					index, size uint64
					path        [][]byte
				}{"short", uint64(m), uint64(n), path[:len(path)-1]})
			}
			for _, b := range bad {
				got, err := rootFromProof(b.index, b.size, leaves[m], b.path)
				lib, lerr := proof.RootFromInclusionProof(rfc6962.DefaultHasher, b.index, b.size, leaves[m][:], b.path)
				if (err == nil) != (lerr == nil) || err == nil && !bytes.Equal(got[:], lib) {
					t.Fatalf("n=%d m=%d %s: ours %x %v, library %x %v", n, m, b.name, got, err, lib, lerr)
				}
				// (another size can lead to the same root: leaf m of n is
				// also leaf m of a larger tree whose right part hashes alike)
				if err == nil && got == root && b.name != "other size" {
					t.Fatalf("n=%d m=%d %s: still gives the root", n, m, b.name)
				}
			}
		}
	}
}
