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

// skipString returns the index just past the string starting at doc[i]=='"'
// and whether it contains escapes.
func skipString(doc []byte, i int) (int, bool, error) {
	esc := false
	for j := i + 1; j < len(doc); j++ {
		switch c := doc[j]; {
		case c == '"':
			return j + 1, esc, nil
		case c == '\\':
			esc = true
			j++
		case c < 0x20:
			return 0, false, fmt.Errorf("%w: control character in string at %d", errJSON, j)
		}
	}
	return 0, false, fmt.Errorf("%w: unterminated string at %d", errJSON, i)
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
		var stack []byte
		for j := i; j < len(doc); j++ {
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

// findPath returns the span [start,end) of the value at path in doc. found is
// false when a member or index on the path is absent. A member name that
// occurs twice in an object on the path is an error: a reader taking the last
// one would otherwise see the copy left in plaintext.
func findPath(doc []byte, path []pathSeg) (start, end int, found bool, err error) {
	pos := skipWS(doc, 0)
	if pos >= len(doc) {
		return 0, 0, false, fmt.Errorf("%w: empty document", errJSON)
	}
	top := true
	for _, seg := range path {
		var vs, ve, cend int
		var ok bool
		if seg.index < 0 {
			vs, ve, ok, cend, err = findMember(doc, pos, seg.name)
		} else {
			vs, ve, ok, cend, err = findIndex(doc, pos, seg.index)
		}
		if err != nil {
			return 0, 0, false, err
		}
		if top {
			// the top-level value must be followed by nothing but spaces
			if skipWS(doc, cend) != len(doc) {
				return 0, 0, false, fmt.Errorf("%w: data after the top-level value", errJSON)
			}
			top = false
		}
		if !ok {
			return 0, 0, false, nil
		}
		pos, end = vs, ve
	}
	if top { // empty path: the whole document
		e, err := skipValue(doc, pos)
		if err != nil {
			return 0, 0, false, err
		}
		if skipWS(doc, e) != len(doc) {
			return 0, 0, false, fmt.Errorf("%w: data after the top-level value", errJSON)
		}
		return pos, e, true, nil
	}
	return pos, end, true, nil
}

func findMember(doc []byte, pos int, name string) (vs, ve int, found bool, cend int, err error) {
	if doc[pos] != '{' {
		return 0, 0, false, 0, errNotContainer
	}
	i := skipWS(doc, pos+1)
	if i < len(doc) && doc[i] == '}' {
		return 0, 0, false, i + 1, nil
	}
	for {
		if i >= len(doc) || doc[i] != '"' {
			return 0, 0, false, 0, fmt.Errorf("%w: member name expected at %d", errJSON, i)
		}
		ks := i
		ke, esc, err := skipString(doc, i)
		if err != nil {
			return 0, 0, false, 0, err
		}
		match := false
		if esc {
			var k string
			if err := json.Unmarshal(doc[ks:ke], &k); err != nil {
				return 0, 0, false, 0, fmt.Errorf("%w: bad member name at %d", errJSON, ks)
			}
			match = k == name
		} else {
			match = string(doc[ks+1:ke-1]) == name
		}
		i = skipWS(doc, ke)
		if i >= len(doc) || doc[i] != ':' {
			return 0, 0, false, 0, fmt.Errorf("%w: ':' expected at %d", errJSON, i)
		}
		i = skipWS(doc, i+1)
		s := i
		e, err := skipValue(doc, i)
		if err != nil {
			return 0, 0, false, 0, err
		}
		if match {
			if found {
				return 0, 0, false, 0, fmt.Errorf("member %q occurs twice", name)
			}
			vs, ve, found = s, e, true
		}
		i = skipWS(doc, e)
		if i >= len(doc) {
			return 0, 0, false, 0, fmt.Errorf("%w: unterminated object", errJSON)
		}
		if doc[i] == '}' {
			return vs, ve, found, i + 1, nil
		}
		if doc[i] != ',' {
			return 0, 0, false, 0, fmt.Errorf("%w: ',' or '}' expected at %d", errJSON, i)
		}
		i = skipWS(doc, i+1)
	}
}

func findIndex(doc []byte, pos int, idx int) (vs, ve int, found bool, cend int, err error) {
	if doc[pos] != '[' {
		return 0, 0, false, 0, errNotContainer
	}
	i := skipWS(doc, pos+1)
	if i < len(doc) && doc[i] == ']' {
		return 0, 0, false, i + 1, nil
	}
	for n := 0; ; n++ {
		s := i
		e, err := skipValue(doc, i)
		if err != nil {
			return 0, 0, false, 0, err
		}
		if n == idx {
			vs, ve, found = s, e, true
		}
		i = skipWS(doc, e)
		if i >= len(doc) {
			return 0, 0, false, 0, fmt.Errorf("%w: unterminated array", errJSON)
		}
		if doc[i] == ']' {
			return vs, ve, found, i + 1, nil
		}
		if doc[i] != ',' {
			return 0, 0, false, 0, fmt.Errorf("%w: ',' or ']' expected at %d", errJSON, i)
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
