package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Severity grades a finding. Only SeverityError makes a Report fail.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// FindingKind names what the verifier found.
type FindingKind string

// Finding kinds.
const (
	FindingMalformed      FindingKind = "malformed"       // record is not a valid event
	FindingAltered        FindingKind = "altered"         // event content differs from what its successor chained
	FindingDeleted        FindingKind = "deleted"         // sequence numbers missing from the chain
	FindingInserted       FindingKind = "inserted"        // an event that is not part of the chain
	FindingReordered      FindingKind = "reordered"       // event stored after a later one
	FindingDuplicate      FindingKind = "duplicate"       // identical redelivery (at-least-once shipping), benign
	FindingDeclaredGap    FindingKind = "declared_gap"    // gap marker: events dropped by continue-with-alarm
	FindingBadSignature   FindingKind = "bad_signature"   // checkpoint signature or origin invalid
	FindingRootMismatch   FindingKind = "root_mismatch"   // checkpoint root differs from the events' Merkle root
	FindingUnverifiable   FindingKind = "unverifiable"    // checkpoint root cannot be recomputed (missing prefix)
	FindingPrefixMissing  FindingKind = "prefix_missing"  // chain does not start at seq 1 (retention or DeleteRecords)
	FindingNoCheckpoint   FindingKind = "no_checkpoint"   // events after the last checkpoint are covered by the chain only
	FindingMultiPartition FindingKind = "multi_partition" // one instance's events in several partitions
)

// Position is where a record is stored.
type Position struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func (p Position) String() string { return fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.Offset) }

// Finding is one problem or observation.
type Finding struct {
	Severity Severity    `json:"severity"`
	Kind     FindingKind `json:"kind"`
	Instance string      `json:"instance"`
	Seq      uint64      `json:"seq"`
	Position Position    `json:"position"`
	Detail   string      `json:"detail"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%-7s %-15s instance=%s seq=%d at %s: %s", f.Severity, f.Kind, f.Instance, f.Seq, f.Position, f.Detail)
}

// InstanceReport summarizes one instance's chain.
type InstanceReport struct {
	Instance            string  `json:"instance"`
	Events              int     `json:"events"` // distinct events in the chain
	FirstSeq            uint64  `json:"first_seq"`
	LastSeq             uint64  `json:"last_seq"`
	Checkpoints         int     `json:"checkpoints"`
	VerifiedCheckpoints int     `json:"verified_checkpoints"` // signature and root both verified
	VerifiedSize        uint64  `json:"verified_size"`        // largest tree size covered by a verified checkpoint
	AnchoredAt          uint64  `json:"anchored_at"`          // seq of the checkpoint the tree was continued from (0: from seq 1)
	Partitions          []int32 `json:"partitions"`
}

// Report is the verifier's result.
type Report struct {
	Topic     string           `json:"topic"`
	Records   int64            `json:"records"`
	Instances []InstanceReport `json:"instances"`
	Findings  []Finding        `json:"findings"`
}

// OK reports whether no error-severity finding was made. Warnings (declared
// gaps, expired prefixes) and info findings do not fail a report.
func (r *Report) OK() bool { return r.Errors() == 0 }

// Errors counts error-severity findings.
func (r *Report) Errors() int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			n++
		}
	}
	return n
}

// Has reports whether a finding of kind k exists.
func (r *Report) Has(k FindingKind) bool {
	for _, f := range r.Findings {
		if f.Kind == k {
			return true
		}
	}
	return false
}

// WriteText writes a human-readable report.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "audit topic %s: %d records, %d instances\n", r.Topic, r.Records, len(r.Instances))
	for _, in := range r.Instances {
		fmt.Fprintf(&b, "  instance %s: %d events, seq %d..%d, partitions %v, checkpoints %d (%d verified, covering %d events)\n",
			in.Instance, in.Events, in.FirstSeq, in.LastSeq, in.Partitions, in.Checkpoints, in.VerifiedCheckpoints, in.VerifiedSize)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s\n", f)
	}
	if r.OK() {
		fmt.Fprintf(&b, "OK: chain, checkpoints and signatures verified\n")
	} else {
		fmt.Fprintf(&b, "FAILED: %d problem(s)\n", r.Errors())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// VerifyConfig configures Verify.
type VerifyConfig struct {
	// ClientOpts reach the cluster (see KafkaOptions.ClientOpts). The
	// verifier consumes without a group, from the start to the high
	// watermark read when it starts.
	ClientOpts []kgo.Opt
	Topic      string // default DefaultTopic
	// PublicKeys verify checkpoint signatures (matched by key id).
	PublicKeys []ed25519.PublicKey
	// ProgressEvery writes a progress line every this many records (default 10000).
	ProgressEvery int
	// AllowPrefixLoss accepts a chain that does not start at seq 1 (the
	// head of the topic expired by retention) as a warning. By default it
	// is an error: DeleteRecords by a superuser truncates the head too.
	AllowPrefixLoss bool
	// OnEvent, when set, is called with every decoded event in storage
	// order (duplicates and forged events included; the Report says which
	// positions are not part of a chain). Readers such as `kguard
	// compliance report` build their figures from it while the chain is
	// verified in the same pass.
	OnEvent func(Event, Position)
}

// entry is what the verifier keeps per record (no payloads).
type entry struct {
	seq        uint64
	hash, prev Hash
	pos        Position
	typ        EventType
	ckpt       *Checkpoint
	gap        *Gap
}

type instState struct {
	entries    []entry
	partitions map[int32]bool
}

// Verify reads the audit topic from the beginning to the high watermark
// and checks each instance's chain and checkpoints. The error is for
// failures to read; problems with the trail are Findings in the Report.
func Verify(ctx context.Context, cfg VerifyConfig, progress io.Writer) (Report, error) {
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 10000
	}
	if progress == nil {
		progress = io.Discard
	}
	rep := Report{Topic: cfg.Topic}
	if len(cfg.PublicKeys) == 0 {
		return rep, errors.New("audit: verify needs at least one checkpoint public key")
	}
	admCl, err := kgo.NewClient(cfg.ClientOpts...)
	if err != nil {
		return rep, fmt.Errorf("audit: kafka client: %w", err)
	}
	adm := kadm.NewClient(admCl)
	starts, err := adm.ListStartOffsets(ctx, cfg.Topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		admCl.Close()
		return rep, fmt.Errorf("audit: list start offsets of %s: %w", cfg.Topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, cfg.Topic)
	if err == nil {
		err = ends.Error()
	}
	admCl.Close()
	if err != nil {
		return rep, fmt.Errorf("audit: list end offsets of %s: %w", cfg.Topic, err)
	}
	if len(ends[cfg.Topic]) == 0 {
		return rep, fmt.Errorf("audit: topic %s not found", cfg.Topic)
	}
	want := map[int32]int64{} // partition -> high watermark
	consume := map[int32]kgo.Offset{}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		if o.Offset > s.Offset {
			want[o.Partition] = o.Offset
			consume[o.Partition] = kgo.NewOffset().At(s.Offset)
			total += o.Offset - s.Offset
		}
	})
	fmt.Fprintf(progress, "audit verify: reading %d records from %d partitions of %s\n", total, len(want), cfg.Topic)

	insts := map[string]*instState{}
	if len(want) > 0 {
		cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), cfg.ClientOpts...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: consume}),
			// Control records (a transactional write) are returned so the
			// last offset below the high watermark is always seen.
			kgo.KeepControlRecords())...)
		if err != nil {
			return rep, fmt.Errorf("audit: kafka consumer: %w", err)
		}
		defer cl.Close()
		for len(want) > 0 {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return rep, fmt.Errorf("audit: verify interrupted after %d of %d records: %w", rep.Records, total, err)
			}
			var ferr error
			fs.EachError(func(t string, p int32, err error) {
				if ferr == nil {
					ferr = fmt.Errorf("audit: fetch %s/%d: %w", t, p, err)
				}
			})
			if ferr != nil {
				return rep, ferr
			}
			fs.EachRecord(func(rec *kgo.Record) {
				hwm, ok := want[rec.Partition]
				if !ok || rec.Offset >= hwm {
					return
				}
				if rec.Offset == hwm-1 {
					delete(want, rec.Partition)
				}
				if rec.Attrs.IsControl() {
					rep.Findings = append(rep.Findings, Finding{Severity: SeverityWarning, Kind: FindingMalformed,
						Position: Position{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset},
						Detail:   "transaction control record: kguard never writes transactionally"})
					return
				}
				rep.Records++
				if rep.Records%int64(cfg.ProgressEvery) == 0 {
					fmt.Fprintf(progress, "audit verify: %d/%d records read\n", rep.Records, total)
				}
				addRecord(&rep, insts, rec, cfg.OnEvent)
			})
		}
		fmt.Fprintf(progress, "audit verify: %d/%d records read; checking chains\n", rep.Records, total)
	}

	names := make([]string, 0, len(insts))
	for n := range insts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rep.Instances = append(rep.Instances, checkInstance(&rep, n, insts[n], cfg.PublicKeys, cfg.AllowPrefixLoss))
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i], rep.Findings[j]
		if a.Instance != b.Instance {
			return a.Instance < b.Instance
		}
		if a.Position.Partition != b.Position.Partition {
			return a.Position.Partition < b.Position.Partition
		}
		return a.Position.Offset < b.Position.Offset
	})
	return rep, nil
}

func addRecord(rep *Report, insts map[string]*instState, rec *kgo.Record, onEvent func(Event, Position)) {
	pos := Position{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	ev, err := DecodeEvent(rec.Value)
	if err != nil {
		rep.Findings = append(rep.Findings, Finding{Severity: SeverityError, Kind: FindingMalformed,
			Instance: string(rec.Key), Position: pos, Detail: err.Error()})
		return
	}
	if onEvent != nil {
		onEvent(ev, pos)
	}
	inst := ev.Where.Instance
	if !bytes.Equal(rec.Key, []byte(inst)) {
		rep.Findings = append(rep.Findings, Finding{Severity: SeverityError, Kind: FindingInserted,
			Instance: inst, Seq: ev.Seq, Position: pos,
			Detail: fmt.Sprintf("record key %q differs from the event's instance (kguard keys by instance)", rec.Key)})
		return
	}
	st := insts[inst]
	if st == nil {
		st = &instState{partitions: map[int32]bool{}}
		insts[inst] = st
	}
	st.partitions[rec.Partition] = true
	st.entries = append(st.entries, entry{seq: ev.Seq, hash: HashEvent(rec.Value), prev: ev.Prev,
		pos: pos, typ: ev.Type, ckpt: ev.Checkpoint, gap: ev.Gap})
}

// checkInstance verifies one instance's chain. Events are grouped by seq
// and walked in seq order; among several different events with one seq the
// one that chains to its predecessor and successor is the genuine one.
func checkInstance(rep *Report, name string, st *instState, keys []ed25519.PublicKey, allowPrefixLoss bool) InstanceReport {
	ir := InstanceReport{Instance: name}
	for p := range st.partitions {
		ir.Partitions = append(ir.Partitions, p)
	}
	sort.Slice(ir.Partitions, func(i, j int) bool { return ir.Partitions[i] < ir.Partitions[j] })
	es := st.entries
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].pos.Partition != es[j].pos.Partition {
			return es[i].pos.Partition < es[j].pos.Partition
		}
		return es[i].pos.Offset < es[j].pos.Offset
	})
	add := func(sev Severity, kind FindingKind, seq uint64, pos Position, format string, args ...any) {
		rep.Findings = append(rep.Findings, Finding{Severity: sev, Kind: kind, Instance: name, Seq: seq,
			Position: pos, Detail: fmt.Sprintf(format, args...)})
	}
	if len(ir.Partitions) > 1 {
		add(SeverityWarning, FindingMultiPartition, 0, es[0].pos,
			"events of this instance are in partitions %v; order across partitions is by offset only", ir.Partitions)
	}

	bySeq := map[uint64][]int{}
	var seqs []uint64
	for i, e := range es {
		if _, ok := bySeq[e.seq]; !ok {
			seqs = append(seqs, e.seq)
		}
		bySeq[e.seq] = append(bySeq[e.seq], i)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })

	excluded := make([]bool, len(es)) // inserted or duplicate: not part of the chain
	var head *entry
	var duplicates int
	var firstDup Position
	tr := newTree()
	treeOK := true // tree holds every event from seq 1 without holes
	lastCkptSeq := uint64(0)

	for _, s := range seqs {
		idxs := bySeq[s]
		// Distinct variants, first occurrence in storage order.
		var variants []int
		for _, i := range idxs {
			dup := false
			for _, v := range variants {
				if es[v].hash == es[i].hash {
					dup = true
					break
				}
			}
			if dup {
				excluded[i] = true
				if duplicates == 0 {
					firstDup = es[i].pos
				}
				duplicates++
				continue
			}
			variants = append(variants, i)
		}
		switch {
		case head == nil && s != 1:
			sev := SeverityError
			if allowPrefixLoss {
				sev = SeverityWarning
			}
			add(sev, FindingPrefixMissing, s, es[variants[0]].pos,
				"chain starts at seq %d: events 1..%d are not on the topic (expired by retention, or deleted)", s, s-1)
			treeOK = false
		case head != nil && s > head.seq+1:
			add(SeverityError, FindingDeleted, head.seq+1, es[variants[0]].pos,
				"events with seq %d..%d are missing between %s (seq %d) and %s (seq %d) (deleted, or the latter was forged)",
				head.seq+1, s-1, head.pos, head.seq, es[variants[0]].pos, s)
			treeOK = false
		}
		var next []int
		if ns, ok := bySeq[s+1]; ok {
			next = ns
		}
		chosen := pickVariant(es, variants, head, next)
		for _, v := range variants {
			if v == chosen {
				continue
			}
			excluded[v] = true
			add(SeverityError, FindingInserted, s, es[v].pos,
				"event with seq %d is not part of the chain (the chained event with that seq is at %s)", s, es[chosen].pos)
		}
		c := &es[chosen]
		switch {
		case head == nil && s == 1 && c.prev != (Hash{}):
			add(SeverityError, FindingAltered, s, c.pos, "first event of the chain has a non-zero prev hash")
		case head != nil && s == head.seq+1 && c.prev != head.hash:
			add(SeverityError, FindingAltered, head.seq, head.pos,
				"event seq %d does not match the hash recorded in seq %d at %s (its content was changed)",
				head.seq, s, c.pos)
		}
		if c.gap != nil {
			add(SeverityWarning, FindingDeclaredGap, s, c.pos,
				"recorder declared %d events dropped (spool full) between %s and %s",
				c.gap.Dropped, c.gap.First.Format(time.RFC3339), c.gap.Last.Format(time.RFC3339))
		}
		if c.ckpt != nil {
			ir.Checkpoints++
			lastCkptSeq = s
			ok := true
			switch err := VerifyCheckpoint(c.ckpt, keys); {
			case err != nil:
				add(SeverityError, FindingBadSignature, s, c.pos, "%v", err)
				ok = false
			case c.ckpt.Origin != name:
				add(SeverityError, FindingBadSignature, s, c.pos, "checkpoint origin %q is not instance %q", c.ckpt.Origin, name)
				ok = false
			case c.ckpt.Size != s-1:
				add(SeverityError, FindingBadSignature, s, c.pos, "checkpoint covers %d events but is event %d", c.ckpt.Size, s)
				ok = false
			case !treeOK:
				// Anchor: continue the tree from the signed compact range.
				at, err := treeFromHashes(c.ckpt.Size, c.ckpt.Range)
				if err != nil || !bytes.Equal(at.root(), c.ckpt.Root) {
					add(SeverityError, FindingBadSignature, s, c.pos, "checkpoint range does not hash to its signed root")
					ok = false
					break
				}
				add(SeverityWarning, FindingUnverifiable, s, c.pos,
					"root over events 1..%d cannot be recomputed (not all of them are on the topic); later checkpoints are verified from this one's signed range", c.ckpt.Size)
				tr, treeOK, ok = at, true, false
				ir.AnchoredAt = s
			case !bytes.Equal(tr.root(), c.ckpt.Root):
				add(SeverityError, FindingRootMismatch, s, c.pos,
					"signed Merkle root over events 1..%d does not match the events on the topic (an event in that range was altered, inserted or deleted)", c.ckpt.Size)
				ok = false
			case c.ckpt.Range != nil && !rangeEqual(tr.r.Hashes(), c.ckpt.Range):
				add(SeverityError, FindingBadSignature, s, c.pos, "checkpoint range is not the compact range of events 1..%d", c.ckpt.Size)
				ok = false
			}
			if ok {
				ir.VerifiedCheckpoints++
				ir.VerifiedSize = c.ckpt.Size
			}
		}
		if treeOK {
			tr.append(c.hash)
		}
		if head == nil {
			ir.FirstSeq = s
		}
		head = c
		ir.Events++
	}
	if head != nil {
		ir.LastSeq = head.seq
		if lastCkptSeq != head.seq && head.typ != EventCheckpoint {
			add(SeverityInfo, FindingNoCheckpoint, head.seq, head.pos,
				"events %d..%d follow the last checkpoint; they are protected by the hash chain only", lastCkptSeq+1, head.seq)
		}
	}
	if duplicates > 0 {
		add(SeverityInfo, FindingDuplicate, 0, firstDup,
			"%d identical redeliveries (at-least-once shipping after a retry); ignored", duplicates)
	}
	// Storage order: a chain event stored after an event with a higher seq.
	var maxSeq uint64
	var maxPos Position
	for i, e := range es {
		if excluded[i] {
			continue
		}
		if e.seq < maxSeq {
			add(SeverityError, FindingReordered, e.seq, e.pos,
				"event seq %d is stored after seq %d at %s", e.seq, maxSeq, maxPos)
			continue
		}
		maxSeq, maxPos = e.seq, e.pos
	}
	return ir
}

// pickVariant chooses the genuine event among events sharing a seq: the
// one chaining to the accepted predecessor, then the one the successor
// chains to, then the earliest stored.
func pickVariant(es []entry, variants []int, head *entry, next []int) int {
	if len(variants) == 1 {
		return variants[0]
	}
	cands := variants
	if head != nil && head.seq+1 == es[variants[0]].seq {
		var m []int
		for _, v := range variants {
			if es[v].prev == head.hash {
				m = append(m, v)
			}
		}
		if len(m) > 0 {
			cands = m
		}
	}
	if len(cands) > 1 {
		var m []int
		for _, v := range cands {
			for _, n := range next {
				if es[n].prev == es[v].hash {
					m = append(m, v)
					break
				}
			}
		}
		if len(m) > 0 {
			cands = m
		}
	}
	return cands[0]
}

// ErrVerifyFailed is returned by RunVerify when the report has errors.
var ErrVerifyFailed = errors.New("audit: verification failed")

// VerifyOptions are the `kguard audit verify` settings.
type VerifyOptions struct {
	Kafka          KafkaOptions
	Topic          string   // default DefaultTopic
	PublicKeyFiles []string // PEM Ed25519 public keys (see GenerateKeyFile)
	ProgressEvery  int
	Timeout        time.Duration // 0: no limit beyond ctx
	// AllowPrefixLoss: see VerifyConfig (a CLI flag such as --allow-expired).
	AllowPrefixLoss bool
}

// RunVerify runs Verify with opts and writes progress and the report to
// out. It returns an error wrapping ErrVerifyFailed when the trail has any
// error-severity finding, so the CLI can exit non-zero.
func RunVerify(ctx context.Context, opts VerifyOptions, out io.Writer) error {
	cops, err := opts.Kafka.ClientOpts()
	if err != nil {
		return err
	}
	var keys []ed25519.PublicKey
	for _, f := range opts.PublicKeyFiles {
		k, err := LoadPublicKey(f)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	rep, err := Verify(ctx, VerifyConfig{ClientOpts: cops, Topic: opts.Topic, PublicKeys: keys,
		ProgressEvery: opts.ProgressEvery, AllowPrefixLoss: opts.AllowPrefixLoss}, out)
	if err != nil {
		return err
	}
	if err := rep.WriteText(out); err != nil {
		return fmt.Errorf("audit: write report: %w", err)
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d problem(s) in %s", ErrVerifyFailed, rep.Errors(), rep.Topic)
	}
	return nil
}

func rangeEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
