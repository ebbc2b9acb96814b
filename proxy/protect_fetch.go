package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/proxy/wire/records"
)

// unprotectFetch is the stage on the way out for a Fetch (records:
// recordsOut): the response transform that verifies and decrypts its
// records (unprotectTopics), or nil when the response need not be decoded
// for it: no topic the request names is protected for the principal, and
// it is not an incremental fetch (whose response may carry session
// partitions the request does not name) after some topic was found
// protected. Nil too with the stage off (dp nil).
func (dp *dataProtection) unprotectFetch(pc protectCall, r *kmsg.FetchRequest) responseTransform {
	if dp == nil || !dp.fetchNeedsUnprotect(pc, r) {
		return nil
	}
	return func(kr kmsg.Response) (bool, error) { return dp.unprotectFetchResponse(pc, kr) }
}

// unprotectShareFetch is unprotectFetch for a ShareFetch (whose share
// session also serves partitions the request does not name).
func (dp *dataProtection) unprotectShareFetch(pc protectCall, r *kmsg.ShareFetchRequest) responseTransform {
	if dp == nil || !dp.shareFetchNeedsUnprotect(pc, r) {
		return nil
	}
	return func(kr kmsg.Response) (bool, error) { return dp.unprotectShareFetchResponse(pc, kr) }
}

func (dp *dataProtection) fetchNeedsUnprotect(pc protectCall, r *kmsg.FetchRequest) bool {
	if r.SessionEpoch > 0 && dp.seen.Load() {
		return true
	}
	for i := range r.Topics {
		if dp.mayBeProtected(pc, pc.req.topicLabel(r.Topics[i].Topic, r.Topics[i].TopicID)) {
			return true
		}
	}
	return false
}

func (dp *dataProtection) shareFetchNeedsUnprotect(pc protectCall, r *kmsg.ShareFetchRequest) bool {
	if r.ShareSessionEpoch > 0 && dp.seen.Load() {
		return true
	}
	for i := range r.Topics {
		if dp.mayBeProtected(pc, pc.req.topicLabel("", r.Topics[i].TopicID)) {
			return true
		}
	}
	return false
}

func (dp *dataProtection) mayBeProtected(pc protectCall, topic string) bool {
	cp, err := dp.protectionFor(pc, topic)
	return err != nil || cp != nil // an error is decided (fail closed) on the response
}

// fetchedPartition is one partition of a record-returning response (Fetch,
// ShareFetch) as data protection sees it.
type fetchedPartition struct {
	partition int32
	errorCode int16
	records   *[]byte
	// fail withholds the partition: its error code and message set, its
	// records (and what refers to them) removed.
	fail func(code int16, msg string)
}

type fetchedTopic struct {
	name  string
	parts []fetchedPartition
}

// unprotectFetchResponse is the Fetch response transform (see
// unprotectTopics).
func (dp *dataProtection) unprotectFetchResponse(pc protectCall, kr kmsg.Response) (bool, error) {
	resp := kr.(*kmsg.FetchResponse)
	ts := make([]fetchedTopic, len(resp.Topics))
	for i := range resp.Topics {
		t := &resp.Topics[i]
		ts[i] = fetchedTopic{name: pc.req.topicLabel(t.Topic, t.TopicID), parts: make([]fetchedPartition, len(t.Partitions))}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			ts[i].parts[j] = fetchedPartition{partition: p.Partition, errorCode: p.ErrorCode, records: &p.RecordBatches,
				fail: func(code int16, _ string) { failFetchPartition(p, code) }}
		}
	}
	return dp.unprotectTopics(pc, ts)
}

// unprotectShareFetchResponse is the ShareFetch response transform: the
// same verification, decryption and audit as Fetch. A withheld partition
// also loses its acquired-record ranges (the broker releases them when
// their acquisition lock times out).
func (dp *dataProtection) unprotectShareFetchResponse(pc protectCall, kr kmsg.Response) (bool, error) {
	resp := kr.(*kmsg.ShareFetchResponse)
	ts := make([]fetchedTopic, len(resp.Topics))
	for i := range resp.Topics {
		t := &resp.Topics[i]
		ts[i] = fetchedTopic{name: pc.req.topicLabel("", t.TopicID), parts: make([]fetchedPartition, len(t.Partitions))}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			ts[i].parts[j] = fetchedPartition{partition: p.Partition, errorCode: p.ErrorCode, records: &p.Records,
				fail: func(code int16, msg string) {
					p.ErrorCode, p.ErrorMessage = code, &msg
					p.Records, p.AcquiredRecords = nil, nil
				}}
		}
	}
	return dp.unprotectTopics(pc, ts)
}

// unprotectTopics verifies and decrypts the records of a fetched
// response: for every topic with a protection rule for the principal,
// each partition's records are verified and decrypted (or left as
// ciphertext, or masked) as the policy says. Unprotected topics, control
// batches and a partial trailing batch pass untouched. A partition that
// cannot be served gets an error and no records: KAFKA_STORAGE_ERROR (56,
// retriable) when a key is unavailable or the rule cannot be evaluated,
// CORRUPT_MESSAGE (2) for a bad signature under on_bad_signature: fail.
func (dp *dataProtection) unprotectTopics(pc protectCall, ts []fetchedTopic) (bool, error) {
	changed := false
	var conv recordConv
	// What verification and decryption found, for one data.protection
	// audit event per response.
	var reasons []string
	var withheld int16
	deny := false // records withheld or dropped (not only marked)
	// Made with the first finding: handed to the request's audit
	// (an interface call), it would otherwise be allocated per response.
	var topics map[string]bool
	found := func(name string, part int32, f *fetchFindings, onBad string) {
		if !f.any() {
			return
		}
		deny = deny || f.withheld != 0 || f.dropped > 0
		if topics == nil {
			topics = map[string]bool{}
		}
		topics[name] = true
		if withheld == 0 {
			withheld = f.withheld
		}
		if len(reasons) < maxAuditFindings {
			reasons = append(reasons, f.reason(name, part, onBad))
		}
	}
	for i := range ts {
		t := &ts[i]
		name := t.name
		cp, err := dp.protectionFor(pc, name)
		if err == nil && cp != nil && cp.err != nil {
			err = cp.err
		}
		if err != nil {
			pc.log.Warn("data protection rule unavailable; withholding the topic's records", zap.String("topic", name), zap.Error(err))
			dp.m.ruleUnavailable(len(t.parts))
			for j := range t.parts {
				t.parts[j].fail(kerr.KafkaStorageError.Code, "kguard: data protection rule for "+name+" unavailable")
				found(name, t.parts[j].partition, &fetchFindings{withheld: kerr.KafkaStorageError.Code}, "")
			}
			changed = true
			continue
		}
		if cp == nil {
			continue
		}
		pr := dp.protector
		for j := range t.parts {
			p := &t.parts[j]
			if p.errorCode != 0 || len(*p.records) == 0 {
				continue
			}
			onBad := onBadName(cp.fetch.OnBadSignature)
			if pr == nil {
				dp.m.noKMS()
				p.fail(kerr.KafkaStorageError.Code, "kguard: "+name+" is protected but kguard has no key service configured (crypto.kms)")
				found(name, p.partition, &fetchFindings{withheld: kerr.KafkaStorageError.Code}, onBad)
				changed = true
				continue
			}
			var f fetchFindings
			out, ch, err := unprotectRecords(pc.ctx, *p.records, name, pr, cp.fetch, &conv, &f)
			dp.m.fetched(len(*p.records), &f)
			if err != nil {
				code, msg := kerr.KafkaStorageError.Code, "kguard: a key for "+name+" is unavailable now; retry"
				corrupt := !crypto.IsRetriable(err)
				if corrupt {
					code, msg = kerr.CorruptMessage.Code, "kguard: "+name+": record failed signature verification or could not be read"
				}
				dp.m.fetchFailed(corrupt)
				pc.log.Warn("fetched partition withheld", zap.String("topic", name), zap.Int32("partition", p.partition),
					zap.Int16("code", code), zap.Error(err))
				p.fail(code, msg)
				f.withheld = code
				if errors.Is(err, crypto.ErrIntegrity) { // a signature under on_bad_signature: fail
					f.because(err)
				}
				found(name, p.partition, &f, onBad)
				changed = true
				continue
			}
			if f.unreadable > 0 {
				pc.log.Warn("fetched records could not be decrypted; delivered as stored", zap.String("topic", name),
					zap.Int32("partition", p.partition), zap.Int("records", f.unreadable))
			}
			if f.bad+f.missing > 0 && len(f.why) > 0 {
				pc.log.Warn("fetched records failed signature verification", zap.String("topic", name),
					zap.Int32("partition", p.partition), zap.Int("bad", f.bad), zap.Int("missing", f.missing),
					zap.String("on_bad_signature", onBad), zap.Strings("reasons", f.why))
			}
			found(name, p.partition, &f, onBad)
			if ch {
				*p.records = out
				changed = true
			}
		}
	}
	if len(reasons) > 0 {
		decision := audit.DecisionAllow // marked, or delivered as stored
		if deny {
			decision = audit.DecisionDeny
		}
		if err := pc.req.auditProtection("fetch", decision, withheld, reasons, topics); err != nil {
			return false, err // fail closed: no records without their audit event
		}
	}
	return changed, nil
}

func onBadName(a crypto.BadSignatureAction) string {
	switch a {
	case crypto.SigDrop:
		return "drop"
	case crypto.SigFail:
		return "fail"
	}
	return "mark"
}

// failFetchPartition withholds a Fetch partition (FetchResponse partitions
// carry no error message).
func failFetchPartition(p *kmsg.FetchResponseTopicPartition, code int16) {
	p.ErrorCode = code
	p.RecordBatches = nil
	p.AbortedTransactions = nil
}

// unprotectRecords verifies and decrypts every data batch of a fetched
// Records field. Batches nothing changed in are copied byte for byte
// (control batches, legacy messages, the partial tail too); records the
// policy drops (bad signature, on_bad_signature: drop) leave their batch,
// the others keep their offset deltas, so the consumer sees a gap as on a
// compacted topic and the batch header still says where the next fetch
// starts.
func unprotectRecords(ctx context.Context, src []byte, topic string, pr *crypto.Protector, fo crypto.FetchOptions, conv *recordConv, f *fetchFindings) (out []byte, changed bool, err error) {
	bs, tail, err := records.ParseBatches(src, records.Options{})
	if err != nil {
		return nil, false, err
	}
	var dst []byte
	for i := range bs {
		b := &bs[i]
		if b.IsLegacy() || b.IsControl() {
			if changed {
				dst = append(dst, b.Raw...)
			}
			continue
		}
		rs, err := b.RecordsInto(&conv.dec)
		if err != nil {
			return nil, false, err
		}
		crecs := conv.toCrypto(topic, rs)
		res, err := pr.UnprotectBatch(ctx, crecs, fo)
		if err != nil {
			b.Release()
			return nil, false, err
		}
		touched, drop := false, false
		for k := range res {
			r := &res[k]
			if r.Err != nil || r.Signature == crypto.SigBad || r.Signature == crypto.SigMissing {
				f.note(b.FirstOffset + int64(rs[k].OffsetDelta))
				f.claim(r.Producer)
				f.because(r.SigErr)
			}
			if r.Err != nil {
				f.unreadable++
			}
			if r.Protected {
				f.protected++
			}
			switch r.Signature {
			case crypto.SigOK:
				f.valid++
			case crypto.SigBad:
				f.bad++
			case crypto.SigMissing:
				f.missing++
			}
			if r.Drop {
				f.dropped++
			}
			drop = drop || r.Drop
			if r.Protected || r.Drop || len(crecs[k].Headers) != len(rs[k].Headers) {
				touched = true
			}
		}
		if !touched {
			if changed {
				dst = append(dst, b.Raw...)
			}
			b.Release()
			continue
		}
		conv.fromCrypto(rs)
		if drop {
			kept := rs[:0]
			for k := range rs {
				if !res[k].Drop {
					kept = append(kept, rs[k])
				}
			}
			rs = kept
		}
		if !changed {
			dst = make([]byte, 0, len(src)+len(src)/8)
			dst = append(dst, src[:b.Pos]...)
			changed = true
		}
		dst, err = records.EncodeBatch(dst, b, rs)
		b.Release()
		if err != nil {
			return nil, false, err
		}
	}
	if !changed {
		return src, false, nil
	}
	return append(dst, tail...), true, nil
}

// fetchFindings is what verification and decryption found in one fetched
// partition.
type fetchFindings struct {
	bad, missing, dropped, unreadable int
	protected, valid                  int      // for the metrics
	offsets                           []int64  // the first few records concerned
	claimed                           []string // producers the failed records' signatures name (a few)
	why                               []string // why their signatures failed (a few distinct reasons)
	withheld                          int16    // the partition's error code, 0 when served
}

const maxFindingOffsets = 10

func (f *fetchFindings) any() bool {
	return f.bad+f.missing+f.unreadable > 0 || f.withheld != 0
}

// claim notes the producer a failed record's signature claims.
func (f *fetchFindings) claim(p *crypto.Producer) {
	if p == nil {
		return
	}
	s := fmt.Sprintf("%q (tenant %q, client %q)", p.Principal, p.Tenant, p.ClientID)
	if len(f.claimed) < maxFindingOffsets && !slices.Contains(f.claimed, s) {
		f.claimed = append(f.claimed, s)
	}
}

// because notes why a record's signature failed (nil: it did not).
func (f *fetchFindings) because(err error) {
	if err == nil {
		return
	}
	if s := err.Error(); len(f.why) < maxFindingOffsets && !slices.Contains(f.why, s) {
		f.why = append(f.why, s)
	}
}

func (f *fetchFindings) note(offset int64) {
	if len(f.offsets) < maxFindingOffsets {
		f.offsets = append(f.offsets, offset)
	}
}

// reason is the audit line of f for topic/partition.
func (f *fetchFindings) reason(topic string, part int32, onBad string) string {
	var parts []string
	if f.withheld != 0 {
		parts = append(parts, fmt.Sprintf("partition withheld (%d)", f.withheld))
	}
	if f.bad > 0 {
		parts = append(parts, fmt.Sprintf("%d with a bad signature (%s)", f.bad, onBad))
	}
	if f.missing > 0 {
		parts = append(parts, fmt.Sprintf("%d without a signature (%s)", f.missing, onBad))
	}
	if f.unreadable > 0 {
		parts = append(parts, fmt.Sprintf("%d could not be decrypted (delivered as stored)", f.unreadable))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%d: %s", topic, part, strings.Join(parts, ", "))
	if len(f.offsets) > 0 {
		b.WriteString("; offsets ")
		for i, o := range f.offsets {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(o, 10))
		}
	}
	if len(f.why) > 0 {
		b.WriteString("; signature: ")
		b.WriteString(strings.Join(f.why, "; "))
	}
	if len(f.claimed) > 0 {
		b.WriteString("; claimed producer ")
		b.WriteString(strings.Join(f.claimed, ", "))
	}
	return b.String()
}
