package crypto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
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
	eachScan(t, func(t *testing.T) {
		checkScanner(t, nextStrSpecial, byteLoop(&strSpecial),
			[]byte{0x00, 0x01, 0x1f, 0x20, 0x21, '"', 0x23, '\\', 0x5d, 'x', 0x7f, 0x80, 0xa0, 0xa2, 0xdc, 0xff}, 1)
	})
}

// eachScan runs f with each of the string and container scans this
// machine has: the word at a time ones and, with AVX2, the vectorized
// ones (nextStrSpecial, skipContainer).
func eachScan(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	simd := hasAVX2
	t.Cleanup(func() { hasAVX2 = simd })
	hasAVX2 = false
	t.Run("words", f)
	if simd {
		hasAVX2 = true
		t.Run("avx2", f)
	}
}

// TestNextStrSpecialBlockEdges: one stop byte (each kind, and bytes next
// to them that are not) at every place of a run up to 100 bytes long,
// scanned from every offset: across the 32-byte blocks of the vectorized
// scan, its tail, and the first 16 bytes read a word at a time.
func TestNextStrSpecialBlockEdges(t *testing.T) {
	eachScan(t, func(t *testing.T) {
		naive := byteLoop(&strSpecial)
		for _, c := range []byte{0x00, 0x1f, 0x20, '"', 0x23, '\\', 0x5d, 0x7f, 0x9f, 0xa2, 0xdc, 0xff} {
			for n := 0; n <= 100; n++ {
				for p := 0; p < max(n, 1); p++ {
					doc := bytes.Repeat([]byte{'x'}, n)
					if n > 0 {
						doc[p] = c
					}
					for j := 0; j <= n+1; j++ {
						if got, want := nextStrSpecial(doc, j), naive(doc, min(j, n)); got != want {
							t.Fatalf("%q from %d: got %d, want %d", doc, j, got, want)
						}
					}
				}
			}
		}
	})
}

// TestNextStrSpecialLongRuns: long runs with rare stop bytes (the scan's
// windows grow and its 32-byte steps run), at every start offset.
func TestNextStrSpecialLongRuns(t *testing.T) {
	eachScan(t, testNextStrSpecialLongRuns)
}

func testNextStrSpecialLongRuns(t *testing.T) {
	naive := byteLoop(&strSpecial)
	alphabet := []byte{0x00, 0x1f, 0x20, '"', '\\', 0x7f, 0x80, 0xa0, 0xa2, 0xdc, 0xff}
	rng := rand.New(rand.NewPCG(7, 8))
	for n := range 200 {
		doc := make([]byte, rng.IntN(9000))
		rare := 1 + rng.IntN(2000)
		for i := range doc {
			if rng.IntN(rare) == 0 {
				doc[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				doc[i] = byte(' ' + rng.IntN(95))
				if doc[i] == '"' || doc[i] == '\\' {
					doc[i] = 'x'
				}
			}
		}
		for j := 0; j <= len(doc); j += 1 + rng.IntN(13) {
			if got, want := nextStrSpecial(doc, j), naive(doc, j); got != want {
				t.Fatalf("doc %d (%d bytes) from %d: got %d, want %d", n, len(doc), j, got, want)
			}
		}
	}
}

// skipContainerRef is skipContainer byte by byte, strings skipped with
// skipString (checked against its own byte loop above): the reference
// for the one-pass scanner.
func skipContainerRef(doc []byte, i int) (int, error) {
	var stack []byte
	for j := i; j < len(doc); j++ {
		switch c := doc[j]; c {
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
			stack = append(stack, c)
		case '}', ']':
			open := byte('{')
			if c == ']' {
				open = '['
			}
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return 0, fmt.Errorf("%w: unbalanced %q at %d", errJSON, c, j)
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: unterminated container at %d", errJSON, i)
}

// sameSkip compares skipContainer with the reference at every bracket of
// doc: the same end, or the same error.
func sameSkip(t *testing.T, doc []byte) {
	t.Helper()
	for i, c := range doc {
		if c != '{' && c != '[' {
			continue
		}
		e, err := skipContainer(doc, i)
		re, rerr := skipContainerRef(doc, i)
		if e != re || (err == nil) != (rerr == nil) || err != nil && err.Error() != rerr.Error() {
			t.Fatalf("%q at %d: got %d %v, reference %d %v", doc, i, e, err, re, rerr)
		}
	}
}

// TestSkipContainerMatchesReference: random documents dense in the bytes
// that matter (quotes, backslashes, brackets, control characters, bytes
// one bit away from them) and nested strings, escapes across word
// boundaries, unterminated strings and containers.
func TestSkipContainerMatchesReference(t *testing.T) {
	eachScan(t, testSkipContainerMatchesReference)
}

func testSkipContainerMatchesReference(t *testing.T) {
	alphabet := []byte{'"', '\\', '{', '}', '[', ']', 0x00, 0x1f, 0x20, 0x5a, 0x5c, 0x7a, 0x7c, 0x7e, 0xdb, 0xfb, 0xfd, 0x3b, 0xa2, ',', ':'}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		doc := make([]byte, rng.IntN(48))
		for i := range doc {
			if rng.IntN(3) == 0 {
				doc[i] = byte('a' + rng.IntN(26))
			} else {
				doc[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		sameSkip(t, doc)
	}
	for _, d := range []string{`{"a":[1,{"b":"\"]}"}],"c":"x\\"}`, `[[[[[[[[[["\u00"]]]]]]]]]]`, `{"k":"v` + strings.Repeat(`\"`, 9) + `"}`, `{"a":"` + "\x01" + `"}`} {
		sameSkip(t, []byte(d))
	}
}

// randomContainer appends a random JSON container to b, up to depth
// levels deep: members and elements of strings dense in quotes,
// backslashes and brackets (escaped or inside strings), numbers and
// nested containers.
func randomContainer(b []byte, rng *rand.Rand, depth int) []byte {
	obj := rng.IntN(2) == 0
	open, end := byte('['), byte(']')
	if obj {
		open, end = '{', '}'
	}
	b = append(b, open)
	for n := range rng.IntN(6) {
		if n > 0 {
			b = append(b, ',')
		}
		if obj {
			b = append(b, `"k"`...)
			b = append(b, ':')
		}
		switch r := rng.IntN(4); {
		case r == 0 && depth > 0:
			b = randomContainer(b, rng, depth-1)
		case r == 1:
			b = fmt.Appendf(b, "%d", rng.IntN(100000))
		default:
			b = append(b, '"')
			for range rng.IntN(90) {
				switch rng.IntN(12) {
				case 0:
					b = append(b, `\"`...)
				case 1:
					b = append(b, `\\`...)
				case 2:
					b = append(b, "[]{}"[rng.IntN(4)])
				case 3:
					b = append(b, `\u00e9`...)
				default:
					b = append(b, byte('a'+rng.IntN(26)))
				}
			}
			b = append(b, '"')
		}
		if rng.IntN(3) == 0 {
			b = append(b, " \n\t"[rng.IntN(3)])
		}
	}
	return append(b, end)
}

// TestSkipContainerLongDocuments: documents of up to a few KiB (the
// vectorized scan reads 64 bytes at a time) match the reference, as
// produced and with one to three bytes changed to a quote, backslash,
// bracket or control character (escapes across block edges, strings
// left open, brackets unbalanced).
func TestSkipContainerLongDocuments(t *testing.T) {
	eachScan(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		alphabet := []byte{'"', '\\', '{', '}', '[', ']', 0x00, 0x1f, 0x20, 0x5c, 0x7b, 0x7d, 'x'}
		for range 3000 {
			doc := randomContainer(nil, rng, 4)
			sameSkip(t, doc)
			for range 1 + rng.IntN(3) {
				doc[rng.IntN(len(doc))] = alphabet[rng.IntN(len(alphabet))]
			}
			sameSkip(t, doc)
		}
	})
}

// TestSkipContainerBlockEdges: an escaped quote, an escaped backslash
// before a closing quote, a control character in a string, a closing
// bracket, and a string left open, at every offset across the vectorized
// scan's 64-byte blocks.
func TestSkipContainerBlockEdges(t *testing.T) {
	eachScan(t, func(t *testing.T) {
		x := func(n int) string { return strings.Repeat("x", n) }
		for p := range 200 {
			for _, d := range []string{
				`["` + x(p) + `\"` + x(200-p) + `"]`,
				`["` + x(p) + `\\"]` + x(100),
				`["` + x(p) + "\x01" + x(100) + `"]`,
				`[` + strings.Repeat(" ", p) + `]` + x(100),
				`[` + strings.Repeat(" ", p) + `"` + x(200),
				`[` + strings.Repeat(" ", p) + `"` + x(100) + `"` + x(100),
			} {
				sameSkip(t, []byte(d))
			}
		}
	})
}

func FuzzSkipContainer(f *testing.F) {
	f.Add(randomContainer(nil, rand.New(rand.NewPCG(1, 2)), 4))
	f.Add([]byte(`{"a":[1,{"b":"\"]}"}],"c":"x\\"}`))
	f.Add([]byte(`[{"x":null}, 3, "\"" ]`))
	f.Fuzz(func(t *testing.T, doc []byte) { sameSkip(t, doc) })
}

func FuzzNextStrSpecial(f *testing.F) {
	fuzzScanner(f, nextStrSpecial, byteLoop(&strSpecial), `plain string then a quote" and more`, "\xa2\xdc\x1f\x20\\\"")
}
