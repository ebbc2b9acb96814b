package policy

import (
	"sort"
	"strings"
)

// Severity ranks a safeguard violation by what it risks, most severe
// first: 0 durability (replication factor, min.insync.replicas, acks), 1
// retention and cleanup (data kept or lost), 2 capacity (partitions), 3
// naming, 4 anything else. It reads the messages the shipped safeguards
// (policies/safeguards.rego) write; a policy of one's own ranks 4 unless its
// messages name those settings.
func (v Violation) Severity() int {
	m := v.Message
	switch {
	case strings.Contains(m, "replication factor"), strings.Contains(m, "min.insync.replicas"), strings.Contains(m, "acks"):
		return 0
	case strings.Contains(m, "retention"), strings.Contains(m, "cleanup.policy"), strings.Contains(m, "may not be deleted"),
		strings.Contains(m, "SUBTRACT"), strings.Contains(m, "reset it to the broker default"):
		return 1
	case strings.Contains(m, "partitions"):
		return 2
	case strings.Contains(m, "naming convention"):
		return 3
	}
	return 4
}

// Joined returns every violation of d for (resource, name) as one, most
// severe first, messages joined with "; " so that a client sees all it must
// fix at once; ok is false when there is none.
func (d *Decision) Joined(resource, name string) (Violation, bool) {
	var vs []Violation
	for _, v := range d.Violations {
		if v.Resource == resource && v.Name == name {
			vs = append(vs, v)
		}
	}
	return joinViolations(vs)
}

// JoinedAll returns every violation of d as one, most severe first.
func (d *Decision) JoinedAll() (Violation, bool) {
	return joinViolations(append([]Violation(nil), d.Violations...))
}

func joinViolations(vs []Violation) (Violation, bool) {
	if len(vs) == 0 {
		return Violation{}, false
	}
	sort.SliceStable(vs, func(i, j int) bool {
		si, sj := vs[i].Severity(), vs[j].Severity()
		if si != sj {
			return si < sj
		}
		return vs[i].Message < vs[j].Message
	})
	out := vs[0]
	msgs := make([]string, 0, len(vs))
	seen := map[string]bool{}
	for _, v := range vs {
		if !seen[v.Message] {
			seen[v.Message] = true
			msgs = append(msgs, v.Message)
		}
	}
	out.Message = strings.Join(msgs, "; ")
	return out, true
}
