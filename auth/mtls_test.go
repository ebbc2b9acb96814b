package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Kafka's documented examples (SslPrincipalMapperTest and the
// ssl.principal.mapping.rules documentation).
func TestMappingRulesKafkaExamples(t *testing.T) {
	rules, err := SplitMappingRules(strings.Join([]string{
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
		"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
		"RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
		"RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
		"DEFAULT",
	}, ", "))
	if err != nil {
		t.Fatal(err)
	}
	pm, err := NewPrincipalMapper(FromSubject, rules)
	if err != nil {
		t.Fatal(err)
	}
	for dn, want := range map[string]string{
		"CN=Duke,OU=ServiceUsers,O=Org,C=US":        "duke",
		"CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US": "duke@sme",
		"cn=duke,ou=sme,dc=mycp,dc=com":             "DUKE@SME",
		"cN=duke,OU=JavaSoft,O=Sun Microsystems":    "DUKE",
		"OU=JavaSoft,O=Sun Microsystems,C=US":       "OU=JavaSoft,O=Sun Microsystems,C=US",
	} {
		got, err := pm.MapName(dn)
		if err != nil || got != want {
			t.Errorf("MapName(%q) = %q, %v; want %q", dn, got, err, want)
		}
	}

	// Comma with whitespace inside a CN (escaped in the DN).
	pm, err = NewPrincipalMapper(FromSubject, mustSplit(t, `RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT`))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := pm.MapName(`CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz`); err != nil || got != `Tkac\, Adam` {
		t.Fatalf("comma with whitespace: %q, %v", got, err)
	}

	// No rule applies: an error, never a fallback.
	pm, _ = NewPrincipalMapper(FromSubject, []string{"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/"})
	if _, err := pm.MapName("CN=x,OU=Other"); err == nil {
		t.Fatal("unmatched DN mapped")
	}
}

func mustSplit(t *testing.T, s string) []string {
	t.Helper()
	r, err := SplitMappingRules(s)
	if err != nil {
		t.Fatalf("split %q: %v", s, err)
	}
	return r
}

func TestMappingRulesValidity(t *testing.T) {
	for _, s := range []string{
		"DEFAULT",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
		"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
		"RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
		"RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
		"RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
		"RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
	} {
		for _, r := range mustSplit(t, s) {
			if _, err := ParseMappingRule(r); err != nil {
				t.Errorf("valid rule %q refused: %v", r, err)
			}
		}
	}
	for _, s := range []string{
		"default", "DEFAUL", "DEFAULT/L", "DEFAULT/U",
		"RULE:CN=(.*?),OU=ServiceUsers.*/$1",
		"rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
		"RULE:(?<=x)y/$1/", // lookbehind: not RE2
		"RULE:abc/$1/",     // group reference without groups
		"RULE:(a)/$x/",     // illegal group reference
		"RULE:(a)/x\\/",    // trailing backslash eats the terminator
	} {
		rules, err := SplitMappingRules(s)
		if err == nil {
			for _, r := range rules {
				if _, err = ParseMappingRule(r); err != nil {
					break
				}
			}
		}
		if err == nil {
			t.Errorf("invalid rules %q accepted", s)
		}
	}
}

func TestSplitMappingRules(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"DEFAULT":                       "DEFAULT",
		"RULE://":                       "RULE://",
		"RULE:/.*/L":                    "RULE:/.*/L",
		"RULE://,DEFAULT":               "RULE://|DEFAULT",
		"  RULE:// ,  DEFAULT  ":        "RULE://|DEFAULT",
		"  RULE:  /     /U   ,DEFAULT ": "RULE:  /     /U|DEFAULT",
		",   , , ,      , , ,   ":       "",
		",,RULE://,,,DEFAULT,,":         "RULE://|DEFAULT",
		`RULE:\/\\\(\)\n\t/\/\//`:       `RULE:\/\\\(\)\n\t/\/\//`,
		"RULE:,RULE:,/,RULE:,\\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT": "RULE:,RULE:,/,RULE:,\\//U|RULE:,/RULE:,/|RULE:,RULE:,/L,RULE:,/L|RULE:, DEFAULT, /DEFAULT/|DEFAULT",
	} {
		got := strings.Join(mustSplit(t, in), "|")
		if got != want {
			t.Errorf("split %q = %q, want %q", in, got, want)
		}
	}
}

func TestMappingRuleReplacement(t *testing.T) {
	for _, c := range []struct{ rule, in, want string }{
		{"RULE:^(a)(b)(c)$/$1@$4/", "abc", "a@$4"}, // missing group: literal (Kafka)
		{"RULE:^(a)(b)(c)$/$12/", "abc", "a2"},     // Java reads $1 then '2'
		{`RULE:^(a)$/\$1-$1/`, "a", "$1-a"},        // escaped dollar
		{"RULE:^(?P<n>x)y$/${n}!/U", "xy", "X!"},   // named group
		{`RULE:^spiffe:\/\/example\.org\/ns\/([^\/]+)\/sa\/([^\/]+)$/$2.$1/`, "spiffe://example.org/ns/prod/sa/orders", "orders.prod"},
		{"RULE:^CN=([^,]+),O=Acme$/$1/", "CN=svc,O=Acme", "svc"},
	} {
		r, err := ParseMappingRule(c.rule)
		if err != nil {
			t.Fatalf("%s: %v", c.rule, err)
		}
		got, ok := r.Apply(c.in)
		if !ok || got != c.want {
			t.Errorf("%s on %q = %q, %v; want %q", c.rule, c.in, got, ok, c.want)
		}
	}
}

// --- certificates ---

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) issue(t testing.TB, tmpl *x509.Certificate) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl.SerialNumber, _ = rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c.Leaf, _ = x509.ParseCertificate(der)
	return c, certPEM, keyPEM
}

func clientCert(t testing.TB, ca *testCA, subject pkix.Name, uris ...string) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{Subject: subject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, u := range uris {
		pu, _ := url.Parse(u)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	c, _, _ := ca.issue(t, tmpl)
	return c
}

func TestSubjectDNRFC2253(t *testing.T) {
	ca := newCA(t, "Test CA")
	oidEmail := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDC := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	for _, c := range []struct {
		name pkix.Name
		want string
	}{
		{pkix.Name{CommonName: "Duke", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"Org"}, Country: []string{"US"}},
			"CN=Duke,OU=ServiceUsers,O=Org,C=US"},
		{pkix.Name{CommonName: "Tkac, Adam", OrganizationalUnit: []string{"ITZ"}},
			`CN=Tkac\, Adam,OU=ITZ`},
		{pkix.Name{CommonName: " lead+trail ", Organization: []string{"#hash;<x>\"q\"\\"}},
			`CN=\ lead\+trail\ ,O=\#hash\;\<x\>\"q\"\\`},
		{pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidDC, Value: "com"}, {Type: oidDC, Value: "example"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "svc"},
		}}, "CN=svc,DC=example,DC=com"},
		{pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "svc"}, {Type: oidEmail, Value: "a@b"},
		}}, "1.2.840.113549.1.9.1=#0c03614062,CN=svc"},
	} {
		cert := clientCert(t, ca, c.name).Leaf
		got, err := SubjectDN(cert)
		if err != nil || got != c.want {
			t.Errorf("SubjectDN = %q, %v; want %q", got, err, c.want)
		}
	}
	// Multi-valued RDN.
	rdn := pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: "O1"}}, {
		{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "a"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "b"}}}
	der, _ := asn1.Marshal(rdn)
	if got, err := FormatDN(der); err != nil || got != "CN=a+OU=b,O=O1" {
		t.Errorf("multi-valued RDN = %q, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {0x30}, {0x30, 0x02, 0x31, 0x00}, {0x31, 0x00}, append(der, 0)} {
		if _, err := FormatDN(bad); err == nil {
			t.Errorf("FormatDN(%x) accepted", bad)
		}
	}
}

func TestPrincipalFromCertAndSAN(t *testing.T) {
	ca := newCA(t, "Test CA")
	cert := clientCert(t, ca, pkix.Name{CommonName: "Orders", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"Acme"}},
		"https://not-spiffe.example/x", "spiffe://example.org/ns/prod/sa/orders").Leaf
	got, err := PrincipalFromCert(cert, []string{"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L", "DEFAULT"})
	if err != nil || got != "orders" {
		t.Fatalf("PrincipalFromCert = %q, %v", got, err)
	}
	if got, err := PrincipalFromCert(cert, nil); err != nil || got != "CN=Orders,OU=ServiceUsers,O=Acme" {
		t.Fatalf("DEFAULT = %q, %v", got, err)
	}
	pm, err := NewPrincipalMapper(FromSANURI, []string{`RULE:^spiffe:\/\/example\.org\/ns\/([^\/]+)\/sa\/([^\/]+)$/$2.$1/`})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pm.PrincipalFromVerifiedCert(cert)
	if err != nil || p.Name != "orders.prod" || p.Mechanism != MechanismMTLS || len(p.CertFingerprint) != 64 {
		t.Fatalf("SAN URI principal = %+v, %v", p, err)
	}
	if p.CertFingerprint != CertFingerprint(cert) {
		t.Fatal("fingerprint mismatch")
	}
	pm, _ = NewPrincipalMapper(FromSANDNS, nil)
	if _, err := pm.Map(cert); err == nil {
		t.Fatal("certificate without DNS SAN mapped")
	}
	if _, err := NewPrincipalMapper("issuer", nil); err == nil {
		t.Fatal("unknown source accepted")
	}
}

// --- real TLS handshakes ---

type tlsFiles struct{ dir, cert, key, ca string }

func writeTLSFiles(t testing.TB, server *testCA, clientCAs ...*testCA) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	_, certPEM, keyPEM := server.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "kguard"}, DNSNames: []string{"kguard.test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	f := tlsFiles{dir: dir, cert: filepath.Join(dir, "server.pem"), key: filepath.Join(dir, "server.key"), ca: filepath.Join(dir, "clients-ca.pem")}
	os.WriteFile(f.cert, certPEM, 0o600)
	os.WriteFile(f.key, keyPEM, 0o600)
	var bundle []byte
	for _, c := range clientCAs {
		bundle = append(bundle, c.pem...)
	}
	os.WriteFile(f.ca, bundle, 0o600)
	return f
}

// handshake runs a real TLS handshake over loopback TCP and returns the
// server's view of the connection or the server-side error.
func handshake(t *testing.T, serverCfg *tls.Config, serverCA *testCA, client *tls.Certificate) (tls.ConnectionState, error) {
	t.Helper()
	return handshakeWithCache(t, serverCfg, serverCA, client, nil)
}

func handshakeWithCache(t *testing.T, serverCfg *tls.Config, serverCA *testCA, client *tls.Certificate, cache tls.ClientSessionCache) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		cs  tls.ConnectionState
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer c.Close()
		sc := tls.Server(c, serverCfg)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = sc.HandshakeContext(ctx)
		if err == nil {
			_, err = sc.Write([]byte("ok"))
		}
		ch <- result{cs: sc.ConnectionState(), err: err}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.cert)
	ccfg := &tls.Config{RootCAs: roots, ServerName: "kguard.test", MinVersion: tls.VersionTLS12, ClientSessionCache: cache}
	if client != nil {
		// Always send the certificate, even when it does not chain to the
		// CAs the server names (as an attacker would).
		ccfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil }
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2)
		_, cerr := conn.Read(buf)
		conn.Close()
		r := <-ch
		if r.err == nil && cerr != nil {
			t.Fatalf("server accepted but client read failed: %v", cerr)
		}
		return r.cs, r.err
	}
	r := <-ch
	if r.err == nil {
		t.Fatalf("client failed (%v) but server accepted", err)
	}
	return r.cs, r.err
}

func TestMTLSHandshake(t *testing.T) {
	serverCA := newCA(t, "Server CA")
	clientCA := newCA(t, "Client CA")
	rogueCA := newCA(t, "Rogue CA")
	files := writeTLSFiles(t, serverCA, clientCA)
	cfg, reloader, err := NewServerTLSConfig(TLSServerOptions{CertFile: files.cert, KeyFile: files.key, ClientCAFile: files.ca, CheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	pm, _ := NewPrincipalMapper(FromSubject, []string{"RULE:^CN=([^,]+),OU=Apps.*$/$1/", "DEFAULT"})

	good := clientCert(t, clientCA, pkix.Name{CommonName: "payments", OrganizationalUnit: []string{"Apps"}})
	cs, err := handshake(t, cfg, serverCA, &good)
	if err != nil {
		t.Fatalf("trusted client refused: %v", err)
	}
	p, err := PrincipalFromTLS(cs, pm)
	if err != nil || p.Name != "payments" || p.CertFingerprint != CertFingerprint(good.Leaf) {
		t.Fatalf("principal %+v, %v", p, err)
	}

	rogue := clientCert(t, rogueCA, pkix.Name{CommonName: "payments", OrganizationalUnit: []string{"Apps"}})
	if _, err := handshake(t, cfg, serverCA, &rogue); err == nil {
		t.Fatal("certificate from an untrusted CA accepted")
	}
	if _, err := handshake(t, cfg, serverCA, nil); err == nil {
		t.Fatal("client without certificate accepted in required mode")
	}

	// The operator adds the second CA to the bundle: picked up without restart.
	os.WriteFile(files.ca, append(append([]byte{}, clientCA.pem...), rogueCA.pem...), 0o600)
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(files.ca, future, future)
	if _, err := handshake(t, cfg, serverCA, &rogue); err != nil {
		t.Fatalf("CA reload not applied: %v", err)
	}
	// A broken CA file is refused; the previous pool stays in force.
	os.WriteFile(files.ca, []byte("garbage"), 0o600)
	future = future.Add(2 * time.Second)
	os.Chtimes(files.ca, future, future)
	if err := reloader.Reload(); err == nil {
		t.Fatal("broken CA file accepted")
	}
	if _, err := handshake(t, cfg, serverCA, &good); err != nil {
		t.Fatalf("previous CA pool lost after broken reload: %v", err)
	}
	// Server certificate rotation (after the CA file is fixed again).
	os.WriteFile(files.ca, clientCA.pem, 0o600)
	future = future.Add(2 * time.Second)
	os.Chtimes(files.ca, future, future)
	if cn := reloader.Certificate().Leaf.Subject.CommonName; cn != "kguard" {
		t.Fatalf("initial server certificate CN %q", cn)
	}
	if err := writeTLSFilesInto(t, serverCA, files); err != nil {
		t.Fatal(err)
	}
	if cn := reloader.Certificate().Leaf.Subject.CommonName; cn != "kguard-2" {
		t.Fatalf("server certificate not reloaded: CN %q", cn)
	}
	if _, err := handshake(t, cfg, serverCA, &good); err != nil {
		t.Fatalf("handshake with the rotated server certificate: %v", err)
	}
}

// writeTLSFilesInto replaces the listener certificate and key.
func writeTLSFilesInto(t testing.TB, ca *testCA, f tlsFiles) error {
	t.Helper()
	_, certPEM, keyPEM := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "kguard-2"}, DNSNames: []string{"kguard.test"}})
	future := time.Now().Add(10 * time.Second)
	for p, b := range map[string][]byte{f.cert: certPEM, f.key: keyPEM} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
		os.Chtimes(p, future, future)
	}
	return nil
}

func TestMTLSOptional(t *testing.T) {
	serverCA := newCA(t, "Server CA")
	clientCA := newCA(t, "Client CA")
	rogueCA := newCA(t, "Rogue CA")
	files := writeTLSFiles(t, serverCA, clientCA)
	cfg, _, err := NewServerTLSConfig(TLSServerOptions{CertFile: files.cert, KeyFile: files.key, ClientCAFile: files.ca, ClientAuth: ClientCertOptional})
	if err != nil {
		t.Fatal(err)
	}
	pm, _ := NewPrincipalMapper(FromSubject, nil)
	cs, err := handshake(t, cfg, serverCA, nil)
	if err != nil {
		t.Fatalf("optional mode refused a client without certificate: %v", err)
	}
	if _, err := PrincipalFromTLS(cs, pm); !errors.Is(err, ErrNoClientCertificate) {
		t.Fatalf("no certificate: %v", err)
	}
	rogue := clientCert(t, rogueCA, pkix.Name{CommonName: "x"})
	if _, err := handshake(t, cfg, serverCA, &rogue); err == nil {
		t.Fatal("optional mode must still refuse an untrusted certificate")
	}
	for name, o := range map[string]TLSServerOptions{
		"no CA":      {CertFile: files.cert, KeyFile: files.key},
		"bad mode":   {CertFile: files.cert, KeyFile: files.key, ClientCAFile: files.ca, ClientAuth: "maybe"},
		"no cert":    {ClientCAFile: files.ca},
		"missing ca": {CertFile: files.cert, KeyFile: files.key, ClientCAFile: filepath.Join(files.dir, "nope")},
	} {
		if _, _, err := NewServerTLSConfig(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMTLSNoResumptionAcrossCAReload(t *testing.T) {
	serverCA := newCA(t, "Server CA")
	clientCA := newCA(t, "Client CA")
	otherCA := newCA(t, "Other CA")
	files := writeTLSFiles(t, serverCA, clientCA)
	cfg, _, err := NewServerTLSConfig(TLSServerOptions{CertFile: files.cert, KeyFile: files.key, ClientCAFile: files.ca, CheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	good := clientCert(t, clientCA, pkix.Name{CommonName: "app"})
	cache := tls.NewLRUClientSessionCache(4)
	if _, err := handshakeWithCache(t, cfg, serverCA, &good, cache); err != nil {
		t.Fatal(err)
	}
	cs, err := handshakeWithCache(t, cfg, serverCA, &good, cache)
	if err != nil || !cs.DidResume {
		t.Fatalf("second handshake should resume (err %v, resumed %v)", err, cs.DidResume)
	}
	// The client CA is removed from the bundle: its session must not resume.
	os.WriteFile(files.ca, otherCA.pem, 0o600)
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(files.ca, future, future)
	if cs, err := handshakeWithCache(t, cfg, serverCA, &good, cache); err == nil {
		t.Fatalf("certificate from a removed CA accepted after reload (resumed %v)", cs.DidResume)
	}
}
