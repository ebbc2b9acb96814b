package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// RunTests runs the Rego tests (test_* rules, usually in *_test.rego) of the
// policy directory dir, writing one line per test and a summary to out, as
// `opa test` does. It returns a non-nil error when the policies do not load
// or compile, or when any test fails.
func RunTests(ctx context.Context, dir string, out io.Writer) error {
	l, err := loadCompiled(dir)
	if err != nil {
		return err
	}
	return printTests(out, func(fn func(*tester.Result)) error { return runRegoTests(ctx, l, fn) })
}

// loadCompiled loads the policy directory dir and checks that it compiles.
func loadCompiled(dir string) (*loaded, error) {
	e := &Engine{cfg: Config{Dirs: []string{dir}}}
	l, err := e.load()
	if err != nil {
		return nil, err
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(l.modules); compiler.Failed() {
		return nil, fmt.Errorf("policy: compile: %w", compiler.Errors)
	}
	return l, nil
}

// printTests runs the tests with run, writing one line per test and a
// summary to out, as `opa test` does.
func printTests(out io.Writer, run func(func(*tester.Result)) error) error {
	pass, fail := 0, 0
	err := run(func(r *tester.Result) {
		status := "PASS"
		switch {
		case r.Error != nil:
			status = "ERROR"
			fail++
		case r.Fail:
			status = "FAIL"
			fail++
		case r.Skip:
			status = "SKIP"
		default:
			pass++
		}
		line := fmt.Sprintf("%-5s %s.%s (%s)", status, r.Package, r.Name, r.Duration)
		if r.Error != nil {
			line += ": " + r.Error.Error()
		}
		if r.Location != nil && status != "PASS" && status != "SKIP" {
			line += fmt.Sprintf(" at %s:%d", r.Location.File, r.Location.Row)
		}
		fmt.Fprintln(out, line)
	})
	fmt.Fprintf(out, "%s\nPASS: %d/%d\n", strings.Repeat("-", 72), pass, pass+fail)
	if pass+fail == 0 {
		fmt.Fprintln(out, "no tests found")
	}
	var tf *TestFailure
	if errors.As(err, &tf) {
		fmt.Fprintf(out, "FAIL: %d/%d\n", fail, pass+fail)
	}
	return err
}

// EvalOutput is what EvalFile prints.
type EvalOutput struct {
	Request  *Request  `json:"request"`
	Decision *Decision `json:"decision"`
}

// EvalFile decides the request in inputPath (a JSON Request: principal,
// tenant, client_addr, listener, api_key, api_name, api_version, client_id,
// actions, details) with the policies in dir and prints the request and the
// decision with its reasons as indented JSON to out. Tests do not run and
// nothing is cached.
func EvalFile(ctx context.Context, dir, inputPath string, out io.Writer) error {
	b, err := os.ReadFile(inputPath)
	if err != nil {
		return fmt.Errorf("policy: read input: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("policy: parse input %s: %w", inputPath, err)
	}
	e := &Engine{cfg: Config{Dirs: []string{dir}, CacheSize: -1, ProtectionCacheSize: -1}, idPrefix: "eval-"}
	st, err := e.buildNoTests(ctx)
	if err != nil {
		return err
	}
	e.state.Store(st)
	d, err := e.Authorize(ctx, &req)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(EvalOutput{Request: &req, Decision: d})
}
