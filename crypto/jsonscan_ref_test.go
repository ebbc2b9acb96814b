package crypto

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
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

// byteLoop is the one-byte-at-a-time scan the word-at-a-time scanners
// must match: the first index at or after j whose byte is in stop.
func byteLoop(stop *[256]bool) func(doc []byte, j int) int {
	return func(doc []byte, j int) int {
		for j < len(doc) && !stop[doc[j]] {
			j++
		}
		return j
	}
}

// checkScanner compares scan with the byte loop on every start offset of
// 4000 random documents mixing letters with the bytes of alphabet (those
// around the ones scan looks for, where a wrong mask would show).
func checkScanner(t *testing.T, scan, naive func([]byte, int) int, alphabet []byte, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for n := range 4000 {
		doc := make([]byte, rng.IntN(40))
		for i := range doc {
			if rng.IntN(4) == 0 {
				doc[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				doc[i] = byte('a' + rng.IntN(26))
			}
		}
		for j := 0; j <= len(doc); j++ {
			if got, want := scan(doc, j), naive(doc, j); got != want {
				t.Fatalf("doc %d %q from %d: got %d, want %d", n, doc, j, got, want)
			}
		}
	}
}

// fuzzScanner is checkScanner for go test -fuzz.
func fuzzScanner(f *testing.F, scan, naive func([]byte, int) int, seeds ...string) {
	for i, sd := range seeds {
		f.Add([]byte(sd), i)
	}
	f.Fuzz(func(t *testing.T, doc []byte, j int) {
		if j < 0 || j > len(doc) {
			return
		}
		if got, want := scan(doc, j), naive(doc, j); got != want {
			t.Fatalf("%q from %d: got %d, want %d", doc, j, got, want)
		}
	})
}

// TestNextStrSpecialMatchesByteLoop: the string scan (0x1f, 0x20, '"',
// '\\', 0x7f, 0x80, 0xa2, 0xdc, 0xff ... around its stop bytes).
func TestNextStrSpecialMatchesByteLoop(t *testing.T) {
	checkScanner(t, nextStrSpecial, byteLoop(&strSpecial),
		[]byte{0x00, 0x01, 0x1f, 0x20, 0x21, '"', 0x23, '\\', 0x5d, 'x', 0x7f, 0x80, 0xa0, 0xa2, 0xdc, 0xff}, 1)
}

// TestNextStructuralMatchesByteLoop: the container scan ('[' and '{' differ
// in bit 0x20 only: 0x5a, 0x7a, 0xdb, 0xfb ... nearby).
func TestNextStructuralMatchesByteLoop(t *testing.T) {
	checkScanner(t, nextStructural, byteLoop(&structural),
		[]byte{'"', '{', '}', '[', ']', 0x5a, 0x5c, 0x7a, 0x7c, 0x7e, 0xdb, 0xfb, 0xfd, 0x3b, 0x02, 0xa2, 0xff}, 3)
}

func FuzzNextStrSpecial(f *testing.F) {
	fuzzScanner(f, nextStrSpecial, byteLoop(&strSpecial), `plain string then a quote" and more`, "\xa2\xdc\x1f\x20\\\"")
}

func FuzzNextStructural(f *testing.F) {
	fuzzScanner(f, nextStructural, byteLoop(&structural), `{"a":[1,{"b":"x"}]}`, "\xdb\xfb\xfd;[{}]")
}
