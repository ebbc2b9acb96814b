package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kguard/kguard/policy/review"
)

// cmdPolicyDiff replays recorded decisions under a base and a head policy
// and prints what changes (docs/policy-review.md).
func cmdPolicyDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy diff", stderr)
	base := fs.String("base", "", "base policy: a directory, or a git revision REF[:PATH] (PATH defaults to policies)")
	head := fs.String("head", "policies", "head (proposed) policy: a directory or REF[:PATH]")
	source := fs.String("replay", "", `recorded decisions: "topic" (the audit topic, read and verified with the connection flags) or an export/events FILE`)
	format := fs.String("format", "markdown", "markdown, json or text")
	ackFile := fs.String("ack", "", "YAML file acknowledging breaking changes (see docs/policy-review.md)")
	out := fs.String("out", "", "write the report to this file instead of stdout")
	topicFlags := addTopicFlags(fs)
	window := addWindowFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *base == "" || *source == "" {
		return fmt.Errorf("%w: kguard policy diff --base DIR|REF[:PATH] --head DIR|REF[:PATH] --replay topic|FILE", errUsage)
	}
	since, until, err := window.bounds()
	if err != nil {
		return err
	}
	var acks []review.Ack
	if *ackFile != "" {
		if acks, err = review.LoadAcks(*ackFile); err != nil {
			return err
		}
	}
	bsrc, err := review.OpenPolicy(ctx, *base)
	if err != nil {
		return err
	}
	defer bsrc.Close()
	hsrc, err := review.OpenPolicy(ctx, *head)
	if err != nil {
		return err
	}
	defer hsrc.Close()
	be, err := review.LoadEngine(ctx, bsrc.Dir)
	if err != nil {
		return fmt.Errorf("base: %w", err)
	}
	he, err := review.LoadEngine(ctx, hsrc.Dir)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	r := review.NewReplayer(be, he, since, until)
	var verified string
	var srcErr error
	label := *source
	if *source == "topic" {
		opts, err := topicFlags.options()
		if err != nil {
			return err
		}
		label = "topic " + opts.Topic
		verified, srcErr = review.ReplayTopic(ctx, opts, r, stderr)
	} else {
		verified, srcErr = review.ReplayFile(*source, r)
	}
	if srcErr != nil && !errors.Is(srcErr, review.ErrUnverified) {
		return srcErr
	}
	rep, err := r.Run(ctx)
	if err != nil {
		return err
	}
	rep.Base, rep.Head, rep.Source, rep.Verified = *base, *head, label, verified
	rep.Acknowledge(acks)
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("policy diff: %w", err)
		}
		defer f.Close()
		w = f
	}
	if err := rep.Write(w, *format); err != nil {
		return err
	}
	if srcErr != nil {
		return srcErr
	}
	return rep.Check()
}
