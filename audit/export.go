package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ExportFormat is the version of the export file format (docs/audit.md).
const ExportFormat = 1

// ExportHeader is the first line of an export file: what was read and
// whether the trail it came from verified while it was read.
type ExportHeader struct {
	Format int       `json:"kguard_audit_export"`
	Topic  string    `json:"topic"`
	Since  time.Time `json:"since,omitzero"`
	Until  time.Time `json:"until,omitzero"`
	// Records is every record read from the topic (the whole trail is
	// verified, not only the exported window); Events those exported.
	Records int64 `json:"records"`
	Events  int64 `json:"events"`
	// Verified: no error-severity finding. ChainVerified: no finding on
	// the chains (altered, deleted, inserted, reordered, malformed, prefix
	// missing); CheckpointsVerified: every checkpoint's signature and root
	// verified (bad_signature, root_mismatch, unverifiable absent).
	Verified            bool     `json:"verified"`
	ChainVerified       bool     `json:"chain_verified"`
	CheckpointsVerified bool     `json:"checkpoints_verified"`
	Checkpoints         int      `json:"checkpoints"`
	Findings            []string `json:"findings,omitempty"`
}

// ExportOptions are the `kguard audit export` settings.
type ExportOptions struct {
	Verify VerifyOptions
	// Since and Until bound the exported events' time: Since <= time <
	// Until; zero means unbounded.
	Since, Until time.Time
	Out          string // file to write (replaced atomically)
}

// InWindow reports whether t is in [since, until) (zero bounds are open).
func InWindow(t, since, until time.Time) bool {
	return (since.IsZero() || !t.Before(since)) && (until.IsZero() || t.Before(until))
}

// RunExport reads the audit topic with Verify, verifying every chain and
// checkpoint while reading, and writes the events whose time is in
// [Since, Until) to opts.Out: an ExportHeader line, then one event per
// line, byte for byte as stored (so their hashes can be checked again).
// The file is written even when verification fails (its header says so);
// the error then wraps ErrVerifyFailed.
func RunExport(ctx context.Context, opts ExportOptions, progress io.Writer) (ExportHeader, error) {
	h := ExportHeader{Format: ExportFormat, Topic: opts.Verify.Topic, Since: opts.Since, Until: opts.Until}
	if opts.Out == "" {
		return h, errors.New("audit: export needs an output file")
	}
	cfg, cancel, err := opts.Verify.config(ctx)
	if err != nil {
		return h, err
	}
	defer cancel()
	body, err := os.CreateTemp(filepath.Dir(opts.Out), ".kguard-export-*")
	if err != nil {
		return h, fmt.Errorf("audit: export: %w", err)
	}
	defer os.Remove(body.Name())
	defer body.Close()
	w := bufio.NewWriterSize(body, 1<<20)
	cfg.OnEvent = func(ev *Event, value []byte, _ Position) error {
		if !InWindow(ev.Time, opts.Since, opts.Until) {
			return nil
		}
		h.Events++
		if _, err := w.Write(value); err != nil {
			return err
		}
		return w.WriteByte('\n')
	}
	rep, err := Verify(cfg.ctx, cfg.VerifyConfig, progress)
	if err != nil {
		return h, err
	}
	if err := w.Flush(); err != nil {
		return h, fmt.Errorf("audit: export: %w", err)
	}
	h.Topic, h.Records = rep.Topic, rep.Records
	h.Verified, h.ChainVerified, h.CheckpointsVerified = rep.OK(), true, true
	for _, in := range rep.Instances {
		h.Checkpoints += in.Checkpoints
	}
	for _, f := range rep.Findings {
		if f.Severity == SeverityInfo {
			continue
		}
		h.Findings = append(h.Findings, f.String())
		switch f.Kind {
		case FindingBadSignature, FindingRootMismatch, FindingUnverifiable:
			h.CheckpointsVerified = false
		case FindingDeclaredGap, FindingMultiPartition:
		default:
			h.ChainVerified = false
		}
	}
	if err := writeExport(opts.Out, h, body); err != nil {
		return h, err
	}
	if !h.Verified {
		return h, fmt.Errorf("%w: %d problem(s) in %s (exported anyway, the file's header says so)", ErrVerifyFailed, rep.Errors(), rep.Topic)
	}
	return h, nil
}

// writeExport writes the header and the events body to path atomically.
func writeExport(path string, h ExportHeader, body *os.File) error {
	hb, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("audit: export header: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kguard-export-*")
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	if _, err := tmp.Write(append(hb, '\n')); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	if _, err := io.Copy(tmp, body); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

// ReadEvents reads an export file (or any file of one encoded event per
// line, without header) and calls fn for every event. It returns the
// header, zero when the file has none. Blank lines are skipped; a line
// that is not a valid event is an error naming its line number.
func ReadEvents(r io.Reader, fn func(ev *Event) error) (ExportHeader, error) {
	return scanEvents(r, func(line int, b []byte) error {
		ev, err := DecodeEvent(b)
		if err != nil {
			return fmt.Errorf("audit: line %d: %w", line, err)
		}
		return fn(&ev)
	})
}

// scanEvents reads an export or events file line by line: the header (the
// first line, when it is one) is returned, blank lines are skipped, and fn
// gets every other line with its number (the bytes are valid until fn
// returns).
func scanEvents(r io.Reader, fn func(line int, b []byte) error) (ExportHeader, error) {
	var h ExportHeader
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventSize+1)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if line == 1 && bytes.Contains(b, []byte(`"kguard_audit_export"`)) {
			if err := json.Unmarshal(b, &h); err != nil {
				return h, fmt.Errorf("audit: export header: %w", err)
			}
			if h.Format != ExportFormat {
				return h, fmt.Errorf("audit: export format %d, this kguard reads %d", h.Format, ExportFormat)
			}
			continue
		}
		if err := fn(line, b); err != nil {
			return h, err
		}
	}
	if err := sc.Err(); err != nil {
		return h, fmt.Errorf("audit: read events: %w", err)
	}
	return h, nil
}

// ReadEventsConcurrently is ReadEvents with the JSON decoding (most of the
// cost of reading a large export) spread over workers goroutines. fn is
// called from one goroutine at a time, but not in file order: for
// consumers that aggregate (kguard policy diff). The first error stops
// the reading.
func ReadEventsConcurrently(r io.Reader, workers int, fn func(ev *Event) error) (ExportHeader, error) {
	if workers < 2 {
		return ReadEvents(r, fn)
	}
	type batch struct {
		first int // line number of lines[0]
		lines [][]byte
		evs   []Event
		err   error
	}
	const batchLines = 512
	in := make(chan *batch, workers)
	out := make(chan *batch, workers)
	done := make(chan struct{})
	var h ExportHeader
	var readErr error
	readerDone := make(chan struct{})
	errStop := errors.New("stopped")
	go func() { // the reader: lines in batches
		defer close(readerDone)
		defer close(in)
		b := &batch{}
		send := func() error {
			select {
			case in <- b:
				b = &batch{}
				return nil
			case <-done:
				return errStop
			}
		}
		h, readErr = scanEvents(r, func(line int, l []byte) error {
			if len(b.lines) == 0 {
				b.first = line
			}
			b.lines = append(b.lines, append([]byte(nil), l...))
			if len(b.lines) == batchLines {
				return send()
			}
			return nil
		})
		if readErr == nil && len(b.lines) > 0 {
			readErr = send()
		}
		if errors.Is(readErr, errStop) {
			readErr = nil // the consumer's error is the one to report
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() { // decoders
			defer wg.Done()
			for b := range in {
				b.evs = make([]Event, 0, len(b.lines))
				for i, l := range b.lines {
					ev, err := DecodeEvent(l)
					if err != nil {
						b.err = fmt.Errorf("audit: batch from line %d, event %d: %w", b.first, i+1, err)
						break
					}
					b.evs = append(b.evs, ev)
				}
				b.lines = nil
				select {
				case out <- b:
				case <-done:
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	var err error
	for b := range out { // the consumer: fn, one goroutine
		if err != nil {
			continue
		}
		if err = b.err; err != nil {
			close(done)
			continue
		}
		for i := range b.evs {
			if err = fn(&b.evs[i]); err != nil {
				close(done)
				break
			}
		}
	}
	<-readerDone
	if err != nil {
		return h, err
	}
	return h, readErr
}

// verifyRun is a VerifyConfig with the context its options bound.
type verifyRun struct {
	VerifyConfig
	ctx context.Context
}

// config builds the VerifyConfig of o: client options, public keys and
// the timeout (cancel releases it).
func (o VerifyOptions) config(ctx context.Context) (verifyRun, context.CancelFunc, error) {
	cops, err := o.Kafka.ClientOpts()
	if err != nil {
		return verifyRun{}, nil, err
	}
	var keys []ed25519.PublicKey
	for _, f := range o.PublicKeyFiles {
		k, err := LoadPublicKey(f)
		if err != nil {
			return verifyRun{}, nil, err
		}
		keys = append(keys, k)
	}
	cancel := context.CancelFunc(func() {})
	if o.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
	}
	return verifyRun{VerifyConfig: VerifyConfig{ClientOpts: cops, Topic: o.Topic, PublicKeys: keys,
		ProgressEvery: o.ProgressEvery, AllowPrefixLoss: o.AllowPrefixLoss}, ctx: ctx}, cancel, nil
}

// VerifyEach runs Verify with o, calling fn with every event as it is read
// (see VerifyConfig.OnEvent), and returns the report. Progress goes to
// progress.
func VerifyEach(ctx context.Context, o VerifyOptions, fn func(ev *Event, value []byte, pos Position) error, progress io.Writer) (Report, error) {
	cfg, cancel, err := o.config(ctx)
	if err != nil {
		return Report{}, err
	}
	defer cancel()
	cfg.OnEvent = fn
	return Verify(cfg.ctx, cfg.VerifyConfig, progress)
}
