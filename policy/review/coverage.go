package review

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kguard/kguard/audit"
)

// CoverageOptions are the replay part of `kguard policy test --replay`.
type CoverageOptions struct {
	Dir          string // the policy directory (as policy test)
	Replay       string // SourceTopic or an export/events file
	Topic        audit.VerifyOptions
	Since, Until time.Time
}

// RunReplayCoverage replays the recorded decisions of o.Replay under the
// policy of o.Dir with OPA's coverage tracer and prints the rules no
// recorded decision exercised. It does not fail on them (a rule for a rare
// case is not wrong); it fails when the source cannot be read or did not
// verify.
func RunReplayCoverage(ctx context.Context, o CoverageOptions, out, progress io.Writer) error {
	e, err := LoadEngine(ctx, o.Dir)
	if err != nil {
		return err
	}
	r := NewReplayer(nil, nil, o.Since, o.Until)
	var verified string
	if o.Replay == SourceTopic {
		verified, err = ReplayTopic(ctx, o.Topic, r, progress)
	} else {
		verified, err = ReplayFile(o.Replay, r)
	}
	if err != nil && !errors.Is(err, ErrUnverified) {
		return err
	}
	srcErr := err
	cov, err := e.NewCoverage(ctx)
	if err != nil {
		return err
	}
	if err := r.Trace(ctx, cov); err != nil {
		return err
	}
	st := r.Stats()
	rules := cov.Unexercised()
	fmt.Fprintf(out, "rules no recorded decision exercised (%d decisions, %d distinct inputs, %d not replayable, %d data requests from %s: %s): %d\n",
		st.Decisions, st.Distinct, st.NoInput, st.DataRequests, o.Replay, verified, len(rules))
	for _, rr := range rules {
		fmt.Fprintf(out, "  %s\n", rr)
	}
	return srcErr
}
