package review

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

// SourceTopic as DiffOptions.Replay reads the audit topic.
const SourceTopic = "topic"

// DiffOptions are the `kguard policy diff` settings.
type DiffOptions struct {
	// Base and Head are policy roots (several merge, as policy.Config.Dirs),
	// each a directory or a git revision REF[:PATH].
	Base, Head []string
	// Replay is SourceTopic (the audit topic, read and verified with
	// Topic) or the path of an export or events file.
	Replay       string
	Topic        audit.VerifyOptions
	Since, Until time.Time
	Format       string // markdown (default), json, text
	Acks         []Ack
	Out          string // report file; "" writes to the out writer
}

// RunDiff replays the recorded decisions of o.Replay under the base and
// head policies and writes the report. It returns an error wrapping
// ErrBreaking when a breaking change is not acknowledged, and one wrapping
// ErrUnverified (after writing the report) when the source did not verify.
func RunDiff(ctx context.Context, o DiffOptions, out, progress io.Writer) (*Report, error) {
	if len(o.Base) == 0 || len(o.Head) == 0 || o.Replay == "" {
		return nil, errors.New("review: base, head and replay source are required")
	}
	be, bclose, err := openEngine(ctx, o.Base)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	defer bclose()
	he, hclose, err := openEngine(ctx, o.Head)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	defer hclose()
	r := NewReplayer(be, he, o.Since, o.Until)
	var verified, label string
	var srcErr error
	if o.Replay == SourceTopic {
		label = "topic " + o.Topic.Topic
		verified, srcErr = ReplayTopic(ctx, o.Topic, r, progress)
	} else {
		label = o.Replay
		verified, srcErr = ReplayFile(o.Replay, r)
	}
	if srcErr != nil && !errors.Is(srcErr, ErrUnverified) {
		return nil, srcErr
	}
	rep, err := r.Run(ctx)
	if err != nil {
		return nil, err
	}
	rep.Base, rep.Head = strings.Join(o.Base, ","), strings.Join(o.Head, ",")
	rep.Source, rep.Verified = label, verified
	rep.Quotas = QuotaChanges(be.Quotas(), he.Quotas())
	rep.Acknowledge(o.Acks)
	if o.Out != "" {
		f, err := os.Create(o.Out)
		if err != nil {
			return nil, fmt.Errorf("review: %w", err)
		}
		defer f.Close()
		out = f
	}
	if err := rep.Write(out, o.Format); err != nil {
		return rep, err
	}
	if srcErr != nil {
		return rep, srcErr
	}
	return rep, rep.Check()
}

// openEngine opens every root (directory or git revision) and loads them
// as one policy.
func openEngine(ctx context.Context, specs []string) (*policy.Engine, func(), error) {
	var srcs []*PolicySource
	closeAll := func() {
		for _, s := range srcs {
			s.Close()
		}
	}
	dirs := make([]string, 0, len(specs))
	for _, s := range specs {
		src, err := OpenPolicy(ctx, s)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		srcs = append(srcs, src)
		dirs = append(dirs, src.Dir)
	}
	e, err := LoadEngine(ctx, dirs...)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return e, closeAll, nil
}
