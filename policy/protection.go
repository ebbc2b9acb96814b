package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Field encryption algorithms.
const (
	AES256GCM = "AES256_GCM"
	AES256SIV = "AES256_SIV"
)

// What a principal without decrypt rights gets (Protection.OnDenied).
const (
	OnDeniedCiphertext = "ciphertext"
	OnDeniedMask       = "mask"
)

// What to do with a record whose signature does not verify
// (Protection.OnBadSignature).
const (
	OnBadSignatureMark = "mark"
	OnBadSignatureDrop = "drop"
	OnBadSignatureFail = "fail"
)

// FieldRule names one part of a record to encrypt.
type FieldRule struct {
	// Path is "$" (the whole value), a JSON path into the value such as
	// "$.card.number", "key" (the record key) or "header:NAME".
	Path string `json:"path"`
	// Algorithm is AES256GCM or AES256SIV (deterministic).
	Algorithm string `json:"algorithm"`
}

// Protection is the data-protection rule for one (principal, tenant, topic).
type Protection struct {
	// Rule is the name of the policy rule that matched.
	Rule   string      `json:"rule"`
	Fields []FieldRule `json:"fields"`
	// KEK is the key-encryption key name, its template already expanded.
	KEK string `json:"kek"`
	// SubjectField is the JSON path of the data subject for per-subject
	// keys, "" for none.
	SubjectField string `json:"subject_field"`
	// Sign tells whether produced records are signed.
	Sign bool `json:"sign"`
	// Decrypt tells whether this principal may read plaintext.
	Decrypt bool `json:"decrypt"`
	// OnDenied is OnDeniedCiphertext or OnDeniedMask.
	OnDenied string `json:"on_denied"`
	// OnBadSignature is OnBadSignatureMark, OnBadSignatureDrop or
	// OnBadSignatureFail.
	OnBadSignature string `json:"on_bad_signature"`
}

// Protection returns the data-protection rule for topic as seen by
// principal (of tenant), or nil when the topic is unprotected. Results are
// cached per (principal, tenant, topic, policy revision). A rule the policy
// returns malformed is an error (fail closed: the proxy must not forward
// plaintext it cannot protect).
func (e *Engine) Protection(ctx context.Context, principal, tenant, topic string) (*Protection, error) {
	st := e.state.Load()
	k := protKey{principal, tenant, topic}
	if st.pcache != nil {
		if p, ok := st.pcache.Get(k); ok {
			return p, nil
		}
	}
	in := ast.NewObject(
		ast.Item(ast.StringTerm("principal"), ast.StringTerm(principal)),
		ast.Item(ast.StringTerm("tenant"), ast.StringTerm(tenant)),
		ast.Item(ast.StringTerm("topic"), ast.StringTerm(topic)),
	)
	rs, err := st.protection.Eval(ctx, rego.EvalParsedInput(in))
	if err != nil {
		return nil, fmt.Errorf("policy: evaluate protection for %q: %w", topic, err)
	}
	var p *Protection
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		p, err = parseProtection(rs[0].Expressions[0].Value)
		if err != nil {
			return nil, fmt.Errorf("policy: protection rule for %q: %w", topic, err)
		}
	}
	if st.pcache != nil {
		st.pcache.Add(k, p)
	}
	return p, nil
}

func parseProtection(v any) (*Protection, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not an object")
	}
	p := &Protection{}
	p.Rule, _ = m["rule"].(string)
	p.KEK, _ = m["kek"].(string)
	p.SubjectField, _ = m["subject_field"].(string)
	p.Sign, _ = m["sign"].(bool)
	p.Decrypt, _ = m["decrypt"].(bool)
	p.OnDenied, _ = m["on_denied"].(string)
	p.OnBadSignature, _ = m["on_bad_signature"].(string)
	fields, _ := m["fields"].([]any)
	for i, f := range fields {
		fm, ok := f.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %d is not an object", i)
		}
		fr := FieldRule{}
		fr.Path, _ = fm["path"].(string)
		fr.Algorithm, _ = fm["algorithm"].(string)
		p.Fields = append(p.Fields, fr)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Validate checks that every value is one kguard knows.
func (p *Protection) Validate() error {
	if len(p.Fields) == 0 && !p.Sign {
		return errors.New("rule protects no field and does not sign")
	}
	if len(p.Fields) > 0 && p.KEK == "" {
		return errors.New("rule encrypts fields but names no key-encryption key")
	}
	for _, f := range p.Fields {
		if err := ValidateFieldPath(f.Path); err != nil {
			return err
		}
		if f.Algorithm != AES256GCM && f.Algorithm != AES256SIV {
			return fmt.Errorf("field %q: unknown algorithm %q (want %s or %s)", f.Path, f.Algorithm, AES256GCM, AES256SIV)
		}
	}
	if p.SubjectField != "" && (p.SubjectField == "$" || !strings.HasPrefix(p.SubjectField, "$.")) {
		return fmt.Errorf("subject_field %q is not a JSON path into the value", p.SubjectField)
	}
	switch p.OnDenied {
	case OnDeniedCiphertext, OnDeniedMask:
	default:
		return fmt.Errorf("unknown on_denied %q", p.OnDenied)
	}
	switch p.OnBadSignature {
	case OnBadSignatureMark, OnBadSignatureDrop, OnBadSignatureFail:
	default:
		return fmt.Errorf("unknown on_bad_signature %q", p.OnBadSignature)
	}
	return nil
}

// ValidateFieldPath checks a FieldRule path: "$", "$.a.b" (dot-separated,
// non-empty segments), "key" or "header:NAME".
func ValidateFieldPath(p string) error {
	switch {
	case p == "$", p == "key":
		return nil
	case strings.HasPrefix(p, "header:"):
		if len(p) == len("header:") {
			return fmt.Errorf("field path %q names no header", p)
		}
		return nil
	case strings.HasPrefix(p, "$."):
		for _, seg := range strings.Split(p[2:], ".") {
			if seg == "" {
				return fmt.Errorf("field path %q has an empty segment", p)
			}
		}
		return nil
	}
	return fmt.Errorf("field path %q: want \"$\", \"$.a.b\", \"key\" or \"header:NAME\"", p)
}
