package main

import (
	"context"
	"fmt"
	"io"

	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/policy/review"
)

// cmdPolicy runs the Rego tests of a policy directory or decides one
// request from a JSON file, so policies are tested and reviewed like code.
func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: kguard policy test [DIR] | kguard policy eval --input FILE [--dir DIR] | kguard policy diff --base B --head H --replay SOURCE", errUsage)
	}
	switch args[0] {
	case "test":
		fs := newFlags("policy test", stderr)
		coverage := fs.Bool("coverage", false, "print OPA's line coverage of the policy modules")
		threshold := fs.Float64("threshold", 0, "with --coverage: fail below this total coverage (percent)")
		source := fs.String("replay", "", `also list the rules no recorded decision exercised: "topic" (the audit topic, with the connection flags) or an export/events FILE`)
		topicFlags := addTopicFlags(fs)
		window := addWindowFlags(fs)
		fs.Usage = func() {
			fmt.Fprintln(stderr, "usage: kguard policy test [--coverage [--threshold N]] [--replay SOURCE] [DIR]  (DIR defaults to policies)")
			fs.PrintDefaults()
		}
		if err := parseFlagsArgs(fs, args[1:]); err != nil {
			return err
		}
		dir := "policies"
		if fs.NArg() > 1 {
			return fmt.Errorf("%w: kguard policy test [--coverage [--threshold N]] [--replay SOURCE] [DIR]", errUsage)
		}
		if fs.NArg() == 1 {
			dir = fs.Arg(0)
		}
		var err error
		if *coverage {
			err = policy.RunTestsCoverage(ctx, dir, *threshold, stdout)
		} else {
			err = policy.RunTests(ctx, dir, stdout)
		}
		if err != nil || *source == "" {
			return err
		}
		o := review.CoverageOptions{Dir: dir, Replay: *source}
		if o.Since, o.Until, err = window.bounds(); err != nil {
			return err
		}
		if *source == review.SourceTopic {
			if o.Topic, err = topicFlags.options(); err != nil {
				return err
			}
		}
		return review.RunReplayCoverage(ctx, o, stdout, stderr)
	case "diff":
		return cmdPolicyDiff(ctx, args[1:], stdout, stderr)
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
