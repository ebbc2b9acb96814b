package auth

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParsePlain(f *testing.F) {
	for _, s := range []string{"\x00alice\x00pw", "alice\x00alice\x00pw", "", "\x00", "\x00\x00", "a\x00b\x00c\x00d", "\x00\xff\x00pw"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		zid, cid, pw, err := ParsePlain(msg)
		if err != nil {
			return
		}
		if cid == "" || pw == "" || !utf8.ValidString(zid+cid+pw) {
			t.Fatalf("accepted invalid fields %q %q %q", zid, cid, pw)
		}
		// Round trip: the message is exactly the three fields.
		if got := zid + "\x00" + cid + "\x00" + pw; got != string(msg) {
			t.Fatalf("round trip %q != %q", got, msg)
		}
	})
}

func FuzzParseOAuthBearer(f *testing.F) {
	for _, s := range []string{
		"n,,\x01auth=Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig\x01\x01",
		"n,a=user,\x01auth=Bearer abc\x01ext=v a l\x01\x01",
		"y,a=us=2Cer,\x01auth=bearer a+/=\x01\x01",
		"p=tls-unique,,\x01auth=Bearer a\x01\x01",
		"\x01", "", "n,,\x01\x01", "n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := ParseOAuthBearer(msg)
		if err != nil {
			return
		}
		if m.Token == "" || !b64tokenRe.MatchString(m.Token) {
			t.Fatalf("accepted bad token %q", m.Token)
		}
		if _, ok := m.Extensions["auth"]; ok {
			t.Fatal("auth kept as an extension")
		}
		if !bytes.HasSuffix(msg, []byte("\x01\x01")) {
			t.Fatal("accepted message without final separators")
		}
	})
}

func FuzzMappingRule(f *testing.F) {
	for _, s := range []string{
		"DEFAULT", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L", "RULE:^(a)(b)(c)$/$12$4\\$/U",
		`RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT`, "RULE:(?P<n>x)/${n}/", "RULE:,RULE:,/,RULE:,\\//U", "RULE:/", "RULE:(a)/$",
	} {
		f.Add(s, "CN=Duke,OU=ServiceUsers,O=Org,C=US")
	}
	f.Fuzz(func(t *testing.T, rules, dn string) {
		split, err := SplitMappingRules(rules)
		if err != nil {
			return
		}
		pm, err := NewPrincipalMapper(FromSubject, split)
		if err != nil {
			return
		}
		out, err := pm.MapName(dn)
		if err == nil && out == "" {
			t.Fatal("empty principal without error")
		}
		for _, r := range split {
			if strings.TrimSpace(r) != r || r == "" {
				t.Fatalf("split produced untrimmed or empty rule %q", r)
			}
		}
	})
}

func FuzzFormatDN(f *testing.F) {
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x0f, 0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x04, 'D', 'u', 'k', 'e'})
	f.Fuzz(func(t *testing.T, der []byte) {
		_, _ = FormatDN(der)
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""},{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseJWKS(data)
		if err == nil && len(set.Keys) == 0 {
			t.Fatal("empty key set accepted")
		}
	})
}

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte("version: 1\nusers: {}\n"))
	f.Add([]byte(`{"version":1,"users":{"a":{"scram-sha-256":{"salt":"AAAAAAAAAAA=","iterations":4096,"stored_key":"","server_key":""}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseCredentials(data)
	})
}
