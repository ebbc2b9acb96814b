package review

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

// ErrUnverified is returned (wrapped) when the replayed trail did not
// verify: a review over altered events proves nothing.
var ErrUnverified = errors.New("the replayed audit trail did not verify")

// ReplayFile adds every event of an export file (kguard audit export) or
// of a file of one encoded event per line to r. It returns how the source
// is described in the report and whether it verified when exported.
func ReplayFile(path string, r *Replayer) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("review: replay source: %w", err)
	}
	defer f.Close()
	h, err := audit.ReadEventsConcurrently(f, runtime.GOMAXPROCS(0), r.Add)
	if err != nil {
		return "", fmt.Errorf("review: %s: %w", path, err)
	}
	switch {
	case h.Format == 0:
		return "events file, no export header: not verified", nil
	case !h.Verified:
		return "export of " + h.Topic + ", NOT verified when exported", fmt.Errorf("%w: the export header of %s says so (%s)",
			ErrUnverified, path, strings.Join(h.Findings, "; "))
	}
	return fmt.Sprintf("export of %s, chain and %d checkpoints verified when exported", h.Topic, h.Checkpoints), nil
}

// ReplayTopic reads the audit topic with audit.VerifyEach, adding every
// event to r while the trail is verified.
func ReplayTopic(ctx context.Context, opts audit.VerifyOptions, r *Replayer, progress io.Writer) (string, error) {
	rep, err := audit.VerifyEach(ctx, opts, func(ev *audit.Event, _ []byte, _ audit.Position) error { return r.Add(ev) }, progress)
	if err != nil {
		return "", err
	}
	cps := 0
	for _, in := range rep.Instances {
		cps += in.VerifiedCheckpoints
	}
	if !rep.OK() {
		var probs []string
		for _, f := range rep.Findings {
			if f.Severity == audit.SeverityError {
				probs = append(probs, f.String())
			}
		}
		return fmt.Sprintf("%d records, NOT verified: %d problem(s)", rep.Records, rep.Errors()),
			fmt.Errorf("%w: %s", ErrUnverified, strings.Join(probs, "; "))
	}
	return fmt.Sprintf("%d records, chain and %d checkpoints verified while reading", rep.Records, cps), nil
}

// PolicySource is a policy directory to review: a directory, or a git
// revision and the path of the directory in it (REF:PATH, REF alone meaning
// REF:policies), read with `git archive`.
type PolicySource struct {
	Spec  string // as given
	Dir   string // the directory loaded
	clean func()
}

// Close removes a directory extracted from git.
func (p *PolicySource) Close() {
	if p.clean != nil {
		p.clean()
	}
}

// OpenPolicy resolves spec: an existing directory is used as it is;
// anything else is a git revision (REF or REF:PATH) of the repository in
// the current directory, extracted to a temporary directory.
func OpenPolicy(ctx context.Context, spec string) (*PolicySource, error) {
	if st, err := os.Stat(spec); err == nil && st.IsDir() {
		return &PolicySource{Spec: spec, Dir: spec}, nil
	}
	ref, path, ok := strings.Cut(spec, ":")
	if !ok || path == "" {
		path = "policies"
	}
	if ref == "" || strings.HasPrefix(ref, "-") {
		return nil, fmt.Errorf("review: %q is neither a directory nor a git revision", spec)
	}
	tmp, err := os.MkdirTemp("", "kguard-policy-")
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	clean := func() { os.RemoveAll(tmp) }
	// git archive resolves REF:PATH from the top of the work tree, and
	// refuses to run in a directory the tree does not hold.
	top, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		clean()
		return nil, fmt.Errorf("review: %q is not a directory, and no git repository here to read it from: %w", spec, err)
	}
	cmd := exec.CommandContext(ctx, "git", "archive", "--format=tar", ref+":"+strings.TrimPrefix(path, "./"))
	cmd.Dir = strings.TrimSpace(string(top))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		clean()
		return nil, fmt.Errorf("review: git archive: %w", err)
	}
	if err := cmd.Start(); err != nil {
		clean()
		return nil, fmt.Errorf("review: git archive %s: %w", spec, err)
	}
	xerr := untar(out, tmp)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		clean()
		return nil, fmt.Errorf("review: git archive %s:%s: %w: %s", ref, path, err, strings.TrimSpace(stderr.String()))
	}
	if xerr != nil {
		clean()
		return nil, xerr
	}
	return &PolicySource{Spec: spec, Dir: tmp, clean: clean}, nil
}

// untar extracts regular files and directories of a git archive into dst.
func untar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("review: read git archive: %w", err)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if name == "." || filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			continue
		}
		p := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("review: %w", err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("review: %w", err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return fmt.Errorf("review: %w", err)
			}
			_, cerr := io.Copy(f, tr)
			if err := f.Close(); cerr == nil {
				cerr = err
			}
			if cerr != nil {
				return fmt.Errorf("review: extract %s: %w", h.Name, cerr)
			}
		}
	}
}

// LoadEngine compiles, tests and prepares the policy roots dirs for replay
// (no decision cache: the replay evaluates each distinct input once).
func LoadEngine(ctx context.Context, dirs ...string) (*policy.Engine, error) {
	e, err := policy.NewEngine(ctx, policy.Config{Dirs: dirs, CacheSize: -1, ProtectionCacheSize: -1})
	if err != nil {
		return nil, fmt.Errorf("review: policy %s: %w", strings.Join(dirs, ","), err)
	}
	return e, nil
}
