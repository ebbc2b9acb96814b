package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// FsyncPolicy says when spool writes are flushed to stable storage. Every
// Record is written to the spool file with one write(2) before it returns,
// so it survives the kguard process being killed under every policy; the
// policy only matters for machine crashes and power loss.
type FsyncPolicy int

const (
	// FsyncInterval flushes the spool every Config.FsyncInterval (default).
	FsyncInterval FsyncPolicy = iota
	// FsyncAlways makes Record return only after its event is flushed.
	// Concurrent Records share one fsync (group commit).
	FsyncAlways
	// FsyncNever leaves flushing to the operating system.
	FsyncNever
)

// ParseFsyncPolicy parses "interval", "always" or "never".
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	switch s {
	case "", "interval":
		return FsyncInterval, nil
	case "always":
		return FsyncAlways, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("audit: unknown fsync policy %q (want interval, always or never)", s)
}

// FullPolicy says what Record does when the spool is full.
type FullPolicy int

const (
	// FailClosed makes Record return ErrSpoolFull; the proxy answers the
	// request with a retriable Kafka error. This is the default.
	FailClosed FullPolicy = iota
	// ContinueWithAlarm drops the event, counts it, logs, and writes a
	// gap marker event into the chain once space is available again.
	ContinueWithAlarm
)

// ParseFullPolicy parses "fail-closed" or "continue-with-alarm".
func ParseFullPolicy(s string) (FullPolicy, error) {
	switch s {
	case "", "fail-closed":
		return FailClosed, nil
	case "continue-with-alarm":
		return ContinueWithAlarm, nil
	}
	return 0, fmt.Errorf("audit: unknown spool-full policy %q (want fail-closed or continue-with-alarm)", s)
}

// Errors returned by Record.
var (
	// ErrSpoolFull is returned by Record in FailClosed mode when the spool
	// has no room; the request should fail with a retriable error.
	ErrSpoolFull = errors.New("audit: spool full")
	// ErrClosed is returned by Record after Close.
	ErrClosed = errors.New("audit: recorder closed")
)

// Spooled is one spooled event handed to a Sink.
type Spooled struct {
	Seq   uint64
	Value []byte // the canonical encoding
}

// Sink receives spooled events in seq order. Send returns nil only after
// every event of the batch is durably acknowledged; on error the whole
// batch is sent again (so a sink must tolerate duplicates downstream, which
// the verifier reports as benign redeliveries).
type Sink interface {
	Send(ctx context.Context, instance string, batch []Spooled) error
}

// Config configures a Recorder.
type Config struct {
	// InstanceID names this kguard instance's chain (and is the Kafka key
	// and the checkpoint origin). Required; it must stay the same across
	// restarts over the same spool.
	InstanceID string
	// ClusterID is copied into every event's where.cluster.
	ClusterID string
	// SpoolDir holds the spool. Required.
	SpoolDir string
	// SpoolMaxBytes bounds the spool on disk (default 1 GiB).
	SpoolMaxBytes int64
	// SegmentBytes is the size at which a new segment starts (default
	// min(64 MiB, SpoolMaxBytes/8)). Shipped segments are deleted whole.
	SegmentBytes int64
	// Fsync is the flush policy; FsyncInterval uses FsyncInterval (default 1s).
	Fsync         FsyncPolicy
	FsyncInterval time.Duration
	// OnFull is the spool-full policy (default FailClosed).
	OnFull FullPolicy
	// CheckpointEvery writes a checkpoint after this many events (default
	// 1000); CheckpointInterval writes one after this much time when there
	// were new events (default 1 minute).
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// Signer signs checkpoints. Required.
	Signer *Signer
	// Sink receives the events. Required. The Recorder does not close it.
	Sink Sink
	// ShipBatch bounds the events per Sink.Send (default 500).
	ShipBatch int
	// Logger (default zap.NewNop()). Metrics (optional) counts; register
	// it on your own prometheus registry.
	Logger  *zap.Logger
	Metrics *Metrics
	// Now is the clock (default time.Now); tests override it.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.InstanceID == "" {
		return errors.New("audit: Config.InstanceID is required")
	}
	if c.SpoolDir == "" {
		return errors.New("audit: Config.SpoolDir is required")
	}
	if c.Signer == nil {
		return errors.New("audit: Config.Signer is required")
	}
	if c.Sink == nil {
		return errors.New("audit: Config.Sink is required")
	}
	if c.SpoolMaxBytes <= 0 {
		c.SpoolMaxBytes = 1 << 30
	}
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = min(64<<20, c.SpoolMaxBytes/8)
	}
	if c.SegmentBytes < 4096 {
		c.SegmentBytes = 4096
	}
	if c.FsyncInterval <= 0 {
		c.FsyncInterval = time.Second
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 1000
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = time.Minute
	}
	if c.ShipBatch <= 0 {
		c.ShipBatch = 500
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Recorder assigns sequence numbers and chain hashes, appends events to the
// spool and ships them to the sink in the background. It is safe for
// concurrent use.
type Recorder struct {
	cfg Config
	log *zap.Logger
	m   *Metrics

	mu        sync.Mutex
	sp        *spool
	seq       uint64
	last      Hash
	tree      *tree
	sinceCkpt int
	closed    bool
	fullSince bool // a spool-full episode is in progress (log once)
	dropped   uint64
	dropFirst time.Time
	dropLast  time.Time
	hdr       []byte

	// refusing: the last event did not fit the full spool in fail-closed
	// mode, and nothing was shipped or appended since (Refusing).
	refusing bool
	// marks are (seq, time) of the first event recorded in each second
	// that is not yet shipped, oldest first: the oldest unshipped event's
	// age for the metrics. Bounded by maxMarks (older marks are kept,
	// so the age is never understated).
	marks []seqMark

	shipped   uint64     // guarded by mu; highest seq acknowledged by the sink
	savedTree uint64     // guarded by mu; size of the persisted tree state
	saveMu    sync.Mutex // serializes tree state writes
	syncMu    sync.Mutex // serializes group-commit fsyncs
	synced    uint64     // guarded by syncMu; seq flushed by FsyncAlways

	wake     chan struct{}
	shippedC *sync.Cond
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New opens (or creates) the spool in cfg.SpoolDir, recovers the chain from
// it (truncating a torn tail record), records an audit.start event and
// starts the background shipper. Events spooled but not yet shipped by a
// previous run are shipped first.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger, m: cfg.Metrics, wake: make(chan struct{}, 1)}
	r.shippedC = sync.NewCond(&r.mu)

	st, tr, err := readTreeState(cfg.SpoolDir)
	if err != nil {
		return nil, err
	}
	if st.Instance != "" && st.Instance != cfg.InstanceID {
		return nil, fmt.Errorf("audit: spool %s belongs to instance %q, not %q", cfg.SpoolDir, st.Instance, cfg.InstanceID)
	}
	r.tree, r.seq, r.last = tr, st.Size, st.LastHash
	checked := false
	visit := func(seq uint64, payload []byte) error {
		if !checked {
			checked = true
			e, err := DecodeEvent(payload)
			if err != nil {
				return fmt.Errorf("audit: spooled event %d: %w", seq, err)
			}
			if e.Where.Instance != cfg.InstanceID {
				return fmt.Errorf("audit: spool %s belongs to instance %q, not %q", cfg.SpoolDir, e.Where.Instance, cfg.InstanceID)
			}
		}
		if seq <= st.Size {
			return nil
		}
		if seq != r.seq+1 {
			return fmt.Errorf("audit: spool starts at seq %d but tree state ends at %d (spool state lost?)", seq, r.seq)
		}
		h := HashEvent(payload)
		r.tree.append(h)
		r.seq, r.last = seq, h
		return nil
	}
	sp, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes, cfg.SegmentBytes, cfg.Fsync, r.log, visit)
	if err != nil {
		return nil, err
	}
	r.sp = sp
	if sp.lastSeq() != 0 && sp.lastSeq() != r.seq {
		sp.close()
		return nil, fmt.Errorf("audit: spool ends at seq %d but the chain ends at %d", sp.lastSeq(), r.seq)
	}
	cur, err := readCursor(cfg.SpoolDir)
	if err != nil {
		sp.close()
		return nil, err
	}
	if cur > r.seq {
		sp.close()
		return nil, fmt.Errorf("audit: spool cursor %d is past the chain end %d", cur, r.seq)
	}
	r.shipped = cur
	if r.seq > cur {
		// Unshipped events of a previous run: their age counts from now.
		r.marks = append(r.marks, seqMark{seq: cur + 1, t: cfg.Now()})
	}
	r.savedTree = st.Size
	r.m.spoolBytes.Set(float64(sp.total))
	r.m.rec.Store(r)
	if r.seq > 0 {
		r.log.Info("audit chain recovered from spool", zap.String("instance", cfg.InstanceID),
			zap.Uint64("last_seq", r.seq), zap.Uint64("shipped_seq", cur))
	}

	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(2)
	go r.shipLoop(ctx)
	go r.tickLoop(ctx)
	start := Event{Type: EventAuditStart, Details: map[string]string{"schema": strconv.Itoa(SchemaVersion)}}
	if err := r.Record(start); err != nil {
		if !errors.Is(err, ErrSpoolFull) {
			cancel()
			r.wg.Wait()
			sp.close()
			return nil, fmt.Errorf("audit: record audit.start: %w", err)
		}
		// A spool still full from the last run drains now; requests fail
		// closed until it has room.
		r.log.Warn("audit.start not recorded: spool full", zap.Error(err))
	}
	return r, nil
}

// eventBody is the part of an Event that is encoded outside the lock; its
// JSON field order continues Event's after "time".
type eventBody struct {
	Who        *Who              `json:"who,omitempty"`
	What       *What             `json:"what,omitempty"`
	Where      Where             `json:"where"`
	Outcome    *Outcome          `json:"outcome,omitempty"`
	Gap        *Gap              `json:"gap,omitempty"`
	Checkpoint *Checkpoint       `json:"checkpoint,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// body encodes the caller's part of ev into a pooled buffer; release it
// with bodyPool.Put once the event is in the spool.
func (r *Recorder) body(ev *Event) (*[]byte, error) {
	if !knownTypes[ev.Type] {
		return nil, fmt.Errorf("audit: unknown event type %q", ev.Type)
	}
	w := ev.Where
	w.Instance, w.Cluster = r.cfg.InstanceID, r.cfg.ClusterID
	body := eventBody{ev.Who, ev.What, w, ev.Outcome, ev.Gap, ev.Checkpoint, ev.Details}
	buf := bodyPool.Get().(*[]byte)
	b, err := body.appendJSON((*buf)[:0])
	*buf = b
	if err != nil {
		bodyPool.Put(buf)
		return nil, fmt.Errorf("audit: encode event: %w", err)
	}
	return buf, nil
}

// Record appends ev to the chain and the spool. It never waits on Kafka.
// It fills ev's Version, Seq, Prev, Time and Where.Instance/Cluster. It
// returns an error wrapping ErrSpoolFull when the spool is full and the
// policy is FailClosed; with ContinueWithAlarm it drops the event and
// returns nil.
func (r *Recorder) Record(ev Event) error {
	body, err := r.body(&ev)
	if err != nil {
		return err
	}
	defer bodyPool.Put(body)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	err = r.recordLocked(ev.Type, *body, ev.Time)
	seq := r.seq
	r.mu.Unlock()
	if err != nil || r.cfg.Fsync != FsyncAlways {
		return err
	}
	return r.syncThrough(seq)
}

// syncThrough returns once the spool is flushed through seq. One caller
// fsyncs for everyone waiting (group commit); the others find their seq
// already covered.
func (r *Recorder) syncThrough(seq uint64) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	for r.synced < seq {
		r.mu.Lock()
		f, target := r.sp.active, r.seq
		r.mu.Unlock()
		if f == nil { // closed: the spool was flushed on close
			r.synced = target
			break
		}
		// Segments closed by rotation were flushed before closing, so
		// flushing the active one covers everything through target.
		err := f.Sync()
		if errors.Is(err, os.ErrClosed) {
			continue // rotated meanwhile: flush the new active segment
		}
		if err != nil {
			r.log.Error("audit spool fsync failed", zap.Error(err))
			return fmt.Errorf("audit: fsync spool: %w", err)
		}
		r.synced = target
	}
	return nil
}

// encodeLocked builds the canonical encoding of the next event: the chain
// header fields, then body.
func (r *Recorder) encodeLocked(typ EventType, body []byte, t time.Time) []byte {
	if y := t.Year(); t.IsZero() || y < 1 || y > 9999 { // RFC 3339 years only
		t = r.cfg.Now()
	}
	b := r.hdr[:0]
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, SchemaVersion, 10)
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, r.seq+1, 10)
	b = append(b, `,"prev":"`...)
	b, _ = r.last.appendHex(b)
	b = append(b, `","time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `",`...)
	b = append(b, body[1:]...)
	r.hdr = b
	return b
}

func (r *Recorder) recordLocked(typ EventType, body []byte, t time.Time) error {
	now := r.cfg.Now()
	if r.dropped > 0 {
		gap := Event{Type: EventGap, Gap: &Gap{Dropped: r.dropped, First: r.dropFirst.UTC(), Last: r.dropLast.UTC()}}
		gp, err := r.body(&gap)
		if err != nil {
			return err
		}
		defer bodyPool.Put(gp)
		gb := *gp
		// Room for the gap marker and this event (estimated with the header size).
		need := r.sp.needed(len(gb)+200) + r.sp.needed(len(body)+200)
		if need > r.sp.free() {
			r.m.spoolFull.Inc()
			r.dropLocked(now)
			return nil
		}
		if err := r.appendLocked(r.encodeLocked(EventGap, gb, now)); err != nil {
			return err
		}
		r.m.gaps.Inc()
		r.log.Warn("audit spool has room again; gap marker written",
			zap.Uint64("dropped", r.dropped), zap.Uint64("gap_seq", r.seq))
		r.dropped = 0
	}
	enc := r.encodeLocked(typ, body, t)
	if len(enc) > MaxRecordSize {
		return fmt.Errorf("audit: event of %d bytes exceeds %d", len(enc), MaxRecordSize)
	}
	if r.sp.needed(len(enc)) > r.sp.free() {
		r.m.spoolFull.Inc()
		if r.cfg.OnFull == FailClosed {
			if !r.fullSince {
				r.fullSince = true
				r.log.Error("audit spool full: failing requests closed until the spool drains",
					zap.Int64("spool_bytes", r.sp.total), zap.Int64("max_bytes", r.cfg.SpoolMaxBytes))
			}
			r.refusing = true
			r.m.refusals.Inc()
			return fmt.Errorf("%w (%d of %d bytes used)", ErrSpoolFull, r.sp.total, r.cfg.SpoolMaxBytes)
		}
		r.dropLocked(now)
		return nil
	}
	if err := r.appendLocked(enc); err != nil {
		return err
	}
	if r.fullSince {
		r.fullSince = false
		r.log.Warn("audit spool has room again")
	}
	if typ != EventCheckpoint && r.sinceCkpt >= r.cfg.CheckpointEvery {
		r.checkpointLocked()
	}
	return nil
}

func (r *Recorder) dropLocked(now time.Time) {
	r.m.dropped.Inc()
	if r.dropped == 0 {
		r.dropFirst = now
		r.log.Error("audit spool full: dropping audit events (continue-with-alarm); a gap marker will record how many",
			zap.Int64("spool_bytes", r.sp.total), zap.Int64("max_bytes", r.cfg.SpoolMaxBytes))
	}
	r.dropped++
	r.dropLast = now
}

// appendLocked writes an encoded event with seq r.seq+1 to the spool and
// advances the chain.
func (r *Recorder) appendLocked(enc []byte) error {
	seq := r.seq + 1
	n, err := r.sp.append(seq, enc)
	if err != nil {
		r.log.Error("audit spool write failed", zap.Error(err))
		return err
	}
	h := HashEvent(enc)
	r.tree.append(h)
	r.seq, r.last = seq, h
	r.refusing = false
	if n := len(r.marks); n < maxMarks {
		if now := r.cfg.Now(); n == 0 || now.Sub(r.marks[n-1].t) >= time.Second {
			r.marks = append(r.marks, seqMark{seq: seq, t: now})
		}
	}
	r.sinceCkpt++
	r.m.recorded.Inc()
	r.m.spooledBytes.Add(float64(n))
	r.m.spoolBytes.Set(float64(r.sp.total))
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

// treeStateLocked encodes the Merkle state at the current chain end.
func (r *Recorder) treeStateLocked() (uint64, []byte, error) {
	st := r.tree.state(r.last)
	st.Instance = r.cfg.InstanceID
	b, err := json.Marshal(st)
	if err != nil {
		return 0, nil, fmt.Errorf("audit: encode tree state: %w", err)
	}
	return r.seq, b, nil
}

// saveTree persists the Merkle state (taken under the lock, written outside
// it). Recovery replays the spooled events after it, so closed segments are
// deleted only up to the saved size.
func (r *Recorder) saveTree() error {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	size, b, err := r.treeStateLocked()
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(r.cfg.SpoolDir, stateFile, b, r.cfg.Fsync != FsyncNever); err != nil {
		return err
	}
	r.mu.Lock()
	r.savedTree = max(r.savedTree, size)
	r.mu.Unlock()
	return nil
}

// checkpointLocked appends a signed checkpoint over all events so far. A
// full spool skips it; the next one covers more.
func (r *Recorder) checkpointLocked() {
	if r.tree.size() == 0 || r.sinceCkpt == 0 {
		return
	}
	ck := r.cfg.Signer.sign(r.cfg.InstanceID, r.tree)
	ev := Event{Type: EventCheckpoint, Checkpoint: ck}
	bp, err := r.body(&ev)
	if err != nil {
		r.log.Error("audit checkpoint encode failed", zap.Error(err))
		return
	}
	defer bodyPool.Put(bp)
	enc := r.encodeLocked(EventCheckpoint, *bp, time.Time{})
	if r.sp.needed(len(enc)) > r.sp.free() {
		r.log.Warn("audit spool full: checkpoint postponed", zap.Uint64("size", ck.Size))
		return
	}
	if err := r.appendLocked(enc); err != nil {
		return
	}
	r.sinceCkpt = 0
	r.m.checkpoints.Inc()
}

// Checkpoint writes a signed checkpoint now if events were recorded since
// the last one.
func (r *Recorder) Checkpoint() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.checkpointLocked()
	return nil
}

// Stats is a snapshot of the recorder's position.
type Stats struct {
	LastSeq    uint64 // seq of the last recorded event
	ShippedSeq uint64 // highest seq acknowledged by the sink
	SpoolBytes int64
	Dropped    uint64 // events dropped in the current spool-full episode
}

// maxMarks bounds Recorder.marks (a day of one mark per second).
const maxMarks = 86400

type seqMark struct {
	seq uint64
	t   time.Time
}

// dropMarksLocked forgets the marks of shipped events, keeping the last one
// at or before the oldest unshipped event.
func (r *Recorder) dropMarksLocked() {
	if r.shipped >= r.seq {
		r.marks = r.marks[:0]
		return
	}
	oldest, i := r.shipped+1, 0
	for i+1 < len(r.marks) && r.marks[i+1].seq <= oldest {
		i++
	}
	if i > 0 {
		r.marks = append(r.marks[:0], r.marks[i:]...)
	}
}

// spoolState is what the metrics read at a scrape.
type spoolState struct {
	unshipped uint64
	oldestAge time.Duration
	refusing  bool
	free      int64
}

func (r *Recorder) spoolState() spoolState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := spoolState{unshipped: r.seq - r.shipped, refusing: r.refusing, free: r.sp.free()}
	if st.unshipped > 0 && len(r.marks) > 0 {
		st.oldestAge = max(r.cfg.Now().Sub(r.marks[0].t), 0)
	}
	return st
}

// Refusing reports whether the spool is full in fail-closed mode: the
// last event did not fit, and since then nothing was appended and no
// shipped segment was freed. Audited requests are refused meanwhile.
func (r *Recorder) Refusing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refusing
}

// Stats returns the current position.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{LastSeq: r.seq, ShippedSeq: r.shipped, SpoolBytes: r.sp.total, Dropped: r.dropped}
}

// Flush waits until every event recorded so far is acknowledged by the
// sink, or ctx ends.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	target := r.seq
	r.mu.Unlock()
	return r.waitShipped(ctx, target)
}

func (r *Recorder) waitShipped(ctx context.Context, target uint64) error {
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.shippedC.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.shipped < target {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("audit: %d events not yet shipped: %w", target-r.shipped, err)
		}
		r.shippedC.Wait()
	}
	return nil
}

// Close records audit.stop and a final checkpoint, waits until the spool
// is shipped or ctx ends, then stops. Events not shipped stay in the spool
// and are sent by the next Recorder over the same directory.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	stop := Event{Type: EventAuditStop}
	bp, err := r.body(&stop)
	if err == nil {
		err = r.recordLocked(EventAuditStop, *bp, time.Time{})
		bodyPool.Put(bp)
	}
	if err != nil {
		r.log.Warn("audit.stop not recorded", zap.Error(err))
	}
	r.checkpointLocked()
	r.closed = true
	target := r.seq
	r.mu.Unlock()

	flushErr := r.waitShipped(ctx, target)
	if flushErr != nil {
		r.log.Warn("audit recorder closing with unshipped events; they stay spooled", zap.Error(flushErr))
	}
	r.cancel()
	r.wg.Wait()
	err = r.saveTree()
	r.mu.Lock()
	defer r.mu.Unlock()
	if cerr := r.sp.close(); err == nil {
		err = cerr
	}
	return err
}

// abandon stops the goroutines and releases the spool without recording
// anything or syncing: what a SIGKILL leaves behind (tests only).
func (r *Recorder) abandon() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sp.active != nil {
		r.sp.active.Close()
		r.sp.active = nil
	}
	r.sp.lock.Close()
	r.sp.lock = nil
}

func (r *Recorder) tickLoop(ctx context.Context) {
	defer r.wg.Done()
	ck := time.NewTicker(r.cfg.CheckpointInterval)
	defer ck.Stop()
	var syncC <-chan time.Time
	if r.cfg.Fsync == FsyncInterval {
		t := time.NewTicker(r.cfg.FsyncInterval)
		defer t.Stop()
		syncC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ck.C:
			r.mu.Lock()
			if !r.closed {
				r.checkpointLocked()
			}
			r.mu.Unlock()
		case <-syncC:
			r.mu.Lock()
			f := r.sp.active
			r.mu.Unlock()
			if err := syncFile(f); err != nil {
				r.log.Error("audit spool fsync failed", zap.Error(err))
			}
		}
	}
}

// shipLoop sends spooled events after the cursor to the sink, in order,
// and advances the cursor after each acknowledged batch.
func (r *Recorder) shipLoop(ctx context.Context) {
	defer r.wg.Done()
	var rd segReader
	defer rd.close()
	r.mu.Lock()
	next := r.shipped + 1
	r.mu.Unlock()
	batch := make([]Spooled, 0, r.cfg.ShipBatch)
	backoff := 100 * time.Millisecond
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		r.mu.Lock()
		segs := r.sp.snapshot()
		r.mu.Unlock()
		batch = batch[:0]
		bytes := 0
		var err error
		for _, sg := range segs {
			if sg.last < next {
				continue
			}
			var stopped bool
			next, stopped, err = rd.readRecords(sg, next, func(seq uint64, p []byte) bool {
				if len(batch) >= r.cfg.ShipBatch || bytes >= 1<<20 {
					return false
				}
				batch = append(batch, Spooled{Seq: seq, Value: append([]byte(nil), p...)})
				bytes += len(p)
				return true
			})
			if err != nil || stopped {
				break
			}
		}
		if err != nil {
			r.log.Error("audit shipper cannot read spool", zap.Error(err))
			r.m.shipErrors.Inc()
			rd.close()
			if !sleepCtx(ctx, 5*time.Second) {
				return
			}
			continue
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			case <-poll.C:
			}
			continue
		}
		if err := r.cfg.Sink.Send(ctx, r.cfg.InstanceID, batch); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.m.shipErrors.Inc()
			r.log.Warn("audit shipping failed; retrying", zap.Uint64("from_seq", batch[0].Seq), zap.Error(err))
			next = batch[0].Seq
			rd.close()
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		r.commitShipped(batch[len(batch)-1].Seq, len(batch))
	}
}

func (r *Recorder) commitShipped(seq uint64, n int) {
	if err := writeFileAtomic(r.cfg.SpoolDir, cursorFile, []byte(strconv.FormatUint(seq, 10)+"\n"), r.cfg.Fsync == FsyncAlways); err != nil {
		// The events are in Kafka; a stale cursor only means they are sent again.
		r.log.Error("audit spool cursor write failed", zap.Error(err))
	}
	r.mu.Lock()
	r.shipped = seq
	// Closed segments now fully shipped but newer than the saved tree state.
	needSave := len(r.sp.segs) > 1 && r.sp.segs[0].last <= seq && r.sp.segs[0].last > r.savedTree
	r.mu.Unlock()
	if needSave {
		if err := r.saveTree(); err != nil {
			r.log.Error("audit tree state save failed", zap.Error(err))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m.shipped.Add(float64(n))
	r.dropMarksLocked()
	if freed, err := r.sp.removeThrough(min(seq, r.savedTree)); err != nil {
		r.log.Error("audit spool cleanup failed", zap.Error(err))
	} else if freed > 0 {
		r.refusing = false
	}
	r.m.spoolBytes.Set(float64(r.sp.total))
	r.shippedC.Broadcast()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (h Hash) appendHex(dst []byte) ([]byte, error) {
	const digits = "0123456789abcdef"
	for _, c := range h {
		dst = append(dst, digits[c>>4], digits[c&0xf])
	}
	return dst, nil
}
