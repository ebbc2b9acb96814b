package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
)

// TestRegoFormatted keeps the shipped Rego in `opa fmt` form. Set
// KGUARD_REGO_FMT=1 to rewrite the files.
func TestRegoFormatted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(shipped, "*.rego"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Rego files: %v", err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := format.SourceWithOpts(f, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(out, src) {
			if os.Getenv("KGUARD_REGO_FMT") == "1" {
				if err := os.WriteFile(f, out, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("%s is not formatted (opa fmt); run with KGUARD_REGO_FMT=1", f)
		}
	}
}
