package compliance

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// maxDiffBytes caps one revision's diff in the report.
const maxDiffBytes = 64 << 10

// PlainDiff is a unified diff (3 lines of context) of every file that was
// added, removed or changed between two policy revisions, by file name.
// It uses go-difflib (the diff behind testify) rather than a diff of our own.
func PlainDiff(old, new map[string][]byte) string {
	names := map[string]bool{}
	for n := range old {
		names[n] = true
	}
	for n := range new {
		names[n] = true
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	var b strings.Builder
	for _, n := range list {
		o, inOld := old[n]
		w, inNew := new[n]
		if inOld && inNew && string(o) == string(w) {
			continue
		}
		from, to := n, n
		if !inOld {
			from = "/dev/null"
		}
		if !inNew {
			to = "/dev/null"
		}
		d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(string(o)), B: difflib.SplitLines(string(w)),
			FromFile: from, ToFile: to, Context: 3,
		})
		if err != nil {
			fmt.Fprintf(&b, "%s: diff failed: %v\n", n, err)
			continue
		}
		b.WriteString(d)
		if !strings.HasSuffix(d, "\n") {
			b.WriteString("\n")
		}
	}
	if b.Len() > maxDiffBytes {
		return b.String()[:maxDiffBytes] + "\n... (diff cut at 64 KiB)\n"
	}
	if b.Len() == 0 {
		return "(no file changed)"
	}
	return b.String()
}
