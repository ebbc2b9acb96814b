package harness

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// RepoRoot is the repository root, found from this source file.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("harness: cannot locate the repository root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// RandHex is n random bytes in hex, for unique names.
func RandHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ACL is one entry of a policy ACL data file (docs/policy.md).
type ACL struct {
	Principal  string `json:"principal"`
	Host       string `json:"host"`
	Resource   string `json:"resource"`
	Pattern    string `json:"pattern"`
	Name       string `json:"name"`
	Operation  string `json:"operation"`
	Permission string `json:"permission"`
}

// GrantPrefix is the ACLs that let principal do everything on topics and
// groups whose names start with prefix.
func GrantPrefix(principal, prefix string) []ACL {
	return []ACL{
		{Principal: principal, Host: "*", Resource: "Topic", Pattern: "PREFIXED", Name: prefix, Operation: "All", Permission: "ALLOW"},
		{Principal: principal, Host: "*", Resource: "Group", Pattern: "PREFIXED", Name: prefix, Operation: "All", Permission: "ALLOW"},
	}
}

// PolicyDir copies the shipped policies (without the permissive demo data
// set) into dst and adds acls/<name>.json holding acls. It returns dst.
func PolicyDir(tb testing.TB, dst, name string, acls []ACL) string {
	tb.Helper()
	src := filepath.Join(RepoRoot(tb), "policies")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if rel == "demo" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !strings.HasSuffix(p, ".rego") && !strings.HasSuffix(p, ".json") && !strings.HasSuffix(p, ".yaml") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		tb.Fatalf("copying policies: %v", err)
	}
	b, err := json.MarshalIndent(map[string][]ACL{name: acls}, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dst, "acls"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "acls", name+".json"), b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return dst
}
