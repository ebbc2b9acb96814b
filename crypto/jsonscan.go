package crypto

import (
	"encoding/json"
	"errors"
	"fmt"
)

// This file finds the byte span of a value inside a JSON document without
// unmarshalling it, so that a field can be replaced in place and the rest of
// the document keeps its exact bytes (order, spacing, number spelling).

var errJSON = errors.New("malformed JSON")

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(doc []byte, i int) int {
	for i < len(doc) && isWS(doc[i]) {
		i++
	}
	return i
}

// strSpecial marks the bytes that end a run of plain string bytes.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// structural marks the bytes skipValue must look at inside a container.
var structural = func() (t [256]bool) {
	for _, c := range `"{}[]` {
		t[c] = true
	}
	return t
}()

// skipString returns the index just past the string starting at doc[i]=='"'
// and whether it contains escapes.
func skipString(doc []byte, i int) (int, bool, error) {
	esc := false
	j := i + 1
	for {
		for j < len(doc) && !strSpecial[doc[j]] {
			j++
		}
		if j >= len(doc) {
			return 0, false, fmt.Errorf("%w: unterminated string at %d", errJSON, i)
		}
		switch c := doc[j]; {
		case c == '"':
			return j + 1, esc, nil
		case c == '\\':
			esc = true
			j += 2
		default:
			return 0, false, fmt.Errorf("%w: control character in string at %d", errJSON, j)
		}
	}
}

// skipValue returns the index just past the JSON value starting at doc[i]
// (i at a non-space byte). Containers are checked for bracket balance only.
func skipValue(doc []byte, i int) (int, error) {
	if i >= len(doc) {
		return 0, fmt.Errorf("%w: value expected at %d", errJSON, i)
	}
	switch c := doc[i]; c {
	case '"':
		end, _, err := skipString(doc, i)
		return end, err
	case '{', '[':
		var small [64]byte // no allocation below 64 levels
		stack := small[:0]
		for j := i; j < len(doc); j++ {
			for j < len(doc) && !structural[doc[j]] {
				j++
			}
			if j >= len(doc) {
				break
			}
			switch doc[j] {
			case '"':
				end, _, err := skipString(doc, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				if len(stack) >= 512 {
					return 0, fmt.Errorf("%w: nested too deep", errJSON)
				}
				stack = append(stack, doc[j])
			case '}', ']':
				open := byte('{')
				if doc[j] == ']' {
					open = '['
				}
				if len(stack) == 0 || stack[len(stack)-1] != open {
					return 0, fmt.Errorf("%w: unbalanced %q at %d", errJSON, doc[j], j)
				}
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unterminated container at %d", errJSON, i)
	default:
		j := i
		for j < len(doc) {
			c := doc[j]
			if c == ',' || c == '}' || c == ']' || isWS(c) {
				break
			}
			if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' || c >= 'a' && c <= 'z') {
				return 0, fmt.Errorf("%w: unexpected %q at %d", errJSON, c, j)
			}
			j++
		}
		if j == i {
			return 0, fmt.Errorf("%w: value expected at %d", errJSON, i)
		}
		lit := doc[i:j]
		if lit[0] >= 'a' && lit[0] <= 'z' && string(lit) != "true" && string(lit) != "false" && string(lit) != "null" {
			return 0, fmt.Errorf("%w: bad literal at %d", errJSON, i)
		}
		return j, nil
	}
}

// errNotContainer: the path goes through a value that is not an object or
// array of the right kind.
var errNotContainer = errors.New("path goes through a value of the wrong type")

// findPath returns the span [start,end) of the value at path (not empty)
// in doc; found is false when a member or index on the path is absent.
func findPath(doc []byte, path []pathSeg) (start, end int, found bool, err error) {
	var sp [1]span
	if err := findPaths(doc, [][]pathSeg{path}, sp[:]); err != nil {
		return 0, 0, false, err
	}
	if sp[0].start < 0 {
		return 0, 0, false, nil
	}
	return sp[0].start, sp[0].end, true, nil
}

// span is the location of one value; start < 0 when absent.
type span struct{ start, end int }

// walker finds several paths in one walk of a document.
type walker struct {
	doc   []byte
	paths [][]pathSeg
	spans []span
	seen  []int // deepest depth at which each path matched a member
}

// findPaths locates every path in one walk of doc (paths must not be
// empty): spans[i] answers paths[i] (start -1: absent). The rules of
// findPath apply: malformed JSON, a path through a value of the wrong type,
// or a member name repeated on a path is an error.
func findPaths(doc []byte, paths [][]pathSeg, spans []span) error {
	var seenSmall, activeSmall [8]int // no allocation for up to 8 paths
	seen, active := seenSmall[:0], activeSmall[:0]
	if len(paths) > len(seenSmall) {
		seen, active = make([]int, 0, len(paths)), make([]int, 0, len(paths))
	}
	w := walker{doc: doc, paths: paths, spans: spans, seen: seen[:len(paths)]}
	for i := range spans {
		spans[i] = span{-1, -1}
		w.seen[i] = -1
	}
	pos := skipWS(doc, 0)
	if pos >= len(doc) {
		return fmt.Errorf("%w: empty document", errJSON)
	}
	for i, p := range paths {
		if len(p) == 0 {
			return errors.New("empty path")
		}
		active = append(active, i)
	}
	end, err := w.walk(pos, 0, active)
	if err != nil {
		return err
	}
	if skipWS(doc, end) != len(doc) {
		return fmt.Errorf("%w: data after the top-level value", errJSON)
	}
	return nil
}

// walk visits the container at pos for the paths in active (all of which
// continue below it with segment depth) and returns its end.
func (w *walker) walk(pos, depth int, active []int) (int, error) {
	doc := w.doc
	wantObj := w.paths[active[0]][depth].index < 0
	for _, pi := range active[1:] {
		if (w.paths[pi][depth].index < 0) != wantObj {
			return 0, errNotContainer
		}
	}
	open, closer := byte('{'), byte('}')
	if !wantObj {
		open, closer = '[', ']'
	}
	if pos >= len(doc) || doc[pos] != open {
		if _, err := skipValue(doc, pos); err != nil {
			return 0, err
		}
		return 0, errNotContainer
	}
	i := skipWS(doc, pos+1)
	if i < len(doc) && doc[i] == closer {
		return i + 1, nil
	}
	// active is only read here and below, so a child gets a slice of
	// this frame's deeper (no copy).
	var subSmall, deeperSmall [8]int
	sub, deeper := subSmall[:0], deeperSmall[:0]
	for n := 0; ; n++ {
		sub = sub[:0]
		if wantObj {
			if i >= len(doc) || doc[i] != '"' {
				return 0, fmt.Errorf("%w: member name expected at %d", errJSON, i)
			}
			ks := i
			ke, esc, err := skipString(doc, i)
			if err != nil {
				return 0, err
			}
			name := doc[ks+1 : ke-1]
			if esc {
				var k string
				if err := json.Unmarshal(doc[ks:ke], &k); err != nil {
					return 0, fmt.Errorf("%w: bad member name at %d", errJSON, ks)
				}
				name = []byte(k)
			}
			for _, pi := range active {
				if w.paths[pi][depth].name == string(name) {
					sub = append(sub, pi)
				}
			}
			i = skipWS(doc, ke)
			if i >= len(doc) || doc[i] != ':' {
				return 0, fmt.Errorf("%w: ':' expected at %d", errJSON, i)
			}
			i = skipWS(doc, i+1)
		} else {
			for _, pi := range active {
				if w.paths[pi][depth].index == n {
					sub = append(sub, pi)
				}
			}
		}
		vs := i
		var ve int
		var err error
		if len(sub) == 0 {
			ve, err = skipValue(doc, vs)
		} else {
			deeper = deeper[:0]
			for _, pi := range sub {
				if w.seen[pi] >= depth {
					return 0, fmt.Errorf("member %q occurs twice", w.paths[pi][depth].name)
				}
				w.seen[pi] = depth
				if len(w.paths[pi]) > depth+1 {
					deeper = append(deeper, pi)
				}
			}
			if len(deeper) > 0 {
				ve, err = w.walk(vs, depth+1, deeper)
			} else {
				ve, err = skipValue(doc, vs)
			}
			if err == nil {
				for _, pi := range sub {
					if len(w.paths[pi]) == depth+1 {
						w.spans[pi] = span{vs, ve}
					}
				}
			}
		}
		if err != nil {
			return 0, err
		}
		i = skipWS(doc, ve)
		if i >= len(doc) {
			return 0, fmt.Errorf("%w: unterminated container", errJSON)
		}
		if doc[i] == closer {
			return i + 1, nil
		}
		if doc[i] != ',' {
			return 0, fmt.Errorf("%w: ',' or %q expected at %d", errJSON, closer, i)
		}
		i = skipWS(doc, i+1)
	}
}

// splice is one replacement of doc[start:end].
type splice struct {
	start, end int
	with       []byte
}

// applySplices returns doc with the non-overlapping replacements applied
// (sorted by start).
func applySplices(doc []byte, sp []splice) []byte {
	n := len(doc)
	for _, s := range sp {
		n += len(s.with) - (s.end - s.start)
	}
	out := make([]byte, 0, n)
	prev := 0
	for _, s := range sp {
		out = append(out, doc[prev:s.start]...)
		out = append(out, s.with...)
		prev = s.end
	}
	return append(out, doc[prev:]...)
}
