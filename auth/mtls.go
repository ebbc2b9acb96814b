package auth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MappingRule is one parsed ssl.principal.mapping.rules entry.
type MappingRule struct {
	isDefault bool
	raw       string
	matchRe   *regexp.Regexp // whole-string match
	re        *regexp.Regexp // as written, for the replacement
	repl      string         // Go Expand template
	lower     bool
	upper     bool
}

// String returns the rule as written.
func (r *MappingRule) String() string { return r.raw }

// ruleRe is Kafka's rule grammar: DEFAULT, or RULE:pattern/replacement/[LU]
// where pattern and replacement may contain backslash escapes.
var ruleRe = regexp.MustCompile(`^(?:(DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?))$`)

// maxRuleLen bounds one rule (and thus the regexp compiled from it).
const maxRuleLen = 4096

// ParseMappingRule parses one rule: `DEFAULT` or
// `RULE:pattern/replacement/[L|U]` (Kafka's ssl.principal.mapping.rules).
func ParseMappingRule(rule string) (*MappingRule, error) {
	s := strings.TrimSpace(rule)
	if len(s) > maxRuleLen {
		return nil, fmt.Errorf("mapping rule longer than %d bytes", maxRuleLen)
	}
	m := ruleRe.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("invalid mapping rule %q (want DEFAULT or RULE:pattern/replacement/[L|U])", s)
	}
	if m[1] != "" {
		return &MappingRule{isDefault: true, raw: s}, nil
	}
	re, err := regexp.Compile(m[2])
	if err != nil {
		return nil, fmt.Errorf("mapping rule %q: pattern: %w", s, err)
	}
	matchRe, err := regexp.Compile(`^(?:` + m[2] + `)$`)
	if err != nil {
		return nil, fmt.Errorf("mapping rule %q: pattern: %w", s, err)
	}
	repl, err := javaReplacement(m[3], re.NumSubexp())
	if err != nil {
		return nil, fmt.Errorf("mapping rule %q: replacement: %w", s, err)
	}
	return &MappingRule{raw: s, re: re, matchRe: matchRe, repl: repl, lower: m[4] == "L", upper: m[4] == "U"}, nil
}

// javaReplacement converts a java.util.regex replacement string (with
// Kafka's treatment of back references to missing groups as literals) into a
// Go regexp.Expand template.
func javaReplacement(s string, groups int) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			i++
			if i >= len(s) {
				return "", errors.New("trailing backslash")
			}
			if s[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(s[i])
			}
		case '$':
			i++
			if i >= len(s) {
				return "", errors.New("trailing $")
			}
			if s[i] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return "", errors.New("unterminated ${name}")
				}
				name := s[i+1 : i+end]
				if name == "" {
					return "", errors.New("empty group name")
				}
				b.WriteString("${" + name + "}")
				i += end
				continue
			}
			if s[i] < '0' || s[i] > '9' {
				return "", fmt.Errorf("illegal group reference $%c", s[i])
			}
			ref := int(s[i] - '0')
			if ref > groups {
				if groups == 0 {
					return "", fmt.Errorf("group $%d referenced but the pattern has no groups", ref)
				}
				// Kafka escapes references to missing groups: literal.
				b.WriteString("$$")
				b.WriteByte(s[i])
				continue
			}
			// Java takes more digits while the number stays a valid group.
			for i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				next := ref*10 + int(s[i+1]-'0')
				if next > groups {
					break
				}
				ref = next
				i++
			}
			fmt.Fprintf(&b, "${%d}", ref)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// Apply returns the mapped name and true when the rule applies to name.
func (r *MappingRule) Apply(name string) (string, bool) {
	if r.isDefault {
		return name, true
	}
	if !r.matchRe.MatchString(name) {
		return "", false
	}
	var out []byte
	last := 0
	for _, m := range r.re.FindAllStringSubmatchIndex(name, -1) {
		out = append(out, name[last:m[0]]...)
		out = r.re.ExpandString(out, r.repl, name, m)
		last = m[1]
	}
	out = append(out, name[last:]...)
	res := string(out)
	switch {
	case r.lower:
		res = strings.ToLower(res)
	case r.upper:
		res = strings.ToUpper(res)
	}
	return res, true
}

// SplitMappingRules splits a Kafka ssl.principal.mapping.rules value (a
// comma-separated list where commas inside RULE:.../.../ belong to the rule)
// into rules. Empty entries are ignored.
func SplitMappingRules(s string) ([]string, error) {
	var out []string
	s = strings.TrimSpace(s)
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t\r\n")
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
			continue
		case strings.HasPrefix(s, "DEFAULT"):
			out = append(out, "DEFAULT")
			s = s[len("DEFAULT"):]
		case strings.HasPrefix(s, "RULE:"):
			// Scan pattern and replacement honouring backslash escapes.
			i := len("RULE:")
			slashes := 0
			for i < len(s) && slashes < 2 {
				switch s[i] {
				case '\\':
					i++
				case '/':
					slashes++
				}
				i++
			}
			if slashes < 2 {
				return nil, fmt.Errorf("unterminated rule %q", s)
			}
			if i < len(s) && (s[i] == 'L' || s[i] == 'U') {
				i++
			}
			out = append(out, s[:min(i, len(s))])
			s = s[min(i, len(s)):]
		default:
			return nil, fmt.Errorf("invalid mapping rules at %q", s)
		}
		s = strings.TrimLeft(s, " \t\r\n")
		if s != "" && !strings.HasPrefix(s, ",") {
			return nil, fmt.Errorf("invalid mapping rules: unexpected %q", s)
		}
	}
	return out, nil
}

// PrincipalMapper maps client certificates to principal names.
type PrincipalMapper struct {
	rules []*MappingRule
	src   CertNameSource
}

// CertNameSource selects what part of the certificate the rules apply to.
type CertNameSource string

// Certificate name sources.
const (
	// FromSubject maps the subject DN in RFC 2253 form (Kafka's behaviour).
	FromSubject CertNameSource = "subject"
	// FromSANDNS maps the DNS subject alternative names, in order; the first
	// one a rule applies to wins.
	FromSANDNS CertNameSource = "san-dns"
	// FromSANURI maps the URI subject alternative names (e.g. SPIFFE IDs),
	// in order; the first one a rule applies to wins.
	FromSANURI CertNameSource = "san-uri"
)

// NewPrincipalMapper parses rules (each one rule; nil or empty means
// DEFAULT) for source (empty means FromSubject).
func NewPrincipalMapper(source CertNameSource, rules []string) (*PrincipalMapper, error) {
	if source == "" {
		source = FromSubject
	}
	switch source {
	case FromSubject, FromSANDNS, FromSANURI:
	default:
		return nil, fmt.Errorf("unknown certificate name source %q", source)
	}
	if len(rules) == 0 {
		rules = []string{"DEFAULT"}
	}
	pm := &PrincipalMapper{src: source}
	for _, r := range rules {
		mr, err := ParseMappingRule(r)
		if err != nil {
			return nil, err
		}
		pm.rules = append(pm.rules, mr)
	}
	return pm, nil
}

// MapName applies the rules to one name: the first rule that applies wins.
func (pm *PrincipalMapper) MapName(name string) (string, error) {
	for _, r := range pm.rules {
		if out, ok := r.Apply(name); ok {
			if out == "" {
				return "", fmt.Errorf("rule %s maps %q to an empty principal", r, name)
			}
			return out, nil
		}
	}
	return "", fmt.Errorf("no mapping rule applies to %q", name)
}

// Map returns the principal name for cert.
func (pm *PrincipalMapper) Map(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", errors.New("no client certificate")
	}
	switch pm.src {
	case FromSANDNS, FromSANURI:
		var names []string
		if pm.src == FromSANDNS {
			names = cert.DNSNames
		} else {
			for _, u := range cert.URIs {
				names = append(names, u.String())
			}
		}
		if len(names) == 0 {
			return "", fmt.Errorf("certificate has no %s subject alternative name", pm.src)
		}
		for _, n := range names {
			if out, err := pm.MapName(n); err == nil {
				return out, nil
			}
		}
		return "", fmt.Errorf("no mapping rule applies to any %s name %q", pm.src, names)
	}
	dn, err := SubjectDN(cert)
	if err != nil {
		return "", err
	}
	return pm.MapName(dn)
}

// PrincipalFromCert maps cert's subject DN (RFC 2253) with Kafka
// ssl.principal.mapping.rules (each element one rule; none means DEFAULT).
func PrincipalFromCert(cert *x509.Certificate, rules []string) (string, error) {
	pm, err := NewPrincipalMapper(FromSubject, rules)
	if err != nil {
		return "", err
	}
	return pm.Map(cert)
}

// PrincipalFromVerifiedCert builds the mTLS Principal for a verified client
// certificate.
func (pm *PrincipalMapper) PrincipalFromVerifiedCert(cert *x509.Certificate) (*Principal, error) {
	name, err := pm.Map(cert)
	if err != nil {
		return nil, authFailed("Authentication failed: client certificate does not map to a principal", err)
	}
	return &Principal{Name: name, Mechanism: MechanismMTLS, CertFingerprint: CertFingerprint(cert)}, nil
}

// CertFingerprint returns the lowercase hex SHA-256 of the certificate DER.
func CertFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// dnKeywords are the attribute keywords java's X500Principal.getName(RFC2253)
// emits; other attributes appear as dotted OID=#hex(DER).
var dnKeywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

// SubjectDN returns cert's subject as an RFC 2253 string, the way Java's
// X500Principal.getName() (and so Kafka's DEFAULT rule) prints it: RDNs in
// reverse order joined by ",", multi-valued RDNs joined by "+", known
// keywords by name, other attributes as OID=#hex.
func SubjectDN(cert *x509.Certificate) (string, error) {
	return FormatDN(cert.RawSubject)
}

// FormatDN formats a DER-encoded X.501 Name as RFC 2253.
func FormatDN(der []byte) (string, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return "", errors.New("malformed distinguished name")
	}
	var rdns []string
	for !seq.Empty() {
		var set cryptobyte.String
		if !seq.ReadASN1(&set, cbasn1.SET) {
			return "", errors.New("malformed RDN")
		}
		var avas []string
		for !set.Empty() {
			var atv cryptobyte.String
			var oid asn1.ObjectIdentifier
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) {
				return "", errors.New("malformed attribute")
			}
			var val cryptobyte.String
			var tag cbasn1.Tag
			if !atv.ReadAnyASN1Element(&val, &tag) || !atv.Empty() {
				return "", errors.New("malformed attribute value")
			}
			key, known := dnKeywords[oid.String()]
			if known {
				if s, ok := decodeDirectoryString(val, tag); ok {
					avas = append(avas, key+"="+escapeDNValue(s))
					continue
				}
			}
			if !known {
				key = oid.String()
			}
			avas = append(avas, key+"=#"+hex.EncodeToString(val))
		}
		if len(avas) == 0 {
			return "", errors.New("empty RDN")
		}
		rdns = append(rdns, strings.Join(avas, "+"))
	}
	for i, j := 0, len(rdns)-1; i < j; i, j = i+1, j-1 {
		rdns[i], rdns[j] = rdns[j], rdns[i]
	}
	return strings.Join(rdns, ","), nil
}

// decodeDirectoryString decodes a DER string element (full TLV in elem).
func decodeDirectoryString(elem cryptobyte.String, tag cbasn1.Tag) (string, bool) {
	var body cryptobyte.String
	if !elem.ReadASN1(&body, tag) {
		return "", false
	}
	switch tag {
	case cbasn1.UTF8String, cbasn1.PrintableString, cbasn1.IA5String, cbasn1.Tag(26) /* VisibleString */ :
		if !utf8.Valid(body) {
			return "", false
		}
		return string(body), true
	case cbasn1.T61String:
		r := make([]rune, len(body))
		for i, c := range body {
			r[i] = rune(c)
		}
		return string(r), true
	case cbasn1.Tag(30): // BMPString, UTF-16BE
		if len(body)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(body)/2)
		for i := range u {
			u[i] = uint16(body[2*i])<<8 | uint16(body[2*i+1])
		}
		return string(utf16.Decode(u)), true
	case cbasn1.Tag(28): // UniversalString, UTF-32BE
		if len(body)%4 != 0 {
			return "", false
		}
		r := make([]rune, len(body)/4)
		for i := range r {
			r[i] = rune(uint32(body[4*i])<<24 | uint32(body[4*i+1])<<16 | uint32(body[4*i+2])<<8 | uint32(body[4*i+3]))
		}
		return string(r), true
	}
	return "", false
}

// escapeDNValue escapes an attribute value per RFC 2253 section 2.4.
func escapeDNValue(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case strings.ContainsRune(",+\"\\<>;", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case (i == 0 && (r == ' ' || r == '#')) || (r == ' ' && i == len(s)-1):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
