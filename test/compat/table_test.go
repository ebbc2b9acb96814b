package compat_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// columns are the operations of the table, in order. "brokers" is the check
// that the metadata brokers a client saw are kguard's addresses only.
var columns = []string{"create", "metadata", "brokers", "produce", "consume", "commit", "offsets"}

// opResult is one cell of the table.
type opResult struct {
	ok     bool
	detail string
	na     string // not applicable, with the reason (the cell is not a failure)
}

// row is one client's results.
type row struct {
	mu      sync.Mutex
	client  string
	version string
	ops     map[string]opResult
	failed  bool // an operation failed; the following ones are not run
}

func newRow(client string) *row { return &row{client: client, ops: map[string]opResult{}} }

func (r *row) set(op string, ok bool, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops[op] = opResult{ok: ok, detail: detail}
	if !ok {
		r.failed = true
	}
}

func (r *row) notApplicable(op, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops[op] = opResult{ok: true, na: why}
}

// do runs one operation unless an earlier one failed.
func (r *row) do(op string, fn func() (string, error)) bool {
	r.mu.Lock()
	failed := r.failed
	r.mu.Unlock()
	if failed {
		return false
	}
	detail, err := fn()
	if err != nil {
		r.set(op, false, err.Error())
		return false
	}
	r.set(op, true, detail)
	return true
}

// cell is the table text of op: pass, FAIL, n/a, or "-" (not run: an earlier
// operation failed, which is a failure of the row too).
func (r *row) cell(op string) (string, bool) {
	res, ok := r.ops[op]
	switch {
	case !ok:
		return "-", false
	case res.na != "":
		return "n/a", true
	case res.ok:
		return "pass", true
	default:
		return "FAIL", false
	}
}

// render prints the table and the details of every cell.
func render(rows []*row) (table string, details string, allPass bool) {
	allPass = true
	w := []int{len("client")}
	for _, c := range columns {
		w = append(w, max(len(c), 4))
	}
	for _, r := range rows {
		w[0] = max(w[0], len(r.client))
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			fmt.Fprintf(&b, "| %-*s ", w[i], c)
		}
		b.WriteString("|\n")
	}
	line(append([]string{"client"}, columns...))
	sep := make([]string, len(w))
	for i := range w {
		sep[i] = strings.Repeat("-", w[i])
	}
	line(sep)
	var d strings.Builder
	for _, r := range rows {
		cells := []string{r.client}
		fmt.Fprintf(&d, "%s (%s):\n", r.client, r.version)
		for _, c := range columns {
			txt, ok := r.cell(c)
			if !ok {
				allPass = false
			}
			cells = append(cells, txt)
			res := r.ops[c]
			det := res.detail
			if res.na != "" {
				det = res.na
			}
			if txt == "-" {
				det = "not run (an earlier operation failed)"
			}
			fmt.Fprintf(&d, "  %-8s %-4s %s\n", c, txt, det)
		}
		line(cells)
	}
	return b.String(), d.String(), allPass
}

// progLine is one JSON line of a test/compat program (docs/testing-kafka.md).
type progLine struct {
	Client  string   `json:"client"`
	Version string   `json:"version"`
	Op      string   `json:"op"`
	OK      bool     `json:"ok"`
	Detail  string   `json:"detail"`
	Brokers []string `json:"brokers"`
}

// parseProgOutput reads a program's stdout into r; checkBrokers judges the
// brokers of the metadata line.
func parseProgOutput(r *row, out []byte, checkBrokers func([]string) (bool, string)) error {
	n := 0
	for _, ln := range strings.Split(string(out), "\n") {
		ln = strings.TrimSpace(ln)
		if !strings.HasPrefix(ln, "{") {
			continue
		}
		var l progLine
		if err := json.Unmarshal([]byte(ln), &l); err != nil {
			return fmt.Errorf("output line %q: %w", ln, err)
		}
		n++
		if l.Version != "" {
			r.version = l.Version
		}
		r.set(l.Op, l.OK, l.Detail)
		if l.Op == "metadata" && l.OK {
			ok, det := checkBrokers(l.Brokers)
			r.set("brokers", ok, det)
		}
	}
	if n == 0 {
		return fmt.Errorf("no result lines on stdout")
	}
	return nil
}

// tally checks consumed numbered records ("RUN:i"): each of this run's
// numbers once, in produce order within its partition.
type tally struct {
	run  string
	want int
	seen map[int]bool
	dups int
	ooo  int
	last map[int32]int
	next map[int32]int64 // partition -> last consumed offset + 1
	per  map[int32]int
}

func newTally(run string, want int) *tally {
	return &tally{run: run, want: want, seen: map[int]bool{}, last: map[int32]int{}, next: map[int32]int64{}, per: map[int32]int{}}
}

func (t *tally) add(p int32, offset int64, value []byte) {
	t.next[p] = max(t.next[p], offset+1)
	run, num, ok := strings.Cut(string(value), ":")
	if !ok || run != t.run {
		return
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return
	}
	if t.seen[n] {
		t.dups++
		return
	}
	t.seen[n] = true
	t.per[p]++
	if l, ok := t.last[p]; ok && l > n {
		t.ooo++
	}
	t.last[p] = n
}

func (t *tally) complete() bool { return len(t.seen) == t.want }

func (t *tally) check() (string, error) {
	ps := make([]int, 0, len(t.per))
	for p := range t.per {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	var per []string
	for _, p := range ps {
		per = append(per, fmt.Sprintf("%d:%d", p, t.per[int32(p)]))
	}
	d := fmt.Sprintf("%d/%d records received, %d duplicates, %d out of order, per partition %s",
		len(t.seen), t.want, t.dups, t.ooo, strings.Join(per, " "))
	if !t.complete() || t.dups > 0 || t.ooo > 0 {
		return "", fmt.Errorf("%s", d)
	}
	return d, nil
}
