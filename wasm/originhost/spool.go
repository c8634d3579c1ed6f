package originhost

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// The spool is the harness's durable vote hand-off: a directory of
// append-only segment files holding group-committed batches, each appended
// as one record and fsynced before any of its voters is answered.
//
//	LOCK                  held (flock) while a host owns the directory
//	seg-<seq>.log         a segment: the 8-byte header "EPSPOOL1", then records
//	seg-<seq>.ack         the segment's delivery progress: 8-byte entries
//	dead-letter.jsonl     batches the origin refused (4xx), one JSON object a line
//	corrupt-<seq>-<off>   bytes cut from a segment at a damaged record
//
// A record is len uint32 | votes uint32 | crc uint32 | payload (little
// endian), where payload is the batch's MessagePack and crc is the CRC32C
// of the first eight bytes and the payload. An ack entry is off uint32 |
// ^off uint32: the record at off is done (applied by the origin, moved to
// the dead-letter file, or cut after a failed write). Acks are not fsynced:
// a process crash keeps them (the page cache survives it) and a machine
// crash loses at most the last few seconds' worth, whose batches are then
// delivered again, which the origin answers from its replay keys or
// dedupes. A segment takes appends until it reaches its size limit; a
// sealed segment whose records are all done is deleted.
const (
	segHeader    = "EPSPOOL1"
	recHeaderLen = 12
	ackEntryLen  = 8
	maxRecord    = shared.MaxBatchBytes
	deadLetter   = "dead-letter.jsonl"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// spoolFile is what the spool needs of a file; tests inject faults through
// spool.openFile.
type spoolFile interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
}

func osOpen(name string, flag int, perm os.FileMode) (spoolFile, error) {
	return os.OpenFile(name, flag, perm)
}

// spoolOpenFile opens the spool's files; a spool keeps the one in force
// when it was opened. Tests replace it to inject faults.
var spoolOpenFile = osOpen

// spool is the on-disk part of the vote hand-off. One goroutine (the
// queue's gatherer) appends; any goroutine may finish records.
type spool struct {
	dir      string
	log      *slog.Logger
	segLimit int64
	openFile func(name string, flag int, perm os.FileMode) (spoolFile, error)
	unlock   func()

	mu      sync.Mutex // guards the segments' pending, sealed and removed, active and nextSeq
	active  *segment   // takes appends; nil until the first append
	segs    map[uint64]*segment
	nextSeq uint64

	used atomic.Int64 // bytes of segment and ack files on disk

	deadMu sync.Mutex
	dead   spoolFile
	deadSz int64
}

type segment struct {
	seq     uint64
	f       spoolFile
	size    int64 // end of the last good record (appender only, or at recovery)
	pending int   // records not done (spool.mu)
	sealed  bool  // takes no more appends (spool.mu)
	removed bool  // (spool.mu)

	ackMu     sync.Mutex
	ack       spoolFile
	ackSize   int64
	ackBroken bool // a failed ack write: stop writing, so the file's entries stay aligned
}

// record is one batch in the spool.
type record struct {
	seg     *segment
	off     int64
	size    int // header included
	votes   int
	id      shared.BatchID // zero for recovered records until loaded
	payload []byte         // nil: read it from the segment
}

func (s *spool) segName(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("seg-%016d.log", seq))
}

func (s *spool) ackName(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("seg-%016d.ack", seq))
}

func (r *record) String() string {
	return fmt.Sprintf("seg-%016d.log@%d", r.seg.seq, r.off)
}

// openSpool takes dir (creating it), recovers its segments and returns the
// records still to deliver, oldest first.
func openSpool(dir string, segLimit int64, log *slog.Logger, openFile func(string, int, os.FileMode) (spoolFile, error)) (*spool, []*record, error) {
	if openFile == nil {
		openFile = spoolOpenFile
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("spool: create the directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	s := &spool{dir: dir, log: log, segLimit: segLimit, openFile: openFile, unlock: unlock, segs: map[uint64]*segment{}, nextSeq: 1}
	entries, err := os.ReadDir(dir)
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("spool: list the directory: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "seg-") || !strings.HasSuffix(name, ".log") {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "seg-"), ".log"), 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	var recs []*record
	for _, seq := range seqs {
		s.nextSeq = max(s.nextSeq, seq+1)
		r, err := s.recover(seq)
		if err != nil {
			s.close()
			return nil, nil, err
		}
		recs = append(recs, r...)
	}
	if fi, err := os.Stat(filepath.Join(dir, deadLetter)); err == nil {
		s.deadSz = fi.Size()
	}
	return s, recs, nil
}

// recover scans one segment: it cuts a torn tail, moves the rest of a
// segment after a damaged record aside, reads the acks and returns the
// records not yet done. A segment with nothing left to deliver is deleted.
func (s *spool) recover(seq uint64) ([]*record, error) {
	name := s.segName(seq)
	f, err := s.openFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("spool: recover a segment: %w", err)
	}
	seg := &segment{seq: seq, f: f, sealed: true}
	data, err := readAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: recover a segment: %w", err)
	}
	if len(data) < len(segHeader) || string(data[:len(segHeader)]) != segHeader {
		if strings.HasPrefix(segHeader, string(data)) { // created, never written to
			f.Close()
			s.removeFiles(seq)
			return nil, nil
		}
		if err := s.quarantine(seq, 0, data); err != nil {
			f.Close()
			return nil, err
		}
		s.log.Error("spool: not a spool segment; moved aside", "segment", name, "bytes", len(data))
		f.Close()
		s.removeFiles(seq)
		return nil, nil
	}
	var recs []*record
	off := len(segHeader)
	for off < len(data) {
		n, votes, bad, torn := checkRecord(data[off:])
		if bad {
			if torn {
				s.log.Warn("spool: cut a torn tail (a write that was never acknowledged)", "segment", name, "offset", off, "bytes", len(data)-off)
			} else {
				if err := s.quarantine(seq, int64(off), data[off:]); err != nil {
					f.Close()
					return nil, err
				}
				s.log.Error("spool: damaged record; the rest of the segment was moved aside and is NOT delivered",
					"segment", name, "offset", off, "bytes", len(data)-off, "moved_to", s.corruptName(seq, int64(off)))
			}
			if err := f.Truncate(int64(off)); err != nil {
				f.Close()
				return nil, fmt.Errorf("spool: cut a segment's bad tail: %w", err)
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, fmt.Errorf("spool: cut a segment's bad tail: %w", err)
			}
			break
		}
		recs = append(recs, &record{seg: seg, off: int64(off), size: recHeaderLen + n, votes: votes})
		off += recHeaderLen + n
	}
	seg.size = int64(off)

	ackName := s.ackName(seq)
	ack, err := s.openFile(ackName, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: recover acks: %w", err)
	}
	seg.ack = ack
	acks, err := readAll(ack)
	if err != nil {
		seg.close()
		return nil, fmt.Errorf("spool: recover acks: %w", err)
	}
	whole := len(acks) / ackEntryLen * ackEntryLen
	if whole != len(acks) { // a torn entry: cut it so new entries stay aligned
		if err := ack.Truncate(int64(whole)); err != nil {
			seg.close()
			return nil, fmt.Errorf("spool: recover acks: %w", err)
		}
	}
	seg.ackSize = int64(whole)
	done := map[int64]bool{}
	for i := 0; i+ackEntryLen <= whole; i += ackEntryLen {
		o := binary.LittleEndian.Uint32(acks[i:])
		if ^o == binary.LittleEndian.Uint32(acks[i+4:]) {
			done[int64(o)] = true
		}
	}
	live := recs[:0]
	for _, r := range recs {
		if !done[r.off] {
			live = append(live, r)
		}
	}
	seg.pending = len(live)
	s.used.Add(seg.size + seg.ackSize)
	if len(live) == 0 {
		seg.removed = true
		s.remove(seg)
		return nil, nil
	}
	s.segs[seq] = seg
	return live, nil
}

// checkRecord checks the record at the start of b and returns its payload
// length and vote count. bad means b does not start with a good record;
// torn that it is the remains of an append that never completed (it runs
// to or past the end of the file, or the rest is zeros), and not damage.
func checkRecord(b []byte) (n, votes int, bad, torn bool) {
	if len(b) < recHeaderLen {
		return 0, 0, true, true
	}
	l := binary.LittleEndian.Uint32(b)
	if l == 0 || l > maxRecord {
		return 0, 0, true, allZero(b)
	}
	if recHeaderLen+int(l) > len(b) {
		return 0, 0, true, true
	}
	end := recHeaderLen + int(l)
	crc := crc32.Update(crc32.Checksum(b[:8], crcTable), crcTable, b[recHeaderLen:end])
	if crc != binary.LittleEndian.Uint32(b[8:]) {
		return 0, 0, true, end == len(b) || allZero(b[end:])
	}
	return int(l), int(binary.LittleEndian.Uint32(b[4:])), false, false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// appendRecord encodes a record for payload onto dst.
func appendRecord(dst, payload []byte, votes int) []byte {
	var h [recHeaderLen]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:], uint32(votes))
	crc := crc32.Update(crc32.Checksum(h[:8], crcTable), crcTable, payload)
	binary.LittleEndian.PutUint32(h[8:], crc)
	return append(append(dst, h[:]...), payload...)
}

func readAll(f spoolFile) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

func (s *spool) corruptName(seq uint64, off int64) string {
	return filepath.Join(s.dir, fmt.Sprintf("corrupt-%016d-%d", seq, off))
}

// quarantine keeps damaged bytes for inspection.
func (s *spool) quarantine(seq uint64, off int64, b []byte) error {
	name := s.corruptName(seq, off)
	f, err := s.openFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		if _, err = f.WriteAt(b, 0); err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("spool: keep damaged bytes in %s: %w", name, err)
	}
	return nil
}

// writable returns the segment that takes the next append, creating it
// (file, ack file, directory fsync) when there is none.
func (s *spool) writable() (*segment, error) {
	s.mu.Lock()
	seg, seq := s.active, s.nextSeq
	if seg == nil {
		s.nextSeq++
	}
	s.mu.Unlock()
	if seg != nil {
		return seg, nil
	}
	name := s.segName(seq)
	f, err := s.openFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: start a segment: %w", err)
	}
	seg = &segment{seq: seq, f: f, size: int64(len(segHeader))}
	fail := func(what string, err error) (*segment, error) {
		seg.close()
		s.removeFiles(seq)
		return nil, fmt.Errorf("spool: start a segment (%s): %w", what, err)
	}
	if _, err := f.WriteAt([]byte(segHeader), 0); err != nil {
		return fail("header", err)
	}
	if err := f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if seg.ack, err = s.openFile(s.ackName(seq), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
		return fail("ack file", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fail("directory fsync", err)
	}
	s.used.Add(seg.size)
	s.mu.Lock()
	s.active = seg
	s.segs[seq] = seg
	s.mu.Unlock()
	return seg, nil
}

// append writes payload as one record and fsyncs it. On error nothing of
// it stays deliverable: the segment is cut back (or, failing that, the
// record is marked done) and sealed, and the next append opens a new one.
// scratch is the caller's reusable buffer. Only one goroutine may append.
func (s *spool) append(payload []byte, votes int, scratch *[]byte) (*record, error) {
	seg, err := s.writable()
	if err != nil {
		return nil, err
	}
	buf := appendRecord((*scratch)[:0], payload, votes)
	*scratch = buf
	off := seg.size
	if _, err := seg.f.WriteAt(buf, off); err != nil {
		s.abandon(seg, off, err)
		return nil, fmt.Errorf("spool: append a batch: %w", err)
	}
	if err := seg.f.Sync(); err != nil {
		s.abandon(seg, off, err)
		return nil, fmt.Errorf("spool: fsync a batch: %w", err)
	}
	seg.size += int64(len(buf))
	s.used.Add(int64(len(buf)))
	s.mu.Lock()
	seg.pending++
	if seg.size >= s.segLimit {
		seg.sealed = true
		s.active = nil
	}
	s.mu.Unlock()
	return &record{seg: seg, off: off, size: len(buf), votes: votes}, nil
}

// abandon undoes a failed append at off: the bytes are cut off (and the
// cut fsynced), or if that fails the offset is marked done, so that no
// later start delivers a batch whose voters were told it failed. The
// segment takes no more appends: after a failed fsync its state on disk
// is unknown.
func (s *spool) abandon(seg *segment, off int64, cause error) {
	err := seg.f.Truncate(off)
	if err == nil {
		err = seg.f.Sync()
	}
	if err != nil {
		if aerr := s.ack(seg, off, true); aerr != nil {
			s.log.Error("spool: a batch that failed to record could be neither cut nor marked; a restart may deliver it",
				"segment", s.segName(seg.seq), "offset", off, "cause", cause, "cut_err", err, "mark_err", aerr)
		}
	}
	s.mu.Lock()
	seg.sealed = true
	if s.active == seg {
		s.active = nil
	}
	rm := s.removableLocked(seg)
	s.mu.Unlock()
	if rm {
		s.remove(seg)
	}
}

// ack writes the done entry for the record at off, fsyncing it when sync.
func (s *spool) ack(seg *segment, off int64, sync bool) error {
	seg.ackMu.Lock()
	defer seg.ackMu.Unlock()
	if seg.ackBroken {
		return errors.New("ack file unwritable since an earlier error")
	}
	var e [ackEntryLen]byte
	binary.LittleEndian.PutUint32(e[0:], uint32(off))
	binary.LittleEndian.PutUint32(e[4:], ^uint32(off))
	if _, err := seg.ack.WriteAt(e[:], seg.ackSize); err != nil {
		seg.ackBroken = true
		return fmt.Errorf("append an ack: %w", err)
	}
	seg.ackSize += ackEntryLen
	s.used.Add(ackEntryLen)
	if sync {
		if err := seg.ack.Sync(); err != nil {
			return fmt.Errorf("fsync an ack: %w", err)
		}
	}
	return nil
}

// done marks r finished: delivered, dead-lettered or unreadable. A sealed
// segment with nothing left is deleted.
func (s *spool) done(r *record) {
	if err := s.ack(r.seg, r.off, false); err != nil {
		s.log.Warn("spool: could not record a delivery; a restart delivers that batch again (harmless)", "record", r.String(), "err", err)
	}
	s.mu.Lock()
	r.seg.pending--
	rm := s.removableLocked(r.seg)
	s.mu.Unlock()
	if rm {
		s.remove(r.seg)
	}
}

// removableLocked reports whether seg is sealed and finished, and if so
// marks it removed: the caller then calls remove, outside s.mu.
func (s *spool) removableLocked(seg *segment) bool {
	if !seg.sealed || seg.pending > 0 || seg.removed {
		return false
	}
	seg.removed = true
	delete(s.segs, seg.seq)
	return true
}

// remove closes and deletes a finished segment and its ack file.
func (s *spool) remove(seg *segment) {
	seg.ackMu.Lock()
	size := seg.size + seg.ackSize
	seg.ackMu.Unlock()
	seg.close()
	s.removeFiles(seg.seq)
	s.used.Add(-size)
}

func (s *spool) removeFiles(seq uint64) {
	for _, name := range []string{s.segName(seq), s.ackName(seq)} {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("spool: remove finished segment", "file", name, "err", err)
		}
	}
	if err := syncDir(s.dir); err != nil {
		s.log.Warn("spool: sync directory", "dir", s.dir, "err", err)
	}
}

func (seg *segment) close() {
	if seg.f != nil {
		seg.f.Close()
	}
	if seg.ack != nil {
		seg.ack.Close()
	}
}

// load returns r's payload, reading it back from its segment if it is not
// held in memory, and fills in r.id. An error from ErrCorrupt means the
// bytes on disk no longer check out.
func (s *spool) load(r *record) ([]byte, error) {
	body := r.payload
	if body == nil {
		buf := make([]byte, r.size)
		if _, err := r.seg.f.ReadAt(buf, r.off); err != nil {
			return nil, fmt.Errorf("spool: read back record at offset %d: %w", r.off, err)
		}
		n, _, bad, _ := checkRecord(buf)
		if bad || recHeaderLen+n != r.size {
			return nil, fmt.Errorf("spool: %s: %w", r, errCorrupt)
		}
		body = buf[recHeaderLen:]
	}
	if r.id == (shared.BatchID{}) {
		var b shared.Batch
		if err := shared.UnmarshalBatch(body, &b); err == nil {
			r.id = b.ID
		}
	}
	return body, nil
}

var errCorrupt = errors.New("record damaged on disk")

// quarantineRecord keeps the bytes of a record that no longer checks out
// (best effort: they are logged as lost if even that fails).
func (s *spool) quarantineRecord(r *record) error {
	buf := make([]byte, r.size)
	n, err := r.seg.f.ReadAt(buf, r.off)
	if n == 0 && err != nil {
		return fmt.Errorf("spool: read %s: %w", r, err)
	}
	return s.quarantine(r.seg.seq, r.off, buf[:n])
}

// deadLetterEntry is one line of dead-letter.jsonl.
type deadLetterEntry struct {
	Time        string `json:"time"`
	Record      string `json:"record"`
	Batch       string `json:"batch"`
	Votes       int    `json:"votes"`
	Status      int    `json:"status"`
	OriginError string `json:"origin_error"`
	BodyBase64  string `json:"body_base64"`
}

// deadLetter appends r (body, the origin's status and message) to the
// dead-letter file and fsyncs it.
func (s *spool) deadLetter(r *record, body []byte, status int, msg string, now time.Time) error {
	line, err := json.Marshal(deadLetterEntry{
		Time: now.UTC().Format(time.RFC3339Nano), Record: r.String(), Batch: r.id.String(), Votes: r.votes,
		Status: status, OriginError: msg, BodyBase64: base64.StdEncoding.EncodeToString(body),
	})
	if err != nil {
		return fmt.Errorf("spool: encode dead letter: %w", err)
	}
	line = append(line, '\n')
	name := filepath.Join(s.dir, deadLetter)
	s.deadMu.Lock()
	defer s.deadMu.Unlock()
	if s.dead == nil {
		f, err := s.openFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("spool: dead-letter file: %w", err)
		}
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return fmt.Errorf("spool: dead-letter file: %w", err)
		}
		s.dead = f
	}
	if _, err := s.dead.WriteAt(line, s.deadSz); err != nil {
		_ = s.dead.Truncate(s.deadSz)
		return fmt.Errorf("spool: dead-letter file: %w", err)
	}
	if err := s.dead.Sync(); err != nil {
		_ = s.dead.Truncate(s.deadSz)
		return fmt.Errorf("spool: dead-letter file: %w", err)
	}
	s.deadSz += int64(len(line))
	return nil
}

// segments returns the number of segments on disk.
func (s *spool) segments() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.segs)
}

// close syncs the ack files, deletes finished segments (the active one
// included), closes everything and releases the directory. Records not
// done stay for the next start.
func (s *spool) close() {
	s.mu.Lock()
	var rm, keep []*segment
	for _, seg := range s.segs {
		seg.sealed = true
		if s.removableLocked(seg) {
			rm = append(rm, seg)
		} else {
			keep = append(keep, seg)
		}
	}
	s.active = nil
	s.mu.Unlock()
	for _, seg := range rm {
		s.remove(seg)
	}
	for _, seg := range keep {
		seg.ackMu.Lock()
		if err := seg.ack.Sync(); err != nil {
			s.log.Warn("spool: sync ack file", "file", s.ackName(seg.seq), "err", err)
		}
		seg.ackMu.Unlock()
		seg.close()
	}
	s.deadMu.Lock()
	if s.dead != nil {
		s.dead.Close()
		s.dead = nil
	}
	s.deadMu.Unlock()
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

// syncDir fsyncs a directory, making creations and removals in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
