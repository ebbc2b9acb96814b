package policy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing/fstest"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"go.uber.org/zap"

	"github.com/kguard/kguard/config"
)

// Queries the engine prepares.
const (
	DecisionQuery   = "data.kguard.decision"
	ProtectionQuery = "data.kguard.protection.result"
	TenantQuery     = "data.kguard.tenant.of"
)

// Default cache sizes.
const (
	DefaultCacheSize           = 100_000
	DefaultProtectionCacheSize = 10_000
)

// Config configures an Engine.
type Config struct {
	// Dirs are the policy directories: Rego modules (*.rego, with their
	// *_test.rego) and data files (*.json, *.yaml, *.yml), laid out as for
	// `opa eval -d` / `opa test`: a data file's directory, relative to its
	// root, is its path under data. Several roots merge (e.g. "policies" and
	// "policies/demo" for the demo data set).
	Dirs []string
	// FS, when set, is read instead of the OS file system (Dirs are paths in
	// it); Watch is then unavailable. Used for the embedded policies.
	FS fs.FS
	// CacheSize bounds the decision cache (entries, one per action);
	// 0 means DefaultCacheSize, negative disables the cache.
	CacheSize int
	// ProtectionCacheSize bounds the protection cache; 0 means
	// DefaultProtectionCacheSize, negative disables it.
	ProtectionCacheSize int
	// Logger receives reload results; nil means no logging.
	Logger *zap.Logger
	// Metrics, when set, counts decision-cache lookups and reloads.
	Metrics *Metrics
	// OnReload, when set, is called after a reload (Reload, Watch) put a
	// new revision in force, with that revision (kguard serve records a
	// policy.reload audit event from it).
	OnReload func(revision string)
}

// Engine is the OPA-backed Authorizer. It is safe for concurrent use.
type Engine struct {
	cfg      Config
	log      *zap.Logger
	state    atomic.Pointer[state]
	reloadMu sync.Mutex
	idPrefix string
	seq      atomic.Uint64
}

var _ Authorizer = (*Engine)(nil)

// state is one compiled, tested policy revision with its caches. Swapping
// the state drops the old caches, so entries are keyed on the revision.
type state struct {
	revision   string
	files      []string
	sources    map[string][]byte // file name (as in files) -> content
	decision   rego.PreparedEvalQuery
	protection rego.PreparedEvalQuery
	tenant     *rego.PreparedEvalQuery // nil when the policy has no tenant mapping
	cache      *lru.Cache[cacheKey, cacheEntry]
	pcache     *lru.Cache[protKey, *Protection]
	tcache     *lru.Cache[string, string]
	// quotas are the client quota rules of the policy data
	// (data.config.quotas), nil when it has none (quotas.go).
	quotas *config.Quotas
	// What coverage needs (coverage.go): the parsed modules by their
	// snapshot name, the compiler and the store.
	modules  map[string]*ast.Module
	compiler *ast.Compiler
	store    storage.Store
}

type cacheKey struct {
	principal, tenant, host string
	action                  Action
	variant                 string
}

type cacheEntry struct {
	result     Result
	violations []Violation
}

type protKey struct{ principal, tenant, topic string }

// NewEngine loads, compiles and tests the policies in cfg.Dirs. It fails if
// they do not compile or a Rego test fails.
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	if len(cfg.Dirs) == 0 {
		return nil, errors.New("policy: no policy directory configured")
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.ProtectionCacheSize == 0 {
		cfg.ProtectionCacheSize = DefaultProtectionCacheSize
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("policy: decision id prefix: %w", err)
	}
	e := &Engine{cfg: cfg, log: log, idPrefix: hex.EncodeToString(rnd[:]) + "-"}
	st, err := e.build(ctx)
	if err != nil {
		return nil, err
	}
	e.state.Store(st)
	cfg.Metrics.loaded(st.revision, true, nil)
	log.Info("policy loaded", zap.String("revision", st.revision), zap.Int("files", len(st.files)))
	return e, nil
}

// Revision returns the revision (hash of the loaded files) in force.
func (e *Engine) Revision() string { return e.state.Load().revision }

// Reload reads the policy directories again, compiles them, runs their Rego
// tests, and swaps the new policy in only if all of that succeeds. On error
// the old policy stays in force and the error is logged and returned.
func (e *Engine) Reload(ctx context.Context) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	old := e.state.Load()
	st, err := e.build(ctx)
	if err != nil {
		e.cfg.Metrics.loaded(old.revision, false, err)
		e.log.Error("policy reload refused, keeping the old policy",
			zap.String("revision", old.revision), zap.Error(err))
		return err
	}
	if st.revision == old.revision {
		e.cfg.Metrics.loaded(st.revision, false, nil)
		return nil
	}
	e.state.Store(st)
	e.cfg.Metrics.loaded(st.revision, true, nil)
	e.log.Info("policy reloaded", zap.String("old_revision", old.revision),
		zap.String("revision", st.revision), zap.Int("files", len(st.files)))
	if e.cfg.OnReload != nil {
		e.cfg.OnReload(st.revision)
	}
	return nil
}

// policyFile reports whether name is a file the engine loads.
func policyFile(name string) bool {
	base := path.Base(name)
	if strings.HasPrefix(base, ".") || strings.HasPrefix(base, "#") || strings.HasSuffix(base, "~") {
		return false
	}
	switch path.Ext(base) {
	case ".rego", ".json", ".yaml", ".yml":
		return true
	}
	return false
}

// snapshot reads every policy file of the roots into an in-memory file
// system (root i under "r<i>"), so that the revision hash and what is
// compiled are the same bytes.
func (e *Engine) snapshot() (fstest.MapFS, []string, string, error) {
	mfs := fstest.MapFS{}
	var names []string
	h := sha256.New()
	for i, dir := range e.cfg.Dirs {
		root := "r" + strconv.Itoa(i)
		mfs[root] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
		var fsys fs.FS
		base := dir
		if e.cfg.FS != nil {
			fsys = e.cfg.FS
		} else {
			fsys = os.DirFS(dir)
			base = "."
		}
		err := fs.WalkDir(fsys, base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(p, base), "/")
			if d.IsDir() {
				if rel != "" && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				if rel != "" {
					mfs[root+"/"+rel] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
				}
				return nil
			}
			if !policyFile(p) {
				return nil
			}
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			mfs[root+"/"+rel] = &fstest.MapFile{Data: b, Mode: 0o644}
			names = append(names, filepath.Join(dir, rel))
			fmt.Fprintf(h, "%d\x00%s\x00%d\x00", i, rel, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return nil, nil, "", fmt.Errorf("policy: read %s: %w", dir, err)
		}
	}
	return mfs, names, hex.EncodeToString(h.Sum(nil))[:16], nil
}

// loaded is a parsed policy set.
type loaded struct {
	modules  map[string]*ast.Module
	docs     map[string]any
	files    []string
	sources  map[string][]byte
	revision string
}

func (e *Engine) load() (*loaded, error) {
	mfs, files, rev, err := e.snapshot()
	if err != nil {
		return nil, err
	}
	roots := make([]string, len(e.cfg.Dirs))
	for i := range roots {
		roots[i] = "r" + strconv.Itoa(i)
	}
	res, err := loader.NewFileLoader().WithFS(mfs).WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).All(roots)
	if err != nil {
		return nil, fmt.Errorf("policy: load: %w", err)
	}
	if len(res.Modules) == 0 {
		return nil, fmt.Errorf("policy: no Rego module in %s", strings.Join(e.cfg.Dirs, ", "))
	}
	sources := make(map[string][]byte, len(files))
	for i, dir := range e.cfg.Dirs {
		root := "r" + strconv.Itoa(i)
		for name, f := range mfs {
			if rel, ok := strings.CutPrefix(name, root+"/"); ok && !f.Mode.IsDir() {
				sources[filepath.Join(dir, rel)] = f.Data
			}
		}
	}
	return &loaded{modules: res.ParsedModules(), docs: res.Documents, files: files, sources: sources, revision: rev}, nil
}

// build loads, compiles and tests the policies and prepares the queries.
func (e *Engine) build(ctx context.Context) (*state, error) {
	return e.buildWith(ctx, true)
}

// buildNoTests is build without running the Rego tests (policy eval).
func (e *Engine) buildNoTests(ctx context.Context) (*state, error) {
	return e.buildWith(ctx, false)
}

func (e *Engine) buildWith(ctx context.Context, tests bool) (*state, error) {
	l, err := e.load()
	if err != nil {
		return nil, err
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(l.modules); compiler.Failed() {
		return nil, fmt.Errorf("policy: compile: %w", compiler.Errors)
	}
	if tests {
		if err := runRegoTests(ctx, l, nil); err != nil {
			return nil, err
		}
	}
	store := inmem.NewFromObjectWithOpts(l.docs, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	if err := precompute(ctx, compiler, store); err != nil {
		return nil, err
	}
	dq, err := rego.New(rego.Query(DecisionQuery), rego.Compiler(compiler), rego.Store(store)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: prepare %s: %w", DecisionQuery, err)
	}
	pq, err := rego.New(rego.Query(ProtectionQuery), rego.Compiler(compiler), rego.Store(store)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: prepare %s: %w", ProtectionQuery, err)
	}
	quotas, err := quotaData(l.docs)
	if err != nil {
		return nil, err
	}
	st := &state{revision: l.revision, files: l.files, decision: dq, protection: pq,
		modules: l.modules, compiler: compiler, store: store, sources: l.sources, quotas: quotas}
	if tq, err := rego.New(rego.Query(TenantQuery), rego.Compiler(compiler), rego.Store(store)).PrepareForEval(ctx); err == nil {
		st.tenant = &tq
	}
	if e.cfg.CacheSize > 0 {
		if st.cache, err = lru.New[cacheKey, cacheEntry](e.cfg.CacheSize); err != nil {
			return nil, fmt.Errorf("policy: cache: %w", err)
		}
	}
	if e.cfg.ProtectionCacheSize > 0 {
		if st.pcache, err = lru.New[protKey, *Protection](e.cfg.ProtectionCacheSize); err != nil {
			return nil, fmt.Errorf("policy: protection cache: %w", err)
		}
		if st.tcache, err = lru.New[string, string](e.cfg.ProtectionCacheSize); err != nil {
			return nil, fmt.Errorf("policy: tenant cache: %w", err)
		}
	}
	return st, nil
}

// PrecomputeQuery names input-independent values the engine evaluates once
// per policy revision and writes to data.kguard_precomputed (the shipped
// policies precompute their ACL index there).
const PrecomputeQuery = "data.kguard.precompute"

func precompute(ctx context.Context, compiler *ast.Compiler, store storage.Store) error {
	rs, err := rego.New(rego.Query(PrecomputeQuery), rego.Compiler(compiler), rego.Store(store)).Eval(ctx)
	if err != nil {
		return fmt.Errorf("policy: evaluate %s: %w", PrecomputeQuery, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil // nothing to precompute
	}
	v, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return fmt.Errorf("policy: %s is not an object", PrecomputeQuery)
	}
	path := storage.MustParsePath("/kguard_precomputed")
	if err := storage.WriteOne(ctx, store, storage.AddOp, path, v); err != nil {
		return fmt.Errorf("policy: store precomputed values: %w", err)
	}
	return nil
}

// TestFailure describes failed Rego tests.
type TestFailure struct {
	Failed []string
}

func (t *TestFailure) Error() string {
	return fmt.Sprintf("policy: %d Rego test(s) failed: %s", len(t.Failed), strings.Join(t.Failed, ", "))
}

// regoTestTimeout bounds one Rego test.
const regoTestTimeout = time.Minute

// runRegoTests runs every test_ rule of the loaded modules. When out is not
// nil, one line per test is written to it.
func runRegoTests(ctx context.Context, l *loaded, out func(r *tester.Result)) error {
	return runRegoTestsCover(ctx, l, out, nil)
}

// runRegoTestsCover is runRegoTests with OPA's coverage tracer (nil: none).
func runRegoTestsCover(ctx context.Context, l *loaded, out func(r *tester.Result), cov *cover.Cover) error {
	store := inmem.NewFromObjectWithOpts(l.docs, inmem.OptRoundTripOnWrite(false))
	// OPA's default per-test timeout (5s) is for a developer's laptop; a
	// loaded machine must not turn a slow test into a refused reload. The
	// caller's ctx still bounds the whole run.
	runner := tester.NewRunner().SetStore(store).SetDefaultRegoVersion(ast.RegoV1).SetModules(l.modules).
		SetTimeout(regoTestTimeout)
	if cov != nil {
		// Only the ordinary pass: the supplementary ones (rule indexing,
		// early exit disabled) would double the run for annotations the
		// report does not print.
		runner = runner.SetCoverageQueryTracer(cov).SetCoverageRuns([]cover.Kind{})
	}
	var failed []string
	err := storage.Txn(ctx, store, storage.TransactionParams{}, func(txn storage.Transaction) error {
		ch, err := runner.RunTests(ctx, txn)
		if err != nil {
			return fmt.Errorf("policy: run Rego tests: %w", err)
		}
		for r := range ch {
			if out != nil {
				out(r)
			}
			if r.Fail || r.Error != nil {
				name := r.Package + "." + r.Name
				if r.Error != nil {
					name += " (" + r.Error.Error() + ")"
				}
				failed = append(failed, name)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return &TestFailure{Failed: failed}
	}
	return nil
}

// hostOf returns the host part of "ip:port" (the whole string when it has
// no port).
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func detailInt(v any, def int) int {
	switch n := v.(type) {
	case int:
		return n
	case int16:
		return int(n)
	case int32:
		return int(n)
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return def
}

// decisionOne holds a Decision and the Result of a one-action request in
// one allocation.
type decisionOne struct {
	d Decision
	r [1]Result
}

// allocDecision returns a Decision with n zero Results.
func (e *Engine) allocDecision(st *state, n int) *Decision {
	var d *Decision
	if n == 1 {
		one := &decisionOne{}
		one.d.Results = one.r[:]
		d = &one.d
	} else {
		d = &Decision{Results: make([]Result, n)}
	}
	var buf [64]byte
	id := append(append(buf[:0], e.idPrefix...), strconv.FormatUint(e.seq.Add(1), 10)...)
	d.Revision = st.revision
	d.DecisionID = string(id)
	return d
}

// Authorize decides req: one Result per action, plus safeguard violations.
// An error (evaluation failure, undefined decision) means deny.
func (e *Engine) Authorize(ctx context.Context, req *Request) (*Decision, error) {
	if req == nil {
		return nil, errors.New("policy: nil request")
	}
	st := e.state.Load()
	host := hostOf(req.ClientAddr)
	v, cacheable := req.CacheVariant, req.Cacheable
	if !cacheable || st.cache == nil {
		e.cfg.Metrics.lookups(0, 0, len(req.Actions))
		d, err := e.eval(ctx, st, req, host)
		if err != nil {
			return nil, err
		}
		d.Reasons = append(summarize(req.Actions, d.Results, d.Violations), d.Reasons...)
		return d, nil
	}

	d := e.allocDecision(st, len(req.Actions))
	results := d.Results
	var violations []Violation
	var missing []int
	for i, a := range req.Actions {
		ent, ok := st.cache.Get(cacheKey{req.Principal, req.Tenant, host, a, v})
		if !ok {
			missing = append(missing, i)
			continue
		}
		results[i] = ent.result
		violations = appendViolations(violations, ent.violations)
	}
	e.cfg.Metrics.lookups(len(req.Actions)-len(missing), len(missing), 0)
	var extra []string
	if len(missing) > 0 {
		sub := *req
		sub.Actions = make([]Action, len(missing))
		for j, i := range missing {
			sub.Actions[j] = req.Actions[i]
		}
		ed, err := e.eval(ctx, st, &sub, host)
		if err != nil {
			return nil, err
		}
		extra = ed.Reasons
		// Attribute violations to the actions they name. One naming an
		// action of the request that was served from the cache is already
		// in that action's entry; one naming no action of the request makes
		// the evaluation uncacheable.
		attributable := true
		for _, vi := range ed.Violations {
			if !namesAction(req.Actions, vi) {
				attributable = false
				violations = appendViolations(violations, []Violation{vi})
			}
		}
		for j, i := range missing {
			a := sub.Actions[j]
			ent := cacheEntry{result: ed.Results[j]}
			for _, vi := range ed.Violations {
				if vi.Resource == string(a.Resource) && vi.Name == a.Name {
					ent.violations = append(ent.violations, vi)
				}
			}
			results[i] = ent.result
			violations = appendViolations(violations, ent.violations)
			if attributable {
				st.cache.Add(cacheKey{req.Principal, req.Tenant, host, a, v}, ent)
			}
		}
	}
	d.Violations = violations
	if len(missing) > 0 || len(violations) > 0 || !allAllowed(results) {
		d.Reasons = append(summarize(req.Actions, results, violations), extra...)
	}
	return d, nil
}

func allAllowed(rs []Result) bool {
	for _, r := range rs {
		if !r.Allowed {
			return false
		}
	}
	return true
}

func namesAction(actions []Action, v Violation) bool {
	for _, a := range actions {
		if string(a.Resource) == v.Resource && a.Name == v.Name {
			return true
		}
	}
	return false
}

// appendViolations appends vs to dst, skipping duplicates.
func appendViolations(dst, vs []Violation) []Violation {
outer:
	for _, v := range vs {
		for _, d := range dst {
			if d == v {
				continue outer
			}
		}
		dst = append(dst, v)
	}
	return dst
}

// summarize explains denials and violations, one line each.
func summarize(actions []Action, results []Result, vs []Violation) []string {
	var out []string
	for i, r := range results {
		if !r.Allowed {
			a := actions[i]
			out = append(out, fmt.Sprintf("deny %s %s %q: %s", a.Operation, a.Resource, a.Name, r.Reason))
		}
	}
	for _, v := range vs {
		out = append(out, fmt.Sprintf("policy violation on %s %q: %s", v.Resource, v.Name, v.Message))
	}
	return out
}

// input builds the Rego input document for req (see docs/policy.md).
func input(req *Request, host string) (ast.Value, error) {
	acts := make([]*ast.Term, len(req.Actions))
	for i, a := range req.Actions {
		acts[i] = ast.ObjectTerm(
			ast.Item(ast.StringTerm("resource"), ast.StringTerm(string(a.Resource))),
			ast.Item(ast.StringTerm("name"), ast.StringTerm(a.Name)),
			ast.Item(ast.StringTerm("operation"), ast.StringTerm(string(a.Operation))),
		)
	}
	details := ast.NewObject()
	if req.Details != nil {
		v, err := ast.InterfaceToValue(req.Details)
		if err != nil {
			return nil, fmt.Errorf("policy: details: %w", err)
		}
		obj, ok := v.(ast.Object)
		if !ok {
			return nil, errors.New("policy: details is not an object")
		}
		details = obj
	}
	return ast.NewObject(
		ast.Item(ast.StringTerm("principal"), ast.StringTerm(req.Principal)),
		ast.Item(ast.StringTerm("tenant"), ast.StringTerm(req.Tenant)),
		ast.Item(ast.StringTerm("mechanism"), ast.StringTerm(req.Mechanism)),
		ast.Item(ast.StringTerm("client_addr"), ast.StringTerm(req.ClientAddr)),
		ast.Item(ast.StringTerm("client_host"), ast.StringTerm(host)),
		ast.Item(ast.StringTerm("listener"), ast.StringTerm(req.Listener)),
		ast.Item(ast.StringTerm("api_key"), ast.IntNumberTerm(int(req.APIKey))),
		ast.Item(ast.StringTerm("api_name"), ast.StringTerm(req.APIName)),
		ast.Item(ast.StringTerm("api_version"), ast.IntNumberTerm(int(req.APIVersion))),
		ast.Item(ast.StringTerm("client_id"), ast.StringTerm(req.ClientID)),
		ast.Item(ast.StringTerm("virtual_prefix"), ast.StringTerm(req.VirtualPrefix)),
		ast.Item(ast.StringTerm("actions"), ast.ArrayTerm(acts...)),
		ast.Item(ast.StringTerm("details"), ast.NewTerm(details)),
	), nil
}

// eval evaluates the decision query once for req.
func (e *Engine) eval(ctx context.Context, st *state, req *Request, host string) (*Decision, error) {
	in, err := input(req, host)
	if err != nil {
		return nil, err
	}
	rs, err := st.decision.Eval(ctx, rego.EvalParsedInput(in))
	if err != nil {
		return nil, fmt.Errorf("policy: evaluate: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, fmt.Errorf("policy: %s is undefined", DecisionQuery)
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy: %s is not an object", DecisionQuery)
	}
	rawResults, _ := obj["results"].([]any)
	if len(rawResults) != len(req.Actions) {
		return nil, fmt.Errorf("policy: %d results for %d actions", len(rawResults), len(req.Actions))
	}
	d := e.allocDecision(st, len(rawResults))
	for i, r := range rawResults {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("policy: result %d is not an object", i)
		}
		allowed, ok := m["allowed"].(bool)
		if !ok {
			return nil, fmt.Errorf("policy: result %d has no boolean allowed", i)
		}
		reason, _ := m["reason"].(string)
		d.Results[i] = Result{Allowed: allowed, Reason: reason}
	}
	rawViolations, _ := obj["violations"].([]any)
	for i, r := range rawViolations {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("policy: violation %d is not an object", i)
		}
		v := Violation{}
		v.Resource, _ = m["resource"].(string)
		v.Name, _ = m["name"].(string)
		v.Message, _ = m["message"].(string)
		if v.Message == "" {
			v.Message = "policy violation"
		}
		d.Violations = append(d.Violations, v)
	}
	rawReasons, _ := obj["reasons"].([]any)
	for _, r := range rawReasons {
		if s, ok := r.(string); ok {
			d.Reasons = append(d.Reasons, s)
		}
	}
	return d, nil
}

// Tenant maps a principal to its tenant with the policy's mapping
// (data.kguard.tenant.of; the shipped policy reads
// data.config.principal_tenants). "" means no tenant. Answers are cached per
// principal and policy revision.
func (e *Engine) Tenant(ctx context.Context, principal string) (string, error) {
	st := e.state.Load()
	if st.tcache != nil {
		if t, ok := st.tcache.Get(principal); ok {
			return t, nil
		}
	}
	if st.tenant == nil {
		return "", fmt.Errorf("policy: %s is not defined", TenantQuery)
	}
	in := ast.NewObject(ast.Item(ast.StringTerm("principal"), ast.StringTerm(principal)))
	rs, err := st.tenant.Eval(ctx, rego.EvalParsedInput(in))
	if err != nil {
		return "", fmt.Errorf("policy: evaluate tenant of %q: %w", principal, err)
	}
	t := ""
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		var ok bool
		if t, ok = rs[0].Expressions[0].Value.(string); !ok {
			return "", fmt.Errorf("policy: tenant of %q is not a string", principal)
		}
	}
	if st.tcache != nil {
		st.tcache.Add(principal, t)
	}
	return t, nil
}
