package crypto

import (
	"encoding/json"
	"fmt"
)

// refFindPath is the reference (one path at a time) implementation of
// findPaths, kept for differential fuzzing. It returns the span [start,end) of the value at path in doc. found is
// false when a member or index on the path is absent. A member name that
// occurs twice in an object on the path is an error: a reader taking the last
// one would otherwise see the copy left in plaintext.
func refFindPath(doc []byte, path []pathSeg) (start, end int, found bool, err error) {
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
