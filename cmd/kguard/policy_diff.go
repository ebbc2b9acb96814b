package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/kguard/kguard/policy/review"
)

// cmdPolicyDiff replays recorded decisions under a base and a head policy
// and prints what changes (docs/policy-review.md).
func cmdPolicyDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy diff", stderr)
	base := fs.String("base", "", "base policy roots, comma-separated: directories or git revisions REF[:PATH] (PATH defaults to policies)")
	head := fs.String("head", "policies", "head (proposed) policy roots, as --base")
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
	o := review.DiffOptions{Base: strings.Split(*base, ","), Head: strings.Split(*head, ","), Replay: *source,
		Format: *format, Out: *out}
	var err error
	if o.Since, o.Until, err = window.bounds(); err != nil {
		return err
	}
	if *ackFile != "" {
		if o.Acks, err = review.LoadAcks(*ackFile); err != nil {
			return err
		}
	}
	if *source == review.SourceTopic {
		if o.Topic, err = topicFlags.options(); err != nil {
			return err
		}
	}
	_, err = review.RunDiff(ctx, o, stdout, stderr)
	return err
}
