package proxy

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy/wire/records"
)

// Data protection is a stage of its own (docs/data-protection.md): the
// pipeline calls it for every API whose spec says records flow
// (apiSpec.records). Produce's answer hands it the allowed partitions
// (protect_produce.go: encrypt and sign, or refuse); Fetch's and
// ShareFetch's answers add its response transform (protect_fetch.go:
// verify and decrypt, or withhold). The stage owns all of its state
// (dataProtection) and takes what it needs of a request as a value of its
// own (protectCall), never the pipeline's call.

// Kafka error codes of the data-protection step (docs/data-protection.md).
const (
// kerr.CorruptMessage.Code answers a fetched partition whose signature check
// failed under on_bad_signature: fail. Consumers stop at it (Java
// throws, franz-go reports the error) instead of skipping records.

// kerr.KafkaStorageError.Code is the retriable answer when a partition cannot be
// protected (or unprotected) now: the key service is down, a key is
// missing, no protector is configured. Every client retries it (Java
// refreshes metadata first); nothing reached the log, so idempotent
// and transactional producers retry the same batch and sequence.

// kerr.InvalidRecord.Code is the permanent answer for a record that cannot be
// protected as the rule demands, or carries a reserved kguard.* header.

)

// dataProtection is the data-protection stage of a proxy: the policy's
// rules, the protector, the compiled rules, the conversion scratch and
// the decompression limiter. A nil *dataProtection is the stage turned
// off (the authorizer answers no protection rules): every method then
// does nothing, and records pass as they are.
type dataProtection struct {
	policy ProtectionPolicy
	// protector is nil without a key service: protected topics' records
	// are refused on produce and withheld on fetch (fail closed).
	protector *crypto.Protector
	// decomp bounds the concurrent decompressions of protection and of
	// the reserved-header scan.
	decomp *records.Limiter
	cache  protections
	// configs answers topics' cleanup.policy and max.message.bytes (nil:
	// unknown, so every topic is treated as compacted, without a size check)
	configs topicConfigSource
	convs   sync.Pool   // *recordConv: the produce path's protection scratch
	seen    atomic.Bool // some topic was found protected
	// m are the stage's series (the proxy's, registered, once built by
	// New; unregistered ones otherwise).
	m *protMetrics
}

// newDataProtection builds the stage when the authorizer answers
// protection rules, else returns nil (with a warning when a protector was
// given for nothing).
func newDataProtection(authorizer Authorizer, protector *crypto.Protector, decomp *records.Limiter, log *zap.Logger) *dataProtection {
	pp, ok := authorizer.(ProtectionPolicy)
	if !ok {
		if protector != nil {
			log.Warn("a protector was given but the authorizer answers no data-protection rules: nothing is encrypted")
		}
		return nil
	}
	return &dataProtection{policy: pp, protector: protector, decomp: decomp, m: newProtMetrics()}
}

// protectCall is what the stage needs of one request: whose rules apply
// (principal, tenant), the context of its policy and key-service calls,
// where it logs, and the request's side of the stage (protectRequest).
// It is passed by value and never by address: a response transform or a
// protecting goroutine captures a copy (in the closure it allocates
// anyway), so a call that protects nothing allocates nothing for it.
type protectCall struct {
	ctx       context.Context
	log       *zap.Logger
	principal string
	tenant    string
	clientID  string
	req       protectRequest
}

// protectRequest is the request's side of the stage, implemented by the
// pipeline's call (authz_protect.go): it names topics as the request's
// audit event does, records the stage's data.protection events, and
// lends pooled buffers held until the forwarded request is written.
type protectRequest interface {
	// topicLabel names a topic entry (an id resolved by the topic-id
	// cache, or policy.TopicIDName).
	topicLabel(name string, id [16]byte) string
	// auditProtection records one data.protection event; an error fails
	// the request (or response) closed.
	auditProtection(stage, decision string, code int16, reasons []string, topics map[string]bool) error
	// hold returns an empty buffer of capacity n or more.
	hold(n int) []byte
}

// covers reports whether requests of an API go through the stage even
// when every action is allowed: the API's records flow through kguard
// (apiSpec.records) and the policy can protect topics.
func (dp *dataProtection) covers(spec *apiSpec) bool {
	return dp != nil && spec.records != noRecords
}

// reservedPrefix starts the headers only kguard writes (kguard.enc,
// kguard.sig, kguard.verify).
const reservedPrefix = "kguard."

// maxCompiled bounds the compiled-protection cache; when full it is
// emptied (entries are cheap to rebuild).
const maxCompiled = 4096

// compiledProtection is a policy.Protection turned into what crypto needs.
type compiledProtection struct {
	prot  *crypto.Protection
	fetch crypto.FetchOptions
	err   error // the rule does not compile: fail closed
}

// protections caches compiled rules per *policy.Protection. The engine
// returns the same pointer while its answer is cached, so a rule is
// compiled once per distinct policy answer, not per request.
type protections struct {
	mu sync.Mutex
	m  map[*policy.Protection]*compiledProtection
}

func (c *protections) get(pp *policy.Protection) *compiledProtection {
	c.mu.Lock()
	cp, ok := c.m[pp]
	c.mu.Unlock()
	if ok {
		return cp
	}
	cp = compileProtection(pp)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCompiled {
		c.m = make(map[*policy.Protection]*compiledProtection)
	}
	c.m[pp] = cp
	c.mu.Unlock()
	return cp
}

// compileProtection maps the policy's rule to a crypto rule and fetch
// options. With a subject field every encrypted field uses the data
// subject's key, so `kguard keys shred <subject>` erases them all.
func compileProtection(pp *policy.Protection) *compiledProtection {
	r := crypto.Rule{Sign: pp.Sign, SubjectPath: pp.SubjectField}
	for _, f := range pp.Fields {
		alg, err := crypto.ParseAlgorithm(f.Algorithm)
		if err != nil {
			return &compiledProtection{err: err}
		}
		t := f.Path
		switch {
		case t == "key":
			t = "@key"
		case strings.HasPrefix(t, "header:"):
			t = "@" + t
		}
		r.Fields = append(r.Fields, crypto.Field{Target: t, Algorithm: alg, KEK: pp.KEK, PerSubject: pp.SubjectField != ""})
	}
	prot, err := crypto.Compile(r)
	if err != nil {
		return &compiledProtection{err: err}
	}
	// Readers allowed to decrypt also learn who produced each verified
	// record (kguard.producer): the signed principal, tenant and client id.
	fo := crypto.FetchOptions{Decrypt: pp.Decrypt, Verify: pp.Sign, RequireSignature: pp.Sign, ShowProducer: pp.Decrypt && pp.Sign}
	if pp.OnDenied == policy.OnDeniedMask {
		fo.Mask = crypto.ShowMask
	}
	switch pp.OnBadSignature {
	case policy.OnBadSignatureMark:
		fo.OnBadSignature = crypto.SigMark
	case policy.OnBadSignatureDrop:
		fo.OnBadSignature = crypto.SigDrop
	default:
		fo.OnBadSignature = crypto.SigFail
	}
	return &compiledProtection{prot: prot, fetch: fo}
}

// protectionFor asks the policy how topic is protected for the call's
// principal; nil when it is not.
func (dp *dataProtection) protectionFor(pc protectCall, topic string) (*compiledProtection, error) {
	pp, err := dp.policy.Protection(pc.ctx, pc.principal, pc.tenant, topic)
	if err != nil || pp == nil {
		return nil, err
	}
	dp.seen.Store(true)
	return dp.cache.get(pp), nil
}

// topicConfig is topic's configuration as far as it is known.
func (dp *dataProtection) topicConfig(pc protectCall, topic string) topicConfig {
	if dp.configs == nil {
		return topicConfig{}
	}
	return dp.configs.topicConfig(pc.ctx, topic)
}

// producer is the identity signed with the call's records.
func (pc protectCall) producer() crypto.Producer {
	return crypto.Producer{Principal: pc.principal, Tenant: pc.tenant, ClientID: pc.clientID}
}

// maxAuditFindings caps the partition lines of one data.protection event.
const maxAuditFindings = 50

// recordConv converts between the batch decoder's records and crypto's,
// reusing its slices across batches of one request.
type recordConv struct {
	recs    []crypto.Record
	ptrs    []*crypto.Record
	chdrs   []crypto.Header
	hdrs    []records.Header
	scratch crypto.Scratch
	dec     records.Scratch // the batch's decoded records
}

// getConv takes a conversion scratch from the stage's pool (one per
// protecting goroutine of a request, returned when its batches are
// encoded).
func (dp *dataProtection) getConv() *recordConv {
	if v, ok := dp.convs.Get().(*recordConv); ok {
		return v
	}
	return &recordConv{}
}

// putConv returns v after dropping its references to the request's records.
func (dp *dataProtection) putConv(v *recordConv) {
	clear(v.recs[:cap(v.recs)])
	clear(v.chdrs[:cap(v.chdrs)])
	clear(v.hdrs[:cap(v.hdrs)])
	v.dec.Clear()
	dp.convs.Put(v)
}

func (v *recordConv) toCrypto(topic string, rs []records.Record) []*crypto.Record {
	if cap(v.recs) < len(rs) {
		v.recs = make([]crypto.Record, len(rs))
		v.ptrs = make([]*crypto.Record, len(rs))
	}
	v.recs, v.ptrs = v.recs[:len(rs)], v.ptrs[:len(rs)]
	n := 0
	for i := range rs {
		n += len(rs[i].Headers)
	}
	// The crypto records' headers get their own buffer: the slices the
	// previous batch left in v.recs point into the protector's scratch,
	// which the next ProtectBatchScratch call clears.
	if cap(v.chdrs) < n {
		v.chdrs = make([]crypto.Header, n)
	}
	all := v.chdrs[:n]
	for i := range rs {
		cr := &v.recs[i]
		cr.Topic, cr.Key, cr.Value = topic, rs[i].Key, rs[i].Value
		hs := all[:len(rs[i].Headers):len(rs[i].Headers)]
		all = all[len(rs[i].Headers):]
		for k, h := range rs[i].Headers {
			hs[k] = crypto.Header{Key: h.Key, Value: h.Value}
		}
		cr.Headers = hs
		v.ptrs[i] = cr
	}
	return v.ptrs
}

// fromCrypto writes the (rewritten) crypto records back into rs.
func (v *recordConv) fromCrypto(rs []records.Record) {
	n := 0
	for i := range rs {
		n += len(v.recs[i].Headers)
	}
	if cap(v.hdrs) < n {
		v.hdrs = make([]records.Header, n)
	}
	all := v.hdrs[:n] // reused: the batch is encoded before the next one
	for i := range rs {
		cr := &v.recs[i]
		rs[i].Key, rs[i].Value = cr.Key, cr.Value
		hs := all[:len(cr.Headers):len(cr.Headers)]
		all = all[len(cr.Headers):]
		for k, h := range cr.Headers {
			hs[k] = records.Header{Key: h.Key, Value: h.Value}
		}
		rs[i].Headers = hs
	}
}
