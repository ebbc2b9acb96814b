package policy

import (
	"bytes"
	"context"
	"testing"
)

// TestShippedRegoTests runs the *_test.rego files shipped in policies/.
func TestShippedRegoTests(t *testing.T) {
	var out bytes.Buffer
	err := RunTests(context.Background(), "../policies", &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
}
