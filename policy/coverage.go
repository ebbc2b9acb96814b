package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// ErrCoverageBelow is returned (wrapped) by RunTestsCoverage when the Rego
// tests cover less than the threshold.
var ErrCoverageBelow = errors.New("policy: Rego test coverage below the threshold")

// FileCoverage is OPA's line coverage of one policy module.
type FileCoverage struct {
	File       string  `json:"file"`
	Covered    int     `json:"covered_lines"`
	NotCovered int     `json:"not_covered_lines"`
	Percent    float64 `json:"coverage"`
}

// RuleRef names one rule definition of a policy module.
type RuleRef struct {
	File string `json:"file"`
	Row  int    `json:"row"`
	Name string `json:"name"` // package path and rule name, e.g. kguard.acl.decide
}

func (r RuleRef) String() string { return fmt.Sprintf("%s:%d %s", r.File, r.Row, r.Name) }

// RunTestsCoverage runs the Rego tests of dir as RunTests does, with OPA's
// coverage tracer, then prints the line coverage of every policy module
// (tests excluded) and the total. It fails when a test fails or the total
// is below threshold percent.
func RunTestsCoverage(ctx context.Context, dir string, threshold float64, out io.Writer) error {
	l, err := loadCompiled(dir)
	if err != nil {
		return err
	}
	cov := cover.New()
	terr := printTests(out, func(fn func(*tester.Result)) error { return runRegoTestsCover(ctx, l, fn, cov) })
	files, total := coverageOf(cov.Report(l.modules), l.modules, []string{dir})
	fmt.Fprintf(out, "%s\ncoverage (OPA, lines of policy modules, tests excluded):\n", strings.Repeat("-", 72))
	for _, f := range files {
		fmt.Fprintf(out, "  %6.2f%%  %4d/%-4d  %s\n", f.Percent, f.Covered, f.Covered+f.NotCovered, f.File)
	}
	fmt.Fprintf(out, "  %6.2f%%  total (threshold %.2f%%)\n", total, threshold)
	if terr != nil {
		return terr
	}
	if total < threshold {
		return fmt.Errorf("%w: %.2f%% < %.2f%%", ErrCoverageBelow, total, threshold)
	}
	return nil
}

// coverageOf turns OPA's report into per-file lines (real file names, test
// modules left out) and the total percentage over those files.
func coverageOf(rep cover.Report, modules map[string]*ast.Module, dirs []string) ([]FileCoverage, float64) {
	var out []FileCoverage
	covered, all := 0, 0
	for name := range modules {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		fr := rep.Files[name]
		if fr == nil {
			continue
		}
		c, n := fr.CoveredLines, fr.NotCoveredLines
		covered, all = covered+c, all+c+n
		out = append(out, FileCoverage{File: realName(name, dirs), Covered: c, NotCovered: n, Percent: fr.Coverage})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	total := 100.0
	if all > 0 {
		total = 100 * float64(covered) / float64(all)
	}
	return out, total
}

// realName maps a snapshot module name ("r<i>/path") to the file it was
// read from.
func realName(name string, dirs []string) string {
	root, rel, ok := strings.Cut(name, "/")
	if i, err := strconv.Atoi(strings.TrimPrefix(root, "r")); ok && err == nil && i >= 0 && i < len(dirs) {
		return filepath.Join(dirs[i], rel)
	}
	return name
}

// Coverage collects which rules of an engine's policy produce a value in
// evaluations (the rules no recorded decision exercised: kguard policy test
// --replay). It traces its own evaluations; the engine's are untouched.
type Coverage struct {
	e   *Engine
	st  *state
	cov *ruleTracer
}

// ruleTracer records the rules that produced a value (OPA's exit event of
// a rule), by the location of their head.
type ruleTracer struct {
	mu  sync.Mutex
	hit map[ruleLoc]bool
}

type ruleLoc struct {
	file     string
	row, col int
}

func locOf(l *ast.Location) ruleLoc { return ruleLoc{l.File, l.Row, l.Col} }

func (*ruleTracer) Enabled() bool { return true }

func (*ruleTracer) Config() topdown.TraceConfig { return topdown.TraceConfig{} }

func (t *ruleTracer) TraceEvent(ev topdown.Event) {
	if ev.Op != topdown.ExitOp {
		return
	}
	if r, ok := ev.Node.(*ast.Rule); ok && r.Head != nil && r.Head.Location != nil {
		t.mu.Lock()
		t.hit[locOf(r.Head.Location)] = true
		t.mu.Unlock()
	}
}

// exited reports whether r or one of its else branches produced a value.
func (t *ruleTracer) exited(r *ast.Rule) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for ; r != nil; r = r.Else {
		if r.Head != nil && r.Head.Location != nil && t.hit[locOf(r.Head.Location)] {
			return true
		}
	}
	return false
}

// NewCoverage starts collecting coverage of the policy in force. The
// precomputed values are evaluated once, traced, as the engine does at
// load.
func (e *Engine) NewCoverage(ctx context.Context) (*Coverage, error) {
	st := e.state.Load()
	c := &Coverage{e: e, st: st, cov: &ruleTracer{hit: map[ruleLoc]bool{}}}
	if _, err := rego.New(rego.Query(PrecomputeQuery), rego.Compiler(st.compiler), rego.Store(st.store),
		rego.QueryTracer(c.cov)).Eval(ctx); err != nil {
		return nil, fmt.Errorf("policy: evaluate %s: %w", PrecomputeQuery, err)
	}
	return c, nil
}

// Decision evaluates req's decision query, traced.
func (c *Coverage) Decision(ctx context.Context, req *Request) error {
	in, err := input(req, hostOf(req.ClientAddr))
	if err != nil {
		return err
	}
	if _, err := c.st.decision.Eval(ctx, rego.EvalParsedInput(in), rego.EvalQueryTracer(c.cov)); err != nil {
		return fmt.Errorf("policy: evaluate: %w", err)
	}
	return nil
}

// Protection evaluates the data-protection query for a topic, traced.
func (c *Coverage) Protection(ctx context.Context, principal, tenant, topic string) error {
	in := ast.NewObject(
		ast.Item(ast.StringTerm("principal"), ast.StringTerm(principal)),
		ast.Item(ast.StringTerm("tenant"), ast.StringTerm(tenant)),
		ast.Item(ast.StringTerm("topic"), ast.StringTerm(topic)),
	)
	if _, err := c.st.protection.Eval(ctx, rego.EvalParsedInput(in), rego.EvalQueryTracer(c.cov)); err != nil {
		return fmt.Errorf("policy: evaluate protection for %q: %w", topic, err)
	}
	return nil
}

// Unexercised lists the rules of the policy modules (tests and default
// values left out) that never produced a value in the traced evaluations,
// in file order.
func (c *Coverage) Unexercised() []RuleRef {
	var out []RuleRef
	for name, m := range c.st.modules {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		for _, r := range m.Rules {
			if r.Default || r.Location == nil || c.cov.exited(r) {
				continue
			}
			out = append(out, RuleRef{File: realName(name, c.e.cfg.Dirs), Row: r.Location.Row, Name: pkg + "." + r.Head.Name.String()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Row < out[j].Row
	})
	return out
}
