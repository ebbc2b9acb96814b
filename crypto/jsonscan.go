package crypto

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
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
		j = nextStrSpecial(doc, j)
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

const (
	swarLSB = 0x0101010101010101
	swarMSB = 0x8080808080808080
)

// nextStrSpecial returns the index of the first byte at or after j that
// ends a run of plain string bytes ('"', '\\' or a control character), or
// len(doc). With AVX2 it compares 32 bytes per step (strSpecialBlocks, the
// only assembly in kguard: the standard library vectorizes the search for
// one byte, bytes.IndexByte, but not for a class of bytes, and no
// maintained module offers that). Otherwise the first 16 bytes are tested
// a word at a time (most runs are short: member names, codes), then a
// window at a time: the first backslash, then the first quote before it,
// with bytes.IndexByte, and control characters only before those
// (firstControl). The window starts small and doubles while nothing is
// found, so a short string costs a short search, and a string dense with
// escapes (one call per escape) never searches far past the next one:
// linear either way, as the vectorized scan is (it stops at the first).
func nextStrSpecial(doc []byte, j int) int {
	if hasAVX2 && j < len(doc) {
		// 32 bytes per step, stopping at the first special byte
		// (strscan_amd64.s); the last < 32 bytes of the document a word,
		// then a byte, at a time.
		rest := doc[j:]
		whole := len(rest) &^ 31
		if k := strSpecialBlocks(rest); k < whole {
			return j + k
		}
		k, _ := swarStrSpecial(doc, j+whole, len(doc))
		return k
	}
	// most runs are short (member names, codes, numbers as strings): the
	// first 16 bytes a word at a time
	if k, ok := swarStrSpecial(doc, j, j+16); ok {
		return k
	}
	j = min(j+16, len(doc))
	win := 32
	for j < len(doc) {
		w := doc[j:min(j+win, len(doc))]
		end := len(w)
		if k := bytes.IndexByte(w, '\\'); k >= 0 {
			end = k
		}
		if k := bytes.IndexByte(w[:end], '"'); k >= 0 {
			end = k
		}
		if k := firstControl(w[:end]); k < end || end < len(w) {
			return j + k
		}
		j += len(w)
		win = min(2*win, 4096)
	}
	return len(doc)
}

// swarStrSpecial looks for nextStrSpecial's bytes in doc[j:stop] (stop
// capped at len(doc)) eight bytes at a time, testing for all three at once
// (the usual bit trick marks a byte's high bit when it equals a value, x^v
// has a zero byte, or is below 0x20; a mark can only be spurious above a
// true one, and the lowest is checked against the table anyway), the last
// < 8 bytes one at a time. It returns the index found and true, or
// (stop, false).
func swarStrSpecial(doc []byte, j, stop int) (int, bool) {
	stop = min(stop, len(doc))
	for j+8 <= stop {
		w := binary.LittleEndian.Uint64((*[8]byte)(doc[j : j+8])[:])
		q := w ^ (swarLSB * '"')
		b := w ^ (swarLSB * '\\')
		m := ((q - swarLSB) &^ q) | ((b - swarLSB) &^ b) | ((w - swarLSB*0x20) &^ w)
		if m &= swarMSB; m == 0 {
			j += 8
			continue
		}
		k := j + bits.TrailingZeros64(m)/8
		if strSpecial[doc[k]] {
			return k, true
		}
		j = k + 1
	}
	for ; j < stop; j++ {
		if strSpecial[doc[j]] {
			return j, true
		}
	}
	return stop, false
}

// firstControl returns the index of the first byte below 0x20 in b, or
// len(b). It tests eight bytes at a time (32 per step while none is
// found): x - 0x20 borrows in a byte below 0x20, and &^x keeps the high
// bit only for bytes below 0x80; the lowest mark is exact (a borrow only
// reaches bytes above a true one).
func firstControl(b []byte) int {
	const ctl = swarLSB * 0x20
	i := 0
	for ; i+32 <= len(b); i += 32 {
		p := (*[32]byte)(b[i : i+32])
		w0 := binary.LittleEndian.Uint64(p[0:8])
		w1 := binary.LittleEndian.Uint64(p[8:16])
		w2 := binary.LittleEndian.Uint64(p[16:24])
		w3 := binary.LittleEndian.Uint64(p[24:32])
		if ((w0-ctl)&^w0|(w1-ctl)&^w1|(w2-ctl)&^w2|(w3-ctl)&^w3)&swarMSB != 0 {
			break
		}
	}
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64((*[8]byte)(b[i : i+8])[:])
		if m := (w - ctl) &^ w & swarMSB; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return i
		}
	}
	return len(b)
}

// scanStop marks the bytes skipContainer must look at: quotes, backslashes,
// brackets and control characters.
var scanStop = func() (t [256]bool) {
	for c := range 256 {
		t[c] = strSpecial[c] || structural[c]
	}
	return t
}()

// skipContainer returns the index just past the object or array starting at
// doc[i], checking bracket balance and its strings (terminated, no raw
// control characters) in one pass, eight bytes at a time: each word yields
// the positions of every byte that may matter (a superset: the bit trick of
// nextStrSpecial, with '[' and '{', ']' and '}' told apart from the rest by
// bit 0x20), and a small state machine
// (in a string or not, the byte after a backslash) walks them in order.
// Member names, numbers and literals of skipped containers are not checked.
func skipContainer(doc []byte, i int) (int, error) {
	var small [64]byte // no allocation below 64 levels
	stack := small[:0]
	inStr, strStart, escaped := false, 0, -1
	wordsUntil := 0 // below it, the word at a time scan runs
	for j := i; j < len(doc); {
		if hasAVX2 && j >= wordsUntil && j+64 <= len(doc) && escaped != j {
			// 64 bytes at a time (classify64) where they hold no
			// backslash: which bytes are inside strings follows from
			// the quotes alone (a running XOR of their mask), so only
			// brackets outside strings and control characters inside
			// them are visited, in order. A block with a backslash is
			// scanned a word at a time (escapes are rare).
			var cm [5]uint64
			classify64(&doc[j], &cm)
			if cm[1] == 0 {
				str := prefixXOR(cm[0]) // set from an opening quote up to its closing one
				if inStr {
					str = ^str
				}
				ctl := cm[4] & str
				for x := (cm[2]|cm[3])&^str | ctl; x != 0; x &= x - 1 {
					p := bits.TrailingZeros64(x)
					k := j + p
					if ctl&(1<<p) != 0 {
						return 0, fmt.Errorf("%w: control character in string at %d", errJSON, k)
					}
					var closed bool
					var err error
					if stack, closed, err = bracket(stack, doc[k], k); err != nil || closed {
						return closedAt(k, err)
					}
				}
				if inStr = str>>63 != 0; inStr && cm[0] != 0 {
					strStart = j + 63 - bits.LeadingZeros64(cm[0])
				}
				j += 64
				continue
			}
			wordsUntil = j + 64
		}
		var m uint64
		n := 8
		if j+8 <= len(doc) {
			w := binary.LittleEndian.Uint64(doc[j:])
			q := w ^ (swarLSB * '"')
			b := w ^ (swarLSB * '\\')
			v := w | (swarLSB * 0x20) // '[' -> '{', ']' -> '}'
			o := v ^ (swarLSB * '{')
			c := v ^ (swarLSB * '}')
			m = ((q - swarLSB) &^ q) | ((b - swarLSB) &^ b) | ((o - swarLSB) &^ o) | ((c - swarLSB) &^ c) | ((w - swarLSB*0x20) &^ w)
			m &= swarMSB
		} else {
			n = len(doc) - j
			for k := range n {
				if scanStop[doc[j+k]] {
					m |= 0x80 << (8 * k)
				}
			}
		}
		for ; m != 0; m &= m - 1 {
			k := j + bits.TrailingZeros64(m)/8
			if k == escaped {
				continue
			}
			c := doc[k]
			if inStr {
				switch {
				case c == '"':
					inStr = false
				case c == '\\':
					escaped = k + 1
				case c < 0x20:
					return 0, fmt.Errorf("%w: control character in string at %d", errJSON, k)
				}
				continue
			}
			switch c {
			case '"':
				inStr, strStart = true, k
			case '{', '[', '}', ']':
				var closed bool
				var err error
				if stack, closed, err = bracket(stack, c, k); err != nil || closed {
					return closedAt(k, err)
				}
			}
		}
		j += n
	}
	if inStr {
		return 0, fmt.Errorf("%w: unterminated string at %d", errJSON, strStart)
	}
	return 0, fmt.Errorf("%w: unterminated container at %d", errJSON, i)
}

// bracket applies the bracket c at k to the stack of open ones: an
// opening one is pushed (at most 512 deep), a closing one pops its match.
// closed reports that it closed the outermost.
func bracket(stack []byte, c byte, k int) (_ []byte, closed bool, _ error) {
	if c == '{' || c == '[' {
		if len(stack) >= 512 {
			return nil, false, fmt.Errorf("%w: nested too deep", errJSON)
		}
		return append(stack, c), false, nil
	}
	open := byte('{')
	if c == ']' {
		open = '['
	}
	if len(stack) == 0 || stack[len(stack)-1] != open {
		return nil, false, fmt.Errorf("%w: unbalanced %q at %d", errJSON, c, k)
	}
	return stack[:len(stack)-1], len(stack) == 1, nil
}

// closedAt is skipContainer's result when bracket closed the container at
// k or failed.
func closedAt(k int, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	return k + 1, nil
}

// prefixXOR returns m with each bit set to the XOR of itself and every
// bit below it: for a mask of quotes, the bytes from each opening quote
// up to (not including) its closing one.
func prefixXOR(m uint64) uint64 {
	m ^= m << 1
	m ^= m << 2
	m ^= m << 4
	m ^= m << 8
	m ^= m << 16
	m ^= m << 32
	return m
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
		return skipContainer(doc, i)
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

// span is the location of one value; start < 0 when absent. seen is the
// walk's bookkeeping: the deepest depth at which the path matched a member
// (kept here so that a walk needs no memory of its own).
type span struct{ start, end, seen int }

// walker finds several paths in one walk of a document.
type walker struct {
	doc   []byte
	paths [][]pathSeg
	spans []span
}

// findPaths locates every path in one walk of doc (paths must not be
// empty): spans[i] answers paths[i] (start -1: absent). The rules of
// findPath apply: malformed JSON, a path through a value of the wrong type,
// or a member name repeated on a path is an error.
func findPaths(doc []byte, paths [][]pathSeg, spans []span) error {
	var activeSmall [8]int // no allocation for up to 8 paths
	active := activeSmall[:0]
	if len(paths) > len(activeSmall) {
		active = make([]int, 0, len(paths))
	}
	w := walker{doc: doc, paths: paths, spans: spans}
	for i := range spans {
		spans[i] = span{-1, -1, -1}
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
				if w.spans[pi].seen >= depth {
					return 0, fmt.Errorf("member %q occurs twice", w.paths[pi][depth].name)
				}
				w.spans[pi].seen = depth
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
						w.spans[pi].start, w.spans[pi].end = vs, ve
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
