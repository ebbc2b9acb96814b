package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/proxy/wire/records"
)

// partitionError is a kguard-made error for one partition.
type partitionError struct {
	Partition int32
	Code      int16
	Message   string
}

// protectErr maps an error of the produce step to a partition error.
func protectErr(part int32, topic string, err error) partitionError {
	var tl *tooLargeError
	if errors.As(err, &tl) {
		return partitionError{part, kerr.MessageTooLarge.Code, tl.Error()}
	}
	if crypto.IsRetriable(err) {
		return partitionError{part, kerr.KafkaStorageError.Code, "kguard: cannot protect records of " + topic + " now (key service unavailable); retry: " + err.Error()}
	}
	return partitionError{part, kerr.InvalidRecord.Code, "kguard: " + err.Error()}
}

// protectProduce is the stage on the way in (records: recordsIn), between
// planProduce and the forward: each allowed topic with a protection rule
// has its partitions encrypted and signed; an unprotected topic's batches
// are only checked for reserved kguard.* headers and go on as they are. A
// partition that cannot be protected leaves the forwarded request (never
// in plaintext) and gets a partition error in plan.Topics[i].Refused; a
// topic whose partitions all failed is no longer Allowed, and one
// data.protection event says what did not reach the log. It reports
// whether the forwarded request differs from the client's and how many
// bytes protection added to its records (to size the re-encoded request).
// An error is the event not recorded: the request fails closed. With the
// stage off (dp nil) the plan is untouched.
func (dp *dataProtection) protectProduce(pc protectCall, plan *producePlan) (rewritten bool, grown int, err error) {
	if dp == nil {
		return false, 0, nil
	}
	rewritten, grown = dp.protectPlan(pc, plan)
	return rewritten, grown, dp.auditRefused(pc, plan)
}

// protectPlan protects the allowed partitions of plan (see protectProduce).
func (dp *dataProtection) protectPlan(pc protectCall, plan *producePlan) (changed bool, grown int) {
	if plan.Forward == nil {
		return false, 0
	}
	fwd := plan.Forward
	// First the rules of every topic (policy calls, in order), then the
	// partitions of all protected topics together, in parallel.
	type topicWork struct {
		d       *topicDecision
		t       kmsg.ProduceRequestTopic
		lo, hi  int // its partitions' jobs, when protected
		parts   []kmsg.ProduceRequestTopicPartition
		refused []partitionError
		changed bool
	}
	work := make([]topicWork, 0, len(fwd.Topics))
	var jobs []partJob
	j := 0
	for i := range plan.Topics {
		d := &plan.Topics[i]
		if !d.Allowed {
			continue
		}
		w := topicWork{d: d, t: fwd.Topics[j]}
		j++
		cp, parts, refused, ch := dp.protectionOf(pc, d.Name, w.t.Partitions)
		if cp != nil {
			w.lo = len(jobs)
			tc := dp.topicConfig(pc, d.Name)
			for _, p := range w.t.Partitions {
				jobs = append(jobs, partJob{topic: d.Name, cp: cp, tc: tc, part: p})
			}
			w.hi = len(jobs)
		} else {
			w.parts, w.refused, w.changed = parts, refused, ch
		}
		work = append(work, w)
	}
	dp.runProtect(pc, jobs)
	kept := fwd.Topics[:0:0]
	for _, w := range work {
		if w.hi > w.lo {
			var g int
			w.parts, w.refused, w.changed, g = collect(jobs[w.lo:w.hi])
			grown += g
		}
		if len(w.refused) > 0 || w.changed {
			changed = true
			w.t.Partitions = w.parts
		}
		w.d.Refused = w.refused
		if len(w.parts) == 0 {
			w.d.Allowed = false
			continue
		}
		kept = append(kept, w.t)
	}
	if !changed {
		return false, grown
	}
	if len(kept) == 0 {
		plan.Forward = nil
		return true, grown
	}
	nf := *fwd
	nf.Topics = kept
	plan.Forward = &nf
	return true, grown
}

// protectionOf looks up topic's rule. A topic with a usable rule returns
// it (its partitions are then protected by runProtect); otherwise the
// outcome is final: the partitions to forward, the refused ones and
// whether anything changed (unprotected topics are only checked for
// reserved headers; a rule that cannot be applied refuses them all).
func (dp *dataProtection) protectionOf(pc protectCall, topic string, parts []kmsg.ProduceRequestTopicPartition) (*compiledProtection, []kmsg.ProduceRequestTopicPartition, []partitionError, bool) {
	cp, err := dp.protectionFor(pc, topic)
	if err != nil {
		pc.log.Warn("data protection rule unavailable; refusing the topic's records", zap.String("topic", topic), zap.Error(err))
		return nil, nil, refuseAll(parts, kerr.KafkaStorageError.Code, "kguard: data protection rule for "+topic+" unavailable: "+err.Error()), true
	}
	if cp == nil {
		out, refused, ch := dp.checkReserved(pc, topic, parts)
		return nil, out, refused, ch
	}
	if cp.err != nil {
		pc.log.Warn("data protection rule does not compile; refusing the topic's records", zap.String("topic", topic), zap.Error(cp.err))
		return nil, nil, refuseAll(parts, kerr.KafkaStorageError.Code, "kguard: data protection rule for "+topic+" is invalid: "+cp.err.Error()), true
	}
	if dp.protector == nil {
		return nil, nil, refuseAll(parts, kerr.KafkaStorageError.Code, "kguard: "+topic+" must be encrypted but kguard has no key service configured (crypto.kms)"), true
	}
	return cp, nil, nil, false
}

// partJob is the protection of one partition's records.
type partJob struct {
	topic string
	cp    *compiledProtection
	tc    topicConfig
	part  kmsg.ProduceRequestTopicPartition
	dst   []byte // pooled, held until the request is written
	out   []byte // the protected records
	err   error
	panic any // a panic while protecting, re-raised on the reader goroutine
}

// parallelMinBytes is the size of a request's protected records from
// which its partitions are protected on several cores at once (below it,
// starting goroutines costs more than it saves).
const parallelMinBytes = 64 << 10

// runProtect protects the jobs' records: one after the other for a small
// request, else on up to GOMAXPROCS goroutines, each with its own scratch,
// so that one connection's large produce request does not wait for one
// core. A panic in a worker is re-raised here, on the session's reader,
// whose containment closes only this connection.
func (dp *dataProtection) runProtect(pc protectCall, jobs []partJob) {
	if len(jobs) == 0 {
		return
	}
	total := 0
	for i := range jobs {
		// Protection grows a record by its kguard.enc and kguard.sig
		// headers and ciphertext overhead (about 40% for 1 KiB JSON with
		// two fields and a batch signature): one pooled buffer usually
		// fits them all.
		jobs[i].dst = pc.req.hold(len(jobs[i].part.Records) * 2)
		total += len(jobs[i].part.Records)
	}
	workers := min(len(jobs), runtime.GOMAXPROCS(0))
	if workers <= 1 || total < parallelMinBytes {
		conv := dp.getConv()
		defer dp.putConv(conv)
		for i := range jobs {
			dp.protectPartition(pc, &jobs[i], conv)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			conv := dp.getConv()
			defer dp.putConv(conv)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				func() {
					defer func() {
						if v := recover(); v != nil {
							jobs[i].panic = v
						}
					}()
					dp.protectPartition(pc, &jobs[i], conv)
				}()
			}
		})
	}
	wg.Wait()
	for i := range jobs {
		if jobs[i].panic != nil {
			panic(jobs[i].panic)
		}
	}
}

// protectPartition encrypts and signs one partition's batches into j.out.
// It runs on any goroutine: it touches only j, conv and shared read-only
// state.
func (dp *dataProtection) protectPartition(pc protectCall, j *partJob, conv *recordConv) {
	ctx, pr, prot := pc.ctx, dp.protector, j.cp.prot
	o := crypto.ProduceOptions{Producer: pc.producer(), Batched: j.tc.batched()}
	j.out, _, j.err = records.Rewrite(j.dst, j.part.Records, records.Options{RejectLegacy: true, RejectPartial: true, ProducedOffsets: true,
		Limiter: dp.decomp, Context: ctx, Scratch: &conv.dec},
		func(b *records.Batch, rs []records.Record) (bool, error) {
			before := recordBytes(rs)
			crecs := conv.toCrypto(j.topic, rs)
			// The records alias conv's scratch until Rewrite has
			// encoded this batch, before the next one.
			if err := pr.ProtectBatchWith(ctx, crecs, prot, &conv.scratch, o); err != nil {
				return false, err
			}
			conv.fromCrypto(rs)
			fitCodec(b, len(b.Raw)+recordBytes(rs)-before, j.tc)
			dp.m.protectedRecords(len(rs))
			return true, nil
		})
	if j.err == nil {
		j.err = checkBatchSizes(j.topic, j.part.Partition, j.part.Records, j.out, j.tc)
	}
	dp.m.protectedPartition(len(j.part.Records), j.err == nil)
	if j.err != nil {
		pc.log.Warn("partition refused: records could not be protected", zap.String("topic", j.topic),
			zap.Int32("partition", j.part.Partition), zap.Error(j.err))
	}
}

// collect turns one topic's finished jobs into the partitions to forward
// and the refused ones, and the bytes protection added to them.
func collect(jobs []partJob) ([]kmsg.ProduceRequestTopicPartition, []partitionError, bool, int) {
	out := make([]kmsg.ProduceRequestTopicPartition, 0, len(jobs))
	var refused []partitionError
	grown := 0
	for i := range jobs {
		j := &jobs[i]
		if j.err != nil {
			refused = append(refused, protectErr(j.part.Partition, j.topic, j.err))
			continue
		}
		grown += len(j.out) - len(j.part.Records)
		p := j.part
		p.Records = j.out
		out = append(out, p)
	}
	return out, refused, true, grown
}

func refuseAll(parts []kmsg.ProduceRequestTopicPartition, code int16, msg string) []partitionError {
	out := make([]partitionError, len(parts))
	for i, p := range parts {
		out[i] = partitionError{p.Partition, code, msg}
	}
	return out
}

// errReservedHeader: a client sent a kguard.* header.
var errReservedHeader = errors.New("reserved kguard.* header")

// checkReserved refuses partitions of an unprotected topic whose records
// carry a kguard.* header (a forged encryption or signature header would
// later pass for kguard's). Batches go on untouched: uncompressed ones
// without the bytes "kguard." are not even decoded.
func (dp *dataProtection) checkReserved(pc protectCall, topic string, parts []kmsg.ProduceRequestTopicPartition) ([]kmsg.ProduceRequestTopicPartition, []partitionError, bool) {
	var refused []partitionError
	var bad []bool
	for i, p := range parts {
		if err := scanReserved(pc.ctx, dp.decomp, p.Records); err != nil {
			if bad == nil {
				bad = make([]bool, len(parts))
			}
			bad[i] = true
			refused = append(refused, partitionError{p.Partition, kerr.InvalidRecord.Code, "kguard: " + topic + ": " + err.Error()})
		}
	}
	if bad == nil {
		return parts, nil, false
	}
	out := make([]kmsg.ProduceRequestTopicPartition, 0, len(parts)-len(refused))
	for i, p := range parts {
		if !bad[i] {
			out = append(out, p)
		}
	}
	return out, refused, true
}

var reservedBytes = []byte(reservedPrefix)

// scanReserved refuses src if a record carries a kguard.* header. Batches
// are streamed (ScanHeaderKeys): the scan never holds a batch's
// decompressed records, and takes a decompression slot of lim meanwhile.
func scanReserved(ctx context.Context, lim *records.Limiter, src []byte) error {
	if !bytes.Contains(src, reservedBytes) {
		// Uncompressed: no header can be named kguard.*. Compressed
		// bytes may hide it: decode those below.
		if !anyCompressed(src) {
			return nil
		}
	}
	bs, _, err := records.ParseBatches(src, records.Options{Limiter: lim, Context: ctx})
	if err != nil {
		return fmt.Errorf("unreadable record batch: %w", err)
	}
	for i := range bs {
		b := &bs[i]
		if b.IsLegacy() || b.IsControl() || (b.Codec() == records.CodecNone && !bytes.Contains(b.Raw, reservedBytes)) {
			continue
		}
		var found string
		err := b.ScanHeaderKeys(func(key []byte) error {
			if bytes.HasPrefix(key, reservedBytes) {
				found = string(key)
				return errReservedHeader
			}
			return nil
		})
		if found != "" {
			return fmt.Errorf("%w %q: only kguard writes it", errReservedHeader, found)
		}
		if err != nil {
			return fmt.Errorf("unreadable record batch: %w", err)
		}
	}
	return nil
}

// anyCompressed reports whether a batch of src is compressed, reading only
// the batch headers.
func anyCompressed(src []byte) bool {
	for len(src) >= 23 {
		n := int(int32(uint32(src[8])<<24 | uint32(src[9])<<16 | uint32(src[10])<<8 | uint32(src[11])))
		if src[16] == 2 && src[22]&0x07 != 0 { // legacy messages have no headers
			return true
		}
		if n < 0 || 12+n > len(src) {
			return false
		}
		src = src[12+n:]
	}
	return false
}

// produceResponseTopic answers request topic t: every partition refused
// by kguard gets its error; a denied topic's others get d.Code.
func produceResponseTopic(t *kmsg.ProduceRequestTopic, d *topicDecision) kmsg.ProduceResponseTopic {
	rt := produceDenied(t, d.Code, d.Message)
	applyRefused(&rt, d.Refused)
	return rt
}

func applyRefused(rt *kmsg.ProduceResponseTopic, refused []partitionError) {
	for _, pe := range refused {
		msg := pe.Message
		found := false
		for k := range rt.Partitions {
			if rt.Partitions[k].Partition == pe.Partition {
				rp := &rt.Partitions[k]
				rp.ErrorCode, rp.ErrorMessage, rp.BaseOffset = pe.Code, &msg, -1
				found = true
			}
		}
		if !found {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.BaseOffset, rp.ErrorMessage = pe.Partition, pe.Code, -1, &msg
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
}

// mergeRefused adds the refused partitions of topics that were still
// forwarded into the upstream's response (after mergeInOrder).
func mergeRefused(r *kmsg.ProduceRequest, plan *producePlan, resp *kmsg.ProduceResponse) {
	for i := range plan.Topics {
		d := &plan.Topics[i]
		if !d.Allowed || len(d.Refused) == 0 {
			continue
		}
		k := topicKey(r.Topics[i].Topic, r.Topics[i].TopicID)
		for j := range resp.Topics {
			if topicKey(resp.Topics[j].Topic, resp.Topics[j].TopicID) == k {
				applyRefused(&resp.Topics[j], d.Refused)
				break
			}
		}
	}
}

// auditRefused records a data.protection event for the produced
// partitions kguard refused after authorization (records that could not be
// encrypted and signed, or that carried a forged kguard.* header), with
// each partition's error. The authz.decision event before it said
// "allow": this one says what did not reach the log, and why. An error
// fails the request closed, like any audit failure.
func (dp *dataProtection) auditRefused(pc protectCall, plan *producePlan) error {
	var reasons []string
	var code int16
	var topics map[string]bool // made with the first refusal (see unprotectTopics)
	for i := range plan.Topics {
		d := &plan.Topics[i]
		for _, pe := range d.Refused {
			if code == 0 {
				code = pe.Code
			}
			if topics == nil {
				topics = map[string]bool{}
			}
			topics[d.Name] = true
			if len(reasons) < maxAuditFindings {
				reasons = append(reasons, fmt.Sprintf("%s/%d: refused (%d): %s", d.Name, pe.Partition, pe.Code, pe.Message))
			}
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return pc.req.auditProtection("produce", audit.DecisionDeny, code, reasons, topics)
}

// fitCodec compresses (LZ4) an uncompressed batch whose protected size
// (estimated: its size plus what protection added to its records) is over
// the topic's max.message.bytes: a producer with default settings sends
// uncompressed batches up to about 1 MB, which the broker's default limit
// (1 MiB) leaves about 5% of room, less than encrypted JSON fields add.
// Every Kafka client reads LZ4 batches. Compressed batches keep their
// codec.
func fitCodec(b *records.Batch, size int, tc topicConfig) {
	if !tc.known || tc.maxMessageBytes <= 0 || b.Codec() != records.CodecNone || size <= tc.maxMessageBytes {
		return
	}
	b.Attributes = b.Attributes&^0x07 | int16(records.CodecLz4)
}

// recordBytes is the bytes of rs' keys, values and headers, which
// protection changes (what it adds to a batch, up to a few varint bytes).
func recordBytes(rs []records.Record) int {
	n := 0
	for i := range rs {
		n += len(rs[i].Key) + len(rs[i].Value)
		for _, h := range rs[i].Headers {
			n += len(h.Key) + len(h.Value) + 2
		}
	}
	return n
}

// tooLargeError: a batch protection made larger than the topic's
// max.message.bytes. The partition is answered MESSAGE_TOO_LARGE instead
// of being forwarded to fail at the broker.
type tooLargeError struct {
	topic     string
	partition int32
	before    int // the client's batch
	after     int // the protected batch
	max       int
}

func (e *tooLargeError) Error() string {
	// the largest client batch that would fit, at the growth measured here
	fit := int(float64(e.max) * float64(e.before) / float64(e.after))
	return fmt.Sprintf("kguard: data protection grew the record batch for %s-%d from %d to %d bytes (+%d, +%.0f%%), over the topic's max.message.bytes %d; produce batches of at most about %d bytes (batch.size / max.request.size / message.max.bytes)",
		e.topic, e.partition, e.before, e.after, e.after-e.before, 100*float64(e.after-e.before)/float64(max(e.before, 1)), e.max, fit)
}

// checkBatchSizes checks every protected batch of out (the protected form
// of in) against the topic's max.message.bytes, as the broker does (the
// batch with its 12-byte log overhead). Unknown configuration: no check
// (the broker still enforces its limit).
func checkBatchSizes(topic string, part int32, in, out []byte, tc topicConfig) error {
	if !tc.known || tc.maxMessageBytes <= 0 {
		return nil
	}
	largest := 0
	for b := out; len(b) >= 12; {
		n := 12 + int(int32(binary.BigEndian.Uint32(b[8:12])))
		if n < 12 || n > len(b) {
			break
		}
		largest = max(largest, n)
		b = b[n:]
	}
	if largest <= tc.maxMessageBytes {
		return nil
	}
	return &tooLargeError{topic: topic, partition: part, before: len(in), after: len(out), max: tc.maxMessageBytes}
}
