package main

import (
	"context"
	"fmt"
	"io"

	"github.com/kguard/kguard/policy"
)

// cmdPolicy runs the Rego tests of a policy directory or decides one
// request from a JSON file, so policies are tested and reviewed like code.
func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: kguard policy test [DIR] | kguard policy eval --input FILE [--dir DIR]", errUsage)
	}
	switch args[0] {
	case "test":
		fs := newFlags("policy test", stderr)
		fs.Usage = func() { fmt.Fprintln(stderr, "usage: kguard policy test [DIR]  (DIR defaults to policies)") }
		if err := parseFlagsArgs(fs, args[1:]); err != nil {
			return err
		}
		dir := "policies"
		if fs.NArg() > 1 {
			return fmt.Errorf("%w: kguard policy test [DIR]", errUsage)
		}
		if fs.NArg() == 1 {
			dir = fs.Arg(0)
		}
		return policy.RunTests(ctx, dir, stdout)
	case "eval":
		fs := newFlags("policy eval", stderr)
		dir := fs.String("dir", "policies", "policy directory")
		input := fs.String("input", "", "JSON request to decide (see docs/policy.md)")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if *input == "" {
			return fmt.Errorf("%w: --input is required", errUsage)
		}
		return policy.EvalFile(ctx, *dir, *input, stdout)
	}
	return fmt.Errorf("%w: unknown policy command %q", errUsage, args[0])
}
