package audit

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// Spool layout (docs/audit.md): a directory holding
//
//	LOCK                  flock(2)-held by the one Recorder using the spool
//	<20-digit seq>.seg    append-only segments named by their first seq
//	cursor                the highest seq acknowledged by Kafka (decimal)
//	tree.json             Merkle compact range and last hash at some seq
//
// A segment starts with the 8-byte magic "KGAUDIT1", then records:
//
//	uint32 BE payload length | uint32 BE CRC-32C(seq||payload) | uint64 BE seq | payload
//
// payload is the event's canonical encoding, exactly the Kafka record value.

const (
	segMagic     = "KGAUDIT1"
	recHeaderLen = 16
	segSuffix    = ".seg"
	cursorFile   = "cursor"
	stateFile    = "tree.json"
	lockFile     = "LOCK"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errShortRecord means the buffer ends inside a record (a torn tail when it
// is the end of the last segment).
var errShortRecord = errors.New("audit: spool record truncated")

// appendRecord appends the spool encoding of (seq, payload) to dst.
func appendRecord(dst []byte, seq uint64, payload []byte) []byte {
	var h [recHeaderLen]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint64(h[8:16], seq)
	c := crc32.Update(0, crcTable, h[8:16])
	c = crc32.Update(c, crcTable, payload)
	binary.BigEndian.PutUint32(h[4:8], c)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// decodeRecord decodes the record at the start of b. It returns the record
// length n. A buffer that ends inside a record yields errShortRecord; a
// record that fails its length or CRC check yields ErrMalformed.
func decodeRecord(b []byte) (seq uint64, payload []byte, n int, err error) {
	if len(b) < recHeaderLen {
		return 0, nil, 0, errShortRecord
	}
	l := binary.BigEndian.Uint32(b[0:4])
	if l == 0 || l > maxEventSize {
		return 0, nil, 0, fmt.Errorf("%w spool record: length %d out of range", ErrMalformed, l)
	}
	n = recHeaderLen + int(l)
	if len(b) < n {
		return 0, nil, 0, errShortRecord
	}
	seq = binary.BigEndian.Uint64(b[8:16])
	payload = b[recHeaderLen:n]
	c := crc32.Update(0, crcTable, b[8:16])
	c = crc32.Update(c, crcTable, payload)
	if c != binary.BigEndian.Uint32(b[4:8]) {
		return 0, nil, 0, fmt.Errorf("%w spool record: CRC mismatch", ErrMalformed)
	}
	if seq == 0 {
		return 0, nil, 0, fmt.Errorf("%w spool record: seq 0", ErrMalformed)
	}
	return seq, payload, n, nil
}

type segment struct {
	first uint64 // seq of the first record (the file name)
	last  uint64 // seq of the last record; first-1 when empty
	path  string
	size  int64 // bytes written, including the magic
}

// spool is the on-disk queue. All methods are called with Recorder.mu held,
// except the read-only helpers used by the shipper on segment snapshots.
type spool struct {
	dir      string
	maxBytes int64
	segBytes int64
	fsync    FsyncPolicy
	log      *zap.Logger

	lock   *os.File
	segs   []segment
	active *os.File
	total  int64
	buf    []byte
}

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// openSpool locks dir, scans the segments and truncates a torn tail. visit
// is called for every intact record in seq order.
func openSpool(dir string, maxBytes, segBytes int64, fsync FsyncPolicy, log *zap.Logger,
	visit func(seq uint64, payload []byte) error) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create spool dir: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open spool lock: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("audit: spool %s is in use by another recorder: %w", dir, err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes, segBytes: segBytes, fsync: fsync, log: log, lock: lf}
	if err := s.scan(visit); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *spool) scan(visit func(uint64, []byte) error) error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("audit: read spool dir: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || first == 0 {
			return fmt.Errorf("audit: unexpected file %q in spool", name)
		}
		s.segs = append(s.segs, segment{first: first, path: filepath.Join(s.dir, name)})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].first < s.segs[j].first })
	for i := range s.segs {
		sg := &s.segs[i]
		isLast := i == len(s.segs)-1
		data, err := os.ReadFile(sg.path)
		if err != nil {
			return fmt.Errorf("audit: read spool segment: %w", err)
		}
		if i > 0 && sg.first != s.segs[i-1].last+1 {
			return fmt.Errorf("audit: spool segment %s does not continue seq %d", sg.path, s.segs[i-1].last)
		}
		if len(data) < len(segMagic) || string(data[:len(segMagic)]) != segMagic {
			if !isLast || len(data) >= len(segMagic) {
				return fmt.Errorf("audit: spool segment %s: bad magic", sg.path)
			}
			// Torn while being created: rewrite the header.
			s.log.Warn("audit spool: rewriting torn segment header", zap.String("segment", sg.path))
			if err := os.WriteFile(sg.path, []byte(segMagic), 0o600); err != nil {
				return fmt.Errorf("audit: repair spool segment: %w", err)
			}
			data = []byte(segMagic)
		}
		off := len(segMagic)
		sg.last = sg.first - 1
		for off < len(data) {
			seq, payload, n, err := decodeRecord(data[off:])
			if err == nil && seq != sg.last+1 {
				err = fmt.Errorf("%w spool record: seq %d, want %d", ErrMalformed, seq, sg.last+1)
			}
			if err != nil {
				if !isLast {
					return fmt.Errorf("audit: spool segment %s offset %d: %w", sg.path, off, err)
				}
				s.log.Warn("audit spool: truncating torn tail",
					zap.String("segment", sg.path), zap.Int("offset", off),
					zap.Int("discarded_bytes", len(data)-off), zap.Error(err))
				if err := os.Truncate(sg.path, int64(off)); err != nil {
					return fmt.Errorf("audit: truncate torn spool tail: %w", err)
				}
				data = data[:off]
				break
			}
			if err := visit(seq, payload); err != nil {
				return err
			}
			sg.last = seq
			off += n
		}
		sg.size = int64(len(data))
		s.total += sg.size
	}
	if n := len(s.segs); n > 0 {
		f, err := os.OpenFile(s.segs[n-1].path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("audit: open spool segment: %w", err)
		}
		s.active = f
	}
	return nil
}

// lastSeq returns the seq of the last spooled record, or 0 when empty.
func (s *spool) lastSeq() uint64 {
	if len(s.segs) == 0 {
		return 0
	}
	return s.segs[len(s.segs)-1].last
}

// firstSeq returns the seq of the first spooled record, or 0 when empty.
func (s *spool) firstSeq() uint64 {
	for _, sg := range s.segs {
		if sg.last >= sg.first {
			return sg.first
		}
	}
	return 0
}

// needed returns the spool bytes appending a payload of n bytes takes.
func (s *spool) needed(n int) int64 {
	need := int64(recHeaderLen + n)
	if s.rotateFor(need) {
		need += int64(len(segMagic))
	}
	return need
}

func (s *spool) rotateFor(need int64) bool {
	if len(s.segs) == 0 {
		return true
	}
	a := s.segs[len(s.segs)-1]
	return a.last >= a.first && a.size+need > s.segBytes
}

// free returns the bytes left before the spool is full.
func (s *spool) free() int64 { return s.maxBytes - s.total }

// append writes one record with a single write(2), so a record acknowledged
// to the caller survives the process being killed.
func (s *spool) append(seq uint64, payload []byte) (int64, error) {
	need := int64(recHeaderLen + len(payload))
	if s.rotateFor(need) {
		if err := s.rotate(seq); err != nil {
			return 0, err
		}
	}
	s.buf = appendRecord(s.buf[:0], seq, payload)
	if _, err := s.active.Write(s.buf); err != nil {
		// A partial write leaves a torn record; cut it so later appends stay readable.
		a := &s.segs[len(s.segs)-1]
		_ = s.active.Truncate(a.size)
		return 0, fmt.Errorf("audit: write spool: %w", err)
	}
	a := &s.segs[len(s.segs)-1]
	a.size += int64(len(s.buf))
	a.last = seq
	s.total += int64(len(s.buf))
	return int64(len(s.buf)), nil
}

func (s *spool) rotate(first uint64) error {
	if s.active != nil {
		if s.fsync != FsyncNever {
			if err := s.active.Sync(); err != nil {
				return fmt.Errorf("audit: fsync spool segment: %w", err)
			}
		}
		if err := s.active.Close(); err != nil {
			return fmt.Errorf("audit: close spool segment: %w", err)
		}
		s.active = nil
	}
	p := filepath.Join(s.dir, segName(first))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: create spool segment: %w", err)
	}
	if _, err := f.Write([]byte(segMagic)); err != nil {
		f.Close()
		return fmt.Errorf("audit: write spool segment: %w", err)
	}
	if s.fsync != FsyncNever {
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return err
		}
	}
	s.active = f
	s.segs = append(s.segs, segment{first: first, last: first - 1, path: p, size: int64(len(segMagic))})
	s.total += int64(len(segMagic))
	return nil
}

// syncFile flushes a segment file outside the recorder lock (the
// FsyncInterval tick). A file closed meanwhile by rotation was synced there.
func syncFile(f *os.File) error {
	if f == nil {
		return nil
	}
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("audit: fsync spool: %w", err)
	}
	return nil
}

// removeThrough deletes closed segments whose records all have seq <= seq.
// The active segment is kept. It returns the bytes freed.
func (s *spool) removeThrough(seq uint64) (int64, error) {
	var freed int64
	for len(s.segs) > 1 && s.segs[0].last <= seq {
		if err := os.Remove(s.segs[0].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return freed, fmt.Errorf("audit: remove shipped spool segment: %w", err)
		}
		freed += s.segs[0].size
		s.total -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	return freed, nil
}

// snapshot copies the segment list for the shipper.
func (s *spool) snapshot() []segment { return append([]segment(nil), s.segs...) }

func (s *spool) close() error {
	var err error
	if s.active != nil {
		if s.fsync != FsyncNever {
			err = s.active.Sync()
		}
		if cerr := s.active.Close(); err == nil {
			err = cerr
		}
		s.active = nil
	}
	if s.lock != nil {
		s.lock.Close() // closing the descriptor releases the flock
		s.lock = nil
	}
	if err != nil {
		return fmt.Errorf("audit: close spool: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: open spool dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: fsync spool dir: %w", err)
	}
	return nil
}

// writeFileAtomic replaces name in dir with data through a temporary file
// and rename.
func writeFileAtomic(dir, name string, data []byte, sync bool) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("audit: write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("audit: write %s: %w", name, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("audit: fsync %s: %w", name, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit: write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("audit: rename %s: %w", name, err)
	}
	if sync {
		return syncDir(dir)
	}
	return nil
}

func readCursor(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, cursorFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit: read spool cursor: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("audit: bad spool cursor %q: %w", b, err)
	}
	return v, nil
}

// treeState is the persisted Merkle compact range at Size, so recovery
// only replays the spooled events after it.
type treeState struct {
	Instance string   `json:"instance"`
	Size     uint64   `json:"size"`
	LastHash Hash     `json:"last_hash"`
	Hashes   []string `json:"hashes"`
}

func (t *tree) state(last Hash) treeState {
	st := treeState{Size: t.size(), LastHash: last}
	for _, h := range t.r.Hashes() {
		st.Hashes = append(st.Hashes, hex.EncodeToString(h))
	}
	return st
}

func readTreeState(dir string) (treeState, *tree, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return treeState{}, newTree(), nil
	}
	if err != nil {
		return treeState{}, nil, fmt.Errorf("audit: read spool tree state: %w", err)
	}
	var st treeState
	if err := json.Unmarshal(b, &st); err != nil {
		return treeState{}, nil, fmt.Errorf("audit: bad spool tree state: %w", err)
	}
	hs := make([][]byte, len(st.Hashes))
	for i, h := range st.Hashes {
		if hs[i], err = hex.DecodeString(h); err != nil || len(hs[i]) != HashSize {
			return treeState{}, nil, fmt.Errorf("audit: bad hash in spool tree state")
		}
	}
	t, err := treeFromHashes(st.Size, hs)
	if err != nil {
		return treeState{}, nil, err
	}
	return st, t, nil
}

// segReader reads records from spool segments for the shipper. It never
// reads past the sizes in the snapshot it is given, so it cannot see a
// record that is being written.
type segReader struct {
	f    *os.File
	path string
	off  int64
	buf  []byte
}

// readRecords reads records with seq >= from out of sg (a snapshot),
// calling fn for each until fn returns false (that record is not consumed).
// It returns the seq after the last record consumed and whether fn stopped.
func (r *segReader) readRecords(sg segment, from uint64, fn func(seq uint64, payload []byte) bool) (uint64, bool, error) {
	if r.path != sg.path {
		if r.f != nil {
			r.f.Close()
		}
		f, err := os.Open(sg.path)
		if err != nil {
			return from, false, fmt.Errorf("audit: open spool segment: %w", err)
		}
		r.f, r.path, r.off = f, sg.path, int64(len(segMagic))
	}
	for r.off < sg.size {
		want := int(sg.size - r.off)
		if want > 1<<20+recHeaderLen {
			want = 1<<20 + recHeaderLen
		}
		if cap(r.buf) < want {
			r.buf = make([]byte, want)
		}
		b := r.buf[:want]
		if _, err := r.f.ReadAt(b, r.off); err != nil && !errors.Is(err, io.EOF) {
			return from, false, fmt.Errorf("audit: read spool segment: %w", err)
		}
		progressed := false
		for len(b) > 0 {
			seq, payload, n, err := decodeRecord(b)
			if errors.Is(err, errShortRecord) {
				break
			}
			if err != nil {
				return from, false, fmt.Errorf("audit: spool segment %s offset %d: %w", sg.path, r.off, err)
			}
			if seq >= from {
				if !fn(seq, payload) {
					return from, true, nil
				}
				from = seq + 1
			}
			r.off += int64(n)
			b = b[n:]
			progressed = true
		}
		if !progressed {
			return from, false, fmt.Errorf("audit: spool segment %s offset %d: record does not fit its segment", sg.path, r.off)
		}
	}
	return from, false, nil
}

func (r *segReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f, r.path = nil, ""
	}
}
