package crypto

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Field says how to protect one part of a record.
type Field struct {
	// Target names the part:
	//   "$"                whole value (bytes)
	//   "$.card.number"    a JSON path into a JSON value; also $.a[0].b and
	//                      $["odd key"]
	//   "@key"             the record key (bytes)
	//   "@header:NAME"     every header named NAME (bytes)
	Target string
	// Algorithm: AES256GCM (default when zero) or AES256SIV.
	Algorithm Algorithm
	// KEK is the key-encryption key name in the KMS (already expanded from
	// the policy's template by the caller). Ignored for PerSubject fields.
	KEK string
	// PerSubject encrypts with the data subject's own key (see
	// Rule.SubjectPath), so Shred(subject) erases the field.
	PerSubject bool
}

// Rule is the data-protection rule for one topic, as the policy decides it.
type Rule struct {
	Fields []Field
	// SubjectPath is the JSON path of the data subject's id in the value
	// (e.g. "$.account_id"); required when a field is PerSubject. The id is
	// read before any field is encrypted.
	SubjectPath string
	// Sign adds a kguard.sig header (after encryption).
	Sign bool
}

// FieldKind is the kind of record part a field targets.
type FieldKind uint8

// Field kinds (also their codes in the kguard.enc header).
const (
	KindValue  FieldKind = 1 // whole value, raw bytes
	KindKey    FieldKind = 2 // record key, raw bytes
	KindHeader FieldKind = 3 // header value(s), raw bytes
	KindJSON   FieldKind = 4 // JSON path in the value; ciphertext as base64 JSON string
)

type pathSeg struct {
	name  string
	index int // >= 0 for an array index; -1 for a member name
}

type compiledField struct {
	kind       FieldKind
	locator    string // canonical target, bound into the AAD
	header     string // header name for KindHeader
	path       []pathSeg
	alg        Algorithm
	kek        string
	perSubject bool
}

// Protection is a compiled Rule: parse once per policy revision, use for
// every batch. It is immutable and safe for concurrent use.
type Protection struct {
	jsonPaths   [][]pathSeg // JSON field paths in field order, then the subject path
	fields      []compiledField
	subjectPath []pathSeg
	sign        bool
	hasSubject  bool
}

// Compile checks a rule and compiles it.
func Compile(r Rule) (*Protection, error) {
	p := &Protection{sign: r.Sign}
	seen := map[string]bool{}
	for _, f := range r.Fields {
		cf, err := compileTarget(f.Target)
		if err != nil {
			return nil, err
		}
		if seen[cf.locator] {
			return nil, fmt.Errorf("crypto: field %q listed twice", cf.locator)
		}
		seen[cf.locator] = true
		cf.alg = f.Algorithm
		if cf.alg == 0 {
			cf.alg = AES256GCM
		}
		if cf.alg != AES256GCM && cf.alg != AES256SIV {
			return nil, fmt.Errorf("crypto: field %q: unknown algorithm %d", cf.locator, f.Algorithm)
		}
		cf.perSubject = f.PerSubject
		cf.kek = f.KEK
		if !cf.perSubject && cf.kek == "" {
			return nil, fmt.Errorf("crypto: field %q: no key-encryption key", cf.locator)
		}
		if cf.perSubject {
			p.hasSubject = true
		}
		p.fields = append(p.fields, cf)
	}
	// "$" and a path into the value exclude each other.
	if seen["$"] {
		for _, f := range p.fields {
			if f.kind == KindJSON {
				return nil, fmt.Errorf("crypto: %q and the whole value \"$\" cannot both be encrypted", f.locator)
			}
		}
	}
	for i, a := range p.fields {
		for _, b := range p.fields[i+1:] {
			if a.kind == KindJSON && b.kind == KindJSON && (isPrefix(a.path, b.path) || isPrefix(b.path, a.path)) {
				return nil, fmt.Errorf("crypto: fields %q and %q overlap", a.locator, b.locator)
			}
		}
	}
	if r.SubjectPath != "" {
		segs, err := parseJSONPath(r.SubjectPath)
		if err != nil {
			return nil, fmt.Errorf("crypto: subject path: %w", err)
		}
		if len(segs) == 0 {
			return nil, fmt.Errorf("crypto: subject path must name a field, not \"$\"")
		}
		p.subjectPath = segs
	}
	// All JSON paths are found in one walk of the value: paths that share a
	// prefix must agree on what comes next (a member name or an index).
	var all [][]pathSeg
	for _, f := range p.fields {
		if f.kind == KindJSON {
			all = append(all, f.path)
		}
	}
	if p.subjectPath != nil {
		all = append(all, p.subjectPath)
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			for d := 0; d < len(a) && d < len(b); d++ {
				if (a[d].index < 0) != (b[d].index < 0) {
					return nil, fmt.Errorf("crypto: paths %s and %s disagree on the type of %s", canonicalPath(a), canonicalPath(b), canonicalPath(a[:d]))
				}
				if a[d] != b[d] {
					break
				}
			}
		}
	}
	p.jsonPaths = all
	if p.hasSubject && p.subjectPath == nil {
		return nil, fmt.Errorf("crypto: per-subject fields need a subject path")
	}
	if p.hasSubject && seen["$"] {
		return nil, fmt.Errorf("crypto: a subject path cannot be read when the whole value is encrypted per subject")
	}
	return p, nil
}

// Empty reports whether the protection does nothing (no field, no signature).
func (p *Protection) Empty() bool { return p == nil || (len(p.fields) == 0 && !p.sign) }

func isPrefix(a, b []pathSeg) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func compileTarget(t string) (compiledField, error) {
	switch {
	case t == "$":
		return compiledField{kind: KindValue, locator: "$"}, nil
	case t == "@key":
		return compiledField{kind: KindKey, locator: "@key"}, nil
	case strings.HasPrefix(t, "@header:"):
		name := strings.TrimPrefix(t, "@header:")
		if name == "" {
			return compiledField{}, fmt.Errorf("crypto: empty header name in %q", t)
		}
		if strings.HasPrefix(name, "kguard.") {
			return compiledField{}, fmt.Errorf("crypto: header %q is reserved", name)
		}
		return compiledField{kind: KindHeader, locator: t, header: name}, nil
	case strings.HasPrefix(t, "$"):
		segs, err := parseJSONPath(t)
		if err != nil {
			return compiledField{}, err
		}
		return compiledField{kind: KindJSON, locator: canonicalPath(segs), path: segs}, nil
	}
	return compiledField{}, fmt.Errorf("crypto: unknown field target %q (want $, $.path, @key or @header:NAME)", t)
}

// parseJSONPath parses $, $.a.b, $.a[0], $["a b"], $['a b'].
func parseJSONPath(s string) ([]pathSeg, error) {
	if !strings.HasPrefix(s, "$") {
		return nil, fmt.Errorf("crypto: JSON path %q must start with $", s)
	}
	var segs []pathSeg
	i := 1
	for i < len(s) {
		switch s[i] {
		case '.':
			j := i + 1
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				if s[j] == ']' {
					return nil, fmt.Errorf("crypto: JSON path %q: unexpected ] at %d", s, j)
				}
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("crypto: JSON path %q: empty name at %d", s, i)
			}
			segs = append(segs, pathSeg{name: s[i+1 : j], index: -1})
			i = j
		case '[':
			if i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\'') {
				// quoted name; may contain ']' so find the matching quote
				q := s[i+1]
				k := i + 2
				for k < len(s) && s[k] != q {
					if s[k] == '\\' {
						k++
					}
					k++
				}
				if k+1 >= len(s) || s[k+1] != ']' {
					return nil, fmt.Errorf("crypto: JSON path %q: bad quoted name", s)
				}
				raw := s[i+1 : k+1]
				if q == '\'' {
					raw = `"` + strings.ReplaceAll(strings.ReplaceAll(raw[1:len(raw)-1], `"`, `\"`), `\'`, `'`) + `"`
				}
				var name string
				if err := json.Unmarshal([]byte(raw), &name); err != nil {
					return nil, fmt.Errorf("crypto: JSON path %q: bad quoted name: %v", s, err)
				}
				segs = append(segs, pathSeg{name: name, index: -1})
				i = k + 2
				continue
			}
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("crypto: JSON path %q: unclosed [", s)
			}
			inner := s[i+1 : i+end]
			n, err := strconv.Atoi(inner)
			if err != nil || n < 0 || n > 1<<20 || inner != strconv.Itoa(n) {
				return nil, fmt.Errorf("crypto: JSON path %q: bad index %q", s, inner)
			}
			segs = append(segs, pathSeg{index: n})
			i += end + 1
		default:
			return nil, fmt.Errorf("crypto: JSON path %q: unexpected %q at %d", s, s[i], i)
		}
	}
	if len(segs) > 32 {
		return nil, fmt.Errorf("crypto: JSON path %q too deep", s)
	}
	for _, sg := range segs {
		if sg.index < 0 && !utf8.ValidString(sg.name) {
			return nil, fmt.Errorf("crypto: JSON path %q: name is not UTF-8", s)
		}
	}
	return segs, nil
}

func canonicalPath(segs []pathSeg) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, sg := range segs {
		if sg.index >= 0 {
			b.WriteString("[" + strconv.Itoa(sg.index) + "]")
			continue
		}
		if plainName(sg.name) {
			b.WriteString("." + sg.name)
			continue
		}
		q, _ := json.Marshal(sg.name)
		b.WriteString("[" + string(q) + "]")
	}
	return b.String()
}

func plainName(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// MaskMode says what a principal without decrypt rights sees.
type MaskMode uint8

const (
	// ShowCiphertext leaves the ciphertext and the kguard headers in place.
	ShowCiphertext MaskMode = iota
	// ShowMask replaces every encrypted field with Mask (JSON fields with the
	// JSON string of Mask) and removes the kguard.enc header.
	ShowMask
)

// BadSignatureAction says what to do with a record whose signature is bad
// (or missing when FetchOptions.RequireSignature is set).
type BadSignatureAction uint8

const (
	// SigMark delivers the record with a header kguard.verify=bad (or
	// =missing).
	SigMark BadSignatureAction = iota
	// SigDrop asks the caller to drop the record (Result.Drop).
	SigDrop
	// SigFail makes UnprotectBatch fail with ErrIntegrity.
	SigFail
)

// FetchOptions is what the policy decided for one principal reading a topic.
type FetchOptions struct {
	// Decrypt: the principal may read the plaintext.
	Decrypt bool
	// Otherwise: ciphertext or mask.
	Mask MaskMode
	// MaskValue replaces encrypted fields in ShowMask mode ("****" if nil).
	MaskValue []byte
	// Verify signatures (kguard.sig) when present.
	Verify bool
	// RequireSignature treats a record without kguard.sig as bad.
	RequireSignature bool
	// OnBadSignature: mark, drop or fail.
	OnBadSignature BadSignatureAction
	// KeepHeaders keeps kguard.enc/kguard.sig after a full decryption. By
	// default they are removed so the consumer gets the produced record back.
	KeepHeaders bool
	// ShowProducer adds ProducerHeader to every record whose (format
	// version 2) signature verified: the principal, tenant and client id
	// that produced it, as signed.
	ShowProducer bool
}

// SigStatus is the outcome of signature verification.
type SigStatus uint8

// Signature outcomes.
const (
	SigNotChecked SigStatus = iota
	SigOK
	SigBad
	SigMissing
)

// String names the status ("ok", "bad", "missing", "not-checked").
func (s SigStatus) String() string {
	switch s {
	case SigOK:
		return "ok"
	case SigBad:
		return "bad"
	case SigMissing:
		return "missing"
	}
	return "not-checked"
}

// Result reports what UnprotectBatch did to one record.
type Result struct {
	Signature SigStatus
	// SigErr says why Signature is SigBad (or SigMissing under
	// RequireSignature): unknown or revoked signing key, a signature that
	// does not verify (any byte or the producer changed), a truncated or
	// rearranged batch, a malformed header. Nil otherwise. It names key ids
	// and counts, never record contents.
	SigErr error
	// Drop: the caller must not deliver the record (bad signature, SigDrop).
	Drop bool
	// Protected: the record carried a kguard.enc header.
	Protected bool
	// Decrypted counts fields decrypted.
	Decrypted int
	// Unreadable lists fields whose key is gone (shredded subject, destroyed
	// key): they stay ciphertext (or masked).
	Unreadable []string
	// Err (wraps ErrIntegrity) is set when the record could not be
	// decrypted: tampered, moved ciphertext, malformed kguard.enc. The record
	// is then left as it was (ciphertext).
	Err error
	// Producer is the identity a format version 2 signature names: verified
	// when Signature is SigOK, only claimed otherwise (for audit). Nil
	// without such a signature.
	Producer *Producer
}
